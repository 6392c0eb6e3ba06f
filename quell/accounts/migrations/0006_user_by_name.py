# People listed by name walk an index and stop after a page (issue 6: the incidents page sorted all
# 5,000 users of the 1,000,000-incident organisation to offer the first hundred as filter choices).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_retention_settings'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='user',
            index=models.Index(fields=['name', 'email', 'id'], name='user_by_name'),
        ),
    ]
