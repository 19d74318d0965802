"""One line format: what ``guardrail simulate`` writes, the testing strategies draw and both
replays read is ``guardrail.model.stream.StreamLine``, defined once."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from guardrail.model.stream import LINE_FIELDS, StreamLine
from guardrail.replay.table import COLUMNS, frame_from_lines, lines_of
from guardrail.sim.generator import generate
from guardrail.sim.replay import parse_line
from guardrail.testing import streams


def test_generated_lines_are_stream_lines_and_read_back_unchanged() -> None:
    for number, line in enumerate(generate(300, 0.3, 5), start=1):
        assert isinstance(line, StreamLine)
        text = line.to_json()
        assert "\n" not in text
        record = parse_line(text, number)
        assert record.line == line
        assert record.line_no == number
        assert record.background == (line.executed_history_hint == "always")
        assert next(lines_of([record])) is record.line


def test_the_parquet_table_has_the_line_fields_first() -> None:
    assert COLUMNS[: len(LINE_FIELDS)] == LINE_FIELDS


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=streams())
def test_drawn_streams_round_trip_through_json_and_the_table(lines: list[StreamLine]) -> None:
    for number, line in enumerate(lines, start=1):
        assert parse_line(line.to_json(), number).line == line
        assert json.loads(line.to_json())["label"] in ("fraud", "legitimate")
    frame = frame_from_lines(lines)
    assert frame.height == len(lines)
    assert frame["label"].to_list() == [line.label for line in lines]
