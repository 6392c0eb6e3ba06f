"""quell.lib.jsontext.parse_json, the one reader of JSON from outside, and the readers built on it."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from quell.ingest.importers import MalformedFile, read_json
from quell.integrations.transport import Answer
from quell.lib.jsontext import MAX_DEPTH, UnreadableJSON, parse_json
from quell.ops.backup import BackupError, read_backup

DEEP = b"[" * 100_000 + b"]" * 100_000


def problem(raw: bytes | str) -> str:
    with pytest.raises(UnreadableJSON) as raised:
        parse_json(raw)
    assert raised.value.code == "invalid_json"
    assert raised.value.status == 400
    return raised.value.message


def nested(depth: int, opening: str = "[", closing: str = "]") -> str:
    return opening * depth + closing * depth


def test_a_value_nested_to_the_limit_is_read() -> None:
    assert parse_json(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    objects = '{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    assert parse_json(objects) == json.loads(objects)


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH + 1),
        '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
        # Past Python's recursion limit, where json.loads itself gives up.
        DEEP.decode(),
        '{"a": ' * 5_000 + "1" + "}" * 5_000,
    ],
    ids=["arrays-one-deeper", "objects-one-deeper", "arrays-100000", "objects-5000"],
)
def test_a_value_nested_deeper_than_the_limit_is_refused(text: str) -> None:
    assert problem(text) == f"The request body is nested more than {MAX_DEPTH} levels deep."


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps(["[" * 500, {"a": "{" * 500}])

    assert parse_json(text) == json.loads(text)


def test_a_raw_nul_is_refused_naming_its_line_and_column() -> None:
    assert problem(b'{\n  "a": "x\x00"\n}') == (
        "The request body contains a NUL character (\\u0000) at line 2 column 10."
    )


def test_an_escaped_nul_is_refused_naming_where_it_is() -> None:
    text = '{"results": [{"name": "ok"}, {"name": "a\\u0000b"}]}'

    assert problem(text) == "The request body contains a NUL character (\\u0000) at results[1].name."


def test_a_nul_in_a_name_is_refused() -> None:
    assert problem('{"a": {"b\\u0000": 1}}') == (
        "The request body contains a NUL character (\\u0000) in a name in the object at a."
    )


def test_an_escaped_backslash_before_u0000_is_plain_text() -> None:
    assert parse_json('["\\\\u0000 \\\\ud800"]') == ["\\u0000 \\ud800"]


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ude00\\ud83d"])
def test_a_lone_surrogate_is_refused(escape: str) -> None:
    message = problem(f'{{"note": "half a pair {escape}"}}')

    assert message.startswith("The request body contains a lone surrogate (\\ud")
    assert message.endswith(") at note.")


def test_a_surrogate_pair_is_one_character() -> None:
    assert parse_json('["\\ud83d\\ude00"]') == ["\N{GRINNING FACE}"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    assert problem(f'{{"value": {constant}}}') == (
        f"The request body contains {constant} at value, which is not JSON (send null or a number)."
    )


def test_a_number_too_large_for_a_float_is_refused_and_the_largest_is_read() -> None:
    assert problem("[1e400]") == (
        "The request body contains the number 1e400 at [0], too large for a 64-bit float."
    )
    assert parse_json("[1.7e308, -1.7e308]") == [1.7e308, -1.7e308]


def test_an_integer_too_long_to_read_is_refused() -> None:
    assert problem("[" + "9" * 5_000 + "]") == "The request body contains a number with too many digits."


def test_bytes_that_are_not_utf8_are_refused_naming_the_byte() -> None:
    assert problem(b'{"a": "\xff"}') == (
        "The request body is not valid UTF-8: byte 0xff at offset 7 (invalid start byte)."
    )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_the_other_encodings_json_allows_are_read(encoding: str) -> None:
    assert parse_json('{"name": "nächtlich"}'.encode(encoding)) == {"name": "nächtlich"}


def test_text_that_is_not_json_says_where() -> None:
    assert problem("{not json") == (
        "The request body is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))."
    )


def test_a_repeated_name_keeps_the_last_value() -> None:
    assert parse_json('{"a": 1, "a": 2}') == {"a": 2}


def test_the_subject_names_what_was_read() -> None:
    with pytest.raises(UnreadableJSON) as raised:
        parse_json("[", subject="Line 3 of the sample")

    assert raised.value.message.startswith("Line 3 of the sample is not JSON (")
    assert raised.value.problem.startswith("is not JSON (")


# --- The readers built on it ----------------------------------------------------------------------


def test_a_deeply_nested_results_file_is_a_malformed_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_bytes(DEEP)

    with pytest.raises(MalformedFile) as raised:
        read_json(path)

    assert raised.value.message == f"{path}: is nested more than {MAX_DEPTH} levels deep."


def test_a_receivers_deeply_nested_answer_reads_as_no_json() -> None:
    assert Answer(status_code=200, body=DEEP, headers={}).json() is None
    assert Answer(status_code=200, body=b'{"ok": true}', headers={}).json() == {"ok": True}


def test_a_backup_whose_manifest_is_deeply_nested_is_damaged(tmp_path: Path) -> None:
    source = tmp_path / "quell.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(DEEP)
        tar.addfile(info, io.BytesIO(DEEP))

    with pytest.raises(BackupError) as raised:
        read_backup(source, tmp_path / "work")

    assert str(raised.value) == (
        f"{source} is damaged: its manifest.json is nested more than {MAX_DEPTH} levels deep."
    )
