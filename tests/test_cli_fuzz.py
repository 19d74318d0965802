"""Fuzz the CLI as a subprocess with malformed events and packs (#9, "Done when").

Bounded: a few examples, one ``guardrail`` process each. Every run must end without a
traceback; bad input gives exit code 2 and an error line naming the file and the field.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import STARTER, example_event_data, run_cli

FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    return found


EVENT = example_event_data()
FIELD_PATHS = _paths(EVENT)
# Invalid wherever it is put: a scalar field gets an object, an object gets an unknown field.
JUNK = {"zz_not_a_field": [1, None]}


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


@st.composite
def bad_event_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """Bytes of a malformed event and the field an error line must name."""
    data = json.loads(json.dumps(EVENT))
    how = draw(st.sampled_from(["junk", "drop", "duplicate", "future", "zone", "not_utf8"]))
    if how == "junk":
        path = draw(st.sampled_from(FIELD_PATHS))
        _set(data, path, JUNK)
        return json.dumps(data).encode(), path[0]
    if how == "drop":
        key = draw(st.sampled_from(["event_id", "kind", "amount", "timestamp", "branch"]))
        del data[key]
        return json.dumps(data).encode(), key
    if how == "duplicate":
        key = draw(st.sampled_from(["kind", "notes", "teller_id"]))
        text = json.dumps(data)[:-1] + f', "{key}": "x"}}'
        return text.encode(), key
    if how == "future":
        year = draw(st.integers(2100, 9999))
        data["timestamp"] = f"{year}-01-01T00:00:00-12:00"
        return json.dumps(data).encode(), "timestamp"
    if how == "zone":
        data["branch"]["timezone"] = draw(st.sampled_from(["Mars/Olympus", "X/../../y", "+8"]))
        return json.dumps(data).encode(), "branch.timezone"
    raw = json.dumps(data, ensure_ascii=False).encode()
    cut = draw(st.integers(1, len(raw) - 1))
    return raw[:cut] + b"\xff\xfe" + raw[cut:], "(event)"


@FUZZ
@given(bad=bad_event_files())
def test_malformed_events_through_the_cli(bad: tuple[bytes, str]) -> None:
    content, field = bad
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "event.json"
        path.write_bytes(content)
        result = run_cli("screen", "--pack", str(STARTER), str(path))
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), lines
    assert any(line.startswith(f"{path}: {field}") for line in lines), (field, lines)


_LOCATED = re.compile(r"^(?P<file>[^:\n]+\.(?:yaml|csv)):(?P<line>\d+):(?P<col>\d+): \S")


@st.composite
def bad_packs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file of the starter pack (relative name) replaced by malformed bytes."""
    rules = (STARTER / "rules.yaml").read_text(encoding="utf-8")
    how = draw(
        st.sampled_from(["unknown_field", "bad_condition", "alias_bomb", "yaml", "watchlist"])
    )
    if how == "unknown_field":
        return "rules.yaml", rules.replace("    action: proceed", "    actoin: proceed", 1).encode()
    if how == "bad_condition":
        junk = draw(st.sampled_from(["amount >=", "amount >= 'x'", "no_such.field", "((", "and"]))
        text = rules.replace("condition: window.cash_out_today >= 50000", f'condition: "{junk}"', 1)
        return "rules.yaml", text.encode()
    if how == "alias_bomb":
        depth = draw(st.integers(6, 9))
        lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
        for prev, name in zip("abcdefghi", "bcdefghij"[: depth - 1], strict=False):
            lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
        lines.append(f"rules: [*{lines[-1][0]}]")
        return "rules.yaml", "\n".join(lines).encode()
    if how == "yaml":
        lines = rules.splitlines(keepends=True)
        at = draw(st.integers(1, len(lines) - 1))  # an unclosed, tab-indented flow sequence
        return "rules.yaml", "".join([*lines[:at], "\t- [\n", *lines[at:]]).encode()
    content = draw(st.sampled_from([b"", b"6222000011112222\n", b"value\n\xff\xfe\n"]))
    return "data/involved_accounts.csv", content


@FUZZ
@given(bad=bad_packs())
def test_malformed_packs_through_the_cli(bad: tuple[str, bytes]) -> None:
    name, content = bad
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "pack"
        shutil.copytree(STARTER, pack)
        (pack / name).write_bytes(content)
        event = Path(tmp) / "event.json"
        event.write_text(json.dumps(EVENT), encoding="utf-8")
        result = run_cli("screen", "--pack", str(pack), str(event))
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    located = [_LOCATED.match(line) for line in result.stderr.splitlines()]
    files = {match.group("file") for match in located if match is not None}
    assert any(file.endswith(name) for file in files), result.stderr
