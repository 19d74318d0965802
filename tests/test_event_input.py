"""Hostile event input is refused with the field named (#9 defects 5, 6, 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.errors import EventError
from guardrail.guard import MAX_EVENT_DEPTH, parse_event
from support import EXAMPLE_EVENT, STARTER, example_event_data, run_cli


# Defect 5: non-UTF-8 input printed a UnicodeDecodeError traceback.
def test_screen_refuses_non_utf8_input_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "f.json"
    bad.write_bytes(b'{"a":"\xff"}')
    result = run_cli("screen", "--pack", str(STARTER), str(bad), str(EXAMPLE_EVENT))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}: (event): not UTF-8 text at byte 6" in result.stderr
    assert "evt-2025-0301-0001" in result.stdout  # the good file after it is still screened
    piped = run_cli("screen", "--pack", str(STARTER), "-", stdin=b"\xfe\xff{}")
    assert piped.returncode == 2
    assert "-: (event): not UTF-8 text" in piped.stderr


# Defect 6: deep nesting raised RecursionError; bytes became the text "b'...'".
def test_deeply_nested_mapping_is_refused() -> None:
    data = example_event_data()
    deep: dict[str, object] = {}
    inner = deep
    for _ in range(1000):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    data["notes"] = deep
    with pytest.raises(EventError) as caught:
        parse_event(data)
    ((path, message),) = caught.value.problems
    assert path.startswith("notes.a.a")
    assert f"deeper than {MAX_EVENT_DEPTH}" in message


def test_bytes_in_a_text_field_are_refused() -> None:
    data = example_event_data()
    data["notes"] = "客户称要转到安全账户".encode()
    with pytest.raises(EventError) as caught:
        parse_event(data)
    assert caught.value.problems == [("notes", "a bytes is not a JSON value; send text")]


def test_deeply_nested_json_text_is_refused() -> None:
    text = '{"notes": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(EventError):
        parse_event(text)


def test_mappings_with_python_values_still_parse() -> None:
    event = parse_event(example_event_data())
    again = parse_event(
        {**example_event_data(), "timestamp": event.timestamp, "amount": event.amount.model_dump()}
    )
    assert again == event


# Defect 7: duplicate keys were accepted, the last one winning.
def test_duplicate_keys_are_refused_anywhere() -> None:
    text = EXAMPLE_EVENT.read_text(encoding="utf-8").rstrip()
    assert text.endswith("}")
    twice = text[:-1] + ', "kind": "cash_deposit"}'
    with pytest.raises(EventError) as caught:
        parse_event(twice)
    assert caught.value.problems == [("kind", "key given more than once")]
    data = example_event_data()
    nested = json.dumps(data, ensure_ascii=False).replace(
        '"customer": {', '"customer": {"id": "C-OTHER", ', 1
    )
    with pytest.raises(EventError, match="id: key given more than once"):
        parse_event(nested)


def test_screen_names_the_duplicated_key(tmp_path: Path) -> None:
    text = EXAMPLE_EVENT.read_text(encoding="utf-8").rstrip()
    event = tmp_path / "dup.json"
    event.write_text(text[:-1] + ', "kind": "cash_deposit"}', encoding="utf-8")
    result = run_cli("screen", "--pack", str(STARTER), str(event))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{event}: kind: key given more than once"
