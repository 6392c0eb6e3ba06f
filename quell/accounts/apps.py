from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "quell.accounts"
    label = "accounts"
