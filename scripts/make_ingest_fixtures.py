"""Regenerate the dbt and Great Expectations artifacts under tests/ingest/fixtures/.

The import tests read real artifacts, made by really running dbt (dbt-duckdb) and Great
Expectations 1.x on a small dataset, rather than hand-written JSON. Those tools are large and
conflict with Quell's own dependencies, so they run in a throwaway virtual environment:

    python3.11 -m venv /tmp/fixture-venv
    /tmp/fixture-venv/bin/pip install 'dbt-core>=1.10,<1.11' 'dbt-duckdb>=1.10,<1.11' \
        'great-expectations>=1.5,<2' pandas
    /tmp/fixture-venv/bin/python scripts/make_ingest_fixtures.py

The dataset: a shop with customers and orders, where some rows are wrong on purpose (a missing
customer id, a duplicate order id, an unknown status, an order for a customer that does not exist)
so that tests pass, warn and fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "ingest" / "fixtures"

CUSTOMERS = """id,name,country
1,Ada,NL
2,Ben,BE
3,Cleo,DE
"""

ORDERS = """order_id,customer_id,status,amount
1,1,paid,100.0
2,2,shipped,700.0
2,3,paid,50.0
3,,cancelled,20.0
4,9,lost,30.0
"""

DBT_PROJECT = """
name: shop
version: "1.0"
config-version: 2
profile: shop
seed-paths: ["seeds"]
model-paths: ["models"]
test-paths: ["tests"]
"""

PROFILES = """
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: {path}
      threads: 1
"""

MODELS = """
version: 2
models:
  - name: stg_orders
    description: Orders as the shop recorded them.
    columns:
      - name: order_id
        data_tests:
          - not_null
          - unique
      - name: customer_id
        data_tests:
          - not_null:
              config:
                severity: warn
          - relationships:
              arguments:
                to: ref('stg_customers')
                field: id
      - name: status
        data_tests:
          - accepted_values:
              arguments:
                values: [paid, shipped, cancelled]
  - name: stg_customers
    columns:
      - name: id
        data_tests:
          - unique
          - not_null
"""

SINGULAR_TEST = """
-- Orders never cost more than 1000.
select * from {{ ref('stg_orders') }} where amount > 1000
"""


def make_dbt(workdir: Path) -> None:
    project = workdir / "dbt_shop"
    (project / "seeds").mkdir(parents=True)
    (project / "models").mkdir()
    (project / "tests").mkdir()
    (project / "dbt_project.yml").write_text(DBT_PROJECT)
    (project / "profiles.yml").write_text(PROFILES.format(path=workdir / "shop.duckdb"))
    (project / "seeds" / "raw_customers.csv").write_text(CUSTOMERS)
    (project / "seeds" / "raw_orders.csv").write_text(ORDERS)
    (project / "models" / "stg_orders.sql").write_text("select * from {{ ref('raw_orders') }}\n")
    (project / "models" / "stg_customers.sql").write_text("select * from {{ ref('raw_customers') }}\n")
    (project / "models" / "schema.yml").write_text(MODELS)
    (project / "tests" / "orders_amount_at_most_1000.sql").write_text(SINGULAR_TEST)
    dbt = Path(sys.executable).parent / "dbt"
    # `dbt build` exits 1 because some tests fail on purpose.
    subprocess.run(
        [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(project)],
        check=False,
        env={"PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    target = FIXTURES / "dbt"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("run_results.json", "manifest.json"):
        # Re-serialised compactly: the manifest is mostly dbt's own macros and weighs megabytes indented.
        data = json.loads((project / "target" / name).read_text())
        (target / name).write_text(json.dumps(data, separators=(",", ":")))


def make_gx() -> None:
    import great_expectations as gx
    import pandas as pd

    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 2, 3, 4],
            "customer_id": [1, 2, 3, None, 9],
            "status": ["paid", "shipped", "paid", "cancelled", "lost"],
            "amount": [100.0, 700.0, 50.0, 20.0, 30.0],
        }
    )
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("shop")
    asset = source.add_dataframe_asset(name="orders")
    batch = asset.add_batch_definition_whole_dataframe("all orders")
    suite = context.suites.add(gx.ExpectationSuite(name="orders quality"))
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=100))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="customer_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="order_id"))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeInSet(column="status", value_set=["paid", "shipped", "cancelled"])
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=1000)
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnMeanToBeBetween(column="amount", min_value=0, max_value=150, severity="warning")
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders nightly", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(gx.Checkpoint(name="nightly", validation_definitions=[validation]))
    target = FIXTURES / "gx"
    target.mkdir(parents=True, exist_ok=True)
    result = checkpoint.run(batch_parameters={"dataframe": orders})
    (target / "checkpoint_result.json").write_text(json.dumps(result.describe_dict(), indent=1, default=str))
    single = validation.run(batch_parameters={"dataframe": orders})
    (target / "validation_result.json").write_text(json.dumps(single.to_json_dict(), indent=1, default=str))


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="quell-fixtures-"))
    try:
        make_dbt(workdir)
        make_gx()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Wrote fixtures under {FIXTURES}")


if __name__ == "__main__":
    main()
