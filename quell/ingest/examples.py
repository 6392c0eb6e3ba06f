"""Small, complete documents of each format the import endpoints read, for the API's examples.

Each is the least its tool's reader (and Quell's importer) takes: what dbt, Great Expectations and
Soda Core write holds much more, which the importers ignore. They name the demo organisation's
datasets (postgres_app/users, snowflake_prod/orders), so the docs' "Try it out" works on the demo;
tests/test_openapi.py imports each of them there.
"""

from __future__ import annotations

from typing import Any

_TEST_ID = "test.app.not_null_users_email.5f1b2c3d4e"
_MODEL_ID = "model.app.users"

DBT_RUN_RESULTS: dict[str, Any] = {
    "metadata": {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
        "dbt_version": "1.10.23",
        "generated_at": "2026-11-26T06:10:00Z",
        "invocation_id": "0b6e1f52-6c7d-4f3e-9a41-2f8d5c0e7a11",
    },
    "results": [
        {
            "status": "fail",
            "timing": [],
            "thread_id": "Thread-1",
            "execution_time": 0.12,
            "adapter_response": {},
            "message": "Got 14 results, configured to fail if != 0",
            "failures": 14,
            "unique_id": _TEST_ID,
        }
    ],
    "elapsed_time": 1.5,
    "args": {"which": "test"},
}

DBT_MANIFEST: dict[str, Any] = {
    "metadata": {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
        "dbt_version": "1.10.23",
        "adapter_type": "postgres",
    },
    "nodes": {
        _TEST_ID: {
            "database": "app_db",
            "schema": "public_dbt_test__audit",
            "name": "not_null_users_email",
            "resource_type": "test",
            "package_name": "app",
            "path": "not_null_users_email.sql",
            "original_file_path": "models/schema.yml",
            "unique_id": _TEST_ID,
            "fqn": ["app", "not_null_users_email"],
            "alias": "not_null_users_email",
            "checksum": {"name": "none", "checksum": ""},
            "column_name": "email",
            "attached_node": _MODEL_ID,
            "depends_on": {"macros": [], "nodes": [_MODEL_ID]},
            "test_metadata": {"name": "not_null", "kwargs": {"column_name": "email"}},
        },
        _MODEL_ID: {
            "database": "app_db",
            "schema": "public",
            "name": "users",
            "resource_type": "model",
            "package_name": "app",
            "path": "users.sql",
            "original_file_path": "models/users.sql",
            "unique_id": _MODEL_ID,
            "fqn": ["app", "users"],
            "alias": "users",
            "checksum": {"name": "sha256", "checksum": ""},
        },
    },
    "sources": {},
    "macros": {},
    "docs": {},
    "exposures": {},
    "metrics": {},
    "groups": {},
    "selectors": {},
    "disabled": {},
    "parent_map": {},
    "child_map": {},
    "group_map": {},
    "saved_queries": {},
    "semantic_models": {},
    "unit_tests": {},
}

GX_VALIDATION_RESULT: dict[str, Any] = {
    "id": "3f0c9a5e-2b7d-4c1a-8e6f-5d4b3a291c07",
    "success": False,
    "suite_name": "orders_suite",
    "results": [
        {
            "success": False,
            "expectation_config": {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "customer_id"},
                "severity": "critical",
            },
            "result": {"element_count": 46211, "unexpected_count": 12},
            "exception_info": {"raised_exception": False},
        },
        {
            "success": True,
            "expectation_config": {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1},
                "severity": "critical",
            },
            "result": {"observed_value": 46211},
            "exception_info": {"raised_exception": False},
        },
    ],
    "meta": {"validation_time": "2026-11-26T06:20:00+00:00"},
}

SODA_SCAN_RESULTS: dict[str, Any] = {
    "definitionName": "nightly_orders",
    "defaultDataSource": "snowflake_prod",
    "dataTimestamp": "2026-11-26T06:00:00+00:00",
    "scanStartTimestamp": "2026-11-26T06:00:00+00:00",
    "scanEndTimestamp": "2026-11-26T06:00:41+00:00",
    "hasErrors": False,
    "metrics": [
        {
            "identity": "metric-nightly_orders-snowflake_prod-orders-row_count",
            "metricName": "row_count",
            "dataSourceName": "snowflake_prod",
            "tableName": "orders",
            "value": 46211,
        }
    ],
    "checks": [
        {
            "name": "row_count > 0",
            "type": "generic",
            "definition": "checks for orders:\n  - row_count > 0",
            "dataSource": "snowflake_prod",
            "table": "orders",
            "metrics": ["metric-nightly_orders-snowflake_prod-orders-row_count"],
            "outcome": "pass",
            "diagnostics": {"value": 46211, "fail": {"lessThanOrEqual": 0.0}},
        }
    ],
}
