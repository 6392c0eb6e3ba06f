"""A result's diagnostics in sentences, for each shape Soda Core sends (captured uploads and documented ones)."""

from __future__ import annotations

from typing import Any

import pytest

from quell.web.diagnostics import describe
from tests.web.conftest import V3, V4


def sent(upload: Any, name: str) -> Any:
    (check,) = [c for c in upload["sodaCoreInsertScanResults"]["body"]["checks"] if c["name"] == name]
    return check["diagnostics"]


@pytest.mark.parametrize(
    ("diagnostics", "sentences"),
    [
        pytest.param(
            {"missing_column_names": ["fee_amount"]}, ["Missing column: fee_amount"], id="a missing column"
        ),
        pytest.param(
            {"missing_column_names": ["a", "b"], "present_column_names": ["ssn"]},
            ["Missing columns: a, b", "Column that should not be there: ssn"],
            id="missing and forbidden columns",
        ),
        pytest.param(
            {"column_type_mismatches": {"amount": {"expected_type": "decimal", "actual_type": "varchar"}}},
            ["Wrong type: amount is varchar, expected decimal"],
            id="a wrong type",
        ),
        pytest.param(
            {"column_index_mismatches": {"status": {"expected_index": 2, "actual_index": 3}}},
            ["Wrong position: status is at 3, expected at 2"],
            id="a wrong index",
        ),
        pytest.param(
            {
                "column_additions": ["note"],
                "column_deletions": ["fee", "tax"],
                "column_type_changes": {"id": {"previous_type": "int", "new_type": "bigint"}},
                "column_index_changes": {"id": {"previous_index": 0, "new_index": 1}},
            },
            [
                "Added column: note",
                "Removed columns: fee, tax",
                "Type changed: id from int to bigint",
                "Position changed: id from 0 to 1",
            ],
            id="schema changes over time",
        ),
        pytest.param(
            sent(V3, "max(amount) warn when > 500 fail when > 1000"),
            ["Fails when the value is above 1,000.", "Warns when the value is above 500."],
            id="warn and fail thresholds",
        ),
        pytest.param(
            sent(V3, "duplicate_count(order_id) = 0"),
            ["1 failing row", "Fails when the value is anything but 0."],
            id="duplicates (soda 3)",
        ),
        pytest.param(
            {"fail": {"greaterThanOrEqual": 5, "lessThanOrEqual": 10}},
            ["Fails when the value is between 5 and 10."],
            id="a between threshold",
        ),
        pytest.param(
            {"fail": {"greaterThan": 10, "lessThan": 5}},
            ["Fails when the value is above 10 or below 5."],
            id="an outside threshold",
        ),
        pytest.param(
            sent(V4, "No duplicate values"),
            ["1 of 3 rows duplicated (33.33%)"],
            id="duplicates (soda 4)",
        ),
        pytest.param(
            {
                "v4": {
                    "type": "schema",
                    "expected": [{"name": "id"}, {"name": "fee_amount"}],
                    "actual": [{"name": "id"}],
                }
            },
            ["Missing column: fee_amount"],
            id="a missing column (soda 4)",
        ),
        pytest.param(
            {
                "maxColumnTimestampUtc": "2026-11-30T08:00:00+00:00",
                "nowTimestampUtc": "2026-12-01T10:00:00+00:00",
                "freshness": "1 day, 2:00:00",
            },
            [
                "Newest data: 2026-11-30T08:00:00+00:00 (1 day, 2:00:00 old), checked at 2026-12-01T10:00:00+00:00"
            ],
            id="freshness",
        ),
        pytest.param({"anomalyPredictedValue": 120.0}, ["Expected about 120"], id="anomaly"),
        pytest.param(
            {"outcomeReasons": [{"message": "Reference check: 3 rows"}]},
            ["Reference check: 3 rows"],
            id="reasons",
        ),
        pytest.param({"unknown": 1}, [], id="an unknown shape says nothing"),
        pytest.param(["not", "an", "object"], [], id="not an object"),
    ],
)
def test_diagnostics_read_as_sentences(diagnostics: Any, sentences: list[str]) -> None:
    assert describe(diagnostics) == sentences
