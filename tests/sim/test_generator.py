"""The synthetic generator: deterministic, labelled as asked, every line a valid event."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from guardrail.guard import parse_event
from guardrail.sim.behaviours import load_behaviours
from guardrail.sim.generator import Typology, WhenAsked, generate, write_jsonl

_TYPOLOGY_IDS = {spec.id for spec in load_behaviours().typologies}


def _jsonl(n: int, fraud_rate: float, seed: int) -> str:
    out = io.StringIO()
    write_jsonl(generate(n, fraud_rate, seed), out)
    return out.getvalue()


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    first = _jsonl(3000, 0.02, 7)
    assert first == _jsonl(3000, 0.02, 7)
    assert first != _jsonl(3000, 0.02, 8)


def test_exactly_n_lines_in_timestamp_order_each_a_valid_event() -> None:
    lines = _jsonl(6000, 0.01, 3).splitlines()
    assert len(lines) == 6000
    stamps = []
    ids = set()
    for line in lines:
        record = json.loads(line)
        assert set(record) - {"when_asked"} == {
            "label",
            "typology",
            "scenario",
            "executed_history_hint",
            "event",
        }
        assert record["label"] in ("fraud", "legitimate")
        assert (record["typology"] is None) == (record["label"] == "legitimate")
        if record["typology"] is not None:
            assert record["typology"] in _TYPOLOGY_IDS
        if "when_asked" in record:
            assert record["executed_history_hint"] == "if_allowed"
            WhenAsked.model_validate_json(json.dumps(record["when_asked"]))
        event = parse_event(record["event"])
        assert (event.channel.value == "counter") == (
            record["executed_history_hint"] == "if_allowed"
        )
        local = event.timestamp.astimezone(event.timestamp.tzinfo)
        if record["executed_history_hint"] == "if_allowed":
            assert 9 <= local.hour < 17
        stamps.append(event.timestamp)
        ids.add(event.event_id)
    assert stamps == sorted(stamps)
    assert len(ids) == len(lines)


@pytest.mark.parametrize(("fraud_rate", "tolerance"), [(0.0, 0.0), (0.01, 0.003), (0.1, 0.01)])
def test_fraud_rate_within_tolerance(fraud_rate: float, tolerance: float) -> None:
    records = list(generate(5_000, fraud_rate, 11))
    share = sum(record.label == "fraud" for record in records) / len(records)
    assert abs(share - fraud_rate) <= tolerance


def test_every_typology_appears_and_customers_come_back() -> None:
    records = list(generate(8_000, 0.05, 5))
    typologies = Counter(record.typology for record in records if record.label == "fraud")
    assert set(typologies) == _TYPOLOGY_IDS
    assert {typology.value for typology in Typology} <= _TYPOLOGY_IDS
    visits = Counter(record.event.customer.id for record in records)
    returning = sum(1 for count in visits.values() if count >= 3)
    assert returning > len(visits) / 5  # customers come back: windows see real histories
    ages = [
        record.event.timestamp.year - record.event.customer.birth_date.year
        for record in records
        if record.event.customer.birth_date is not None
        and record.executed_history_hint == "if_allowed"
    ]
    assert 0.25 < sum(age >= 60 for age in ages) / len(ages) < 0.6  # many elderly at branches


def test_all_fraud_and_bad_arguments() -> None:
    assert all(record.label == "fraud" for record in generate(300, 1.0, 1))
    with pytest.raises(ValueError):
        list(generate(10, 1.5, 1))
    with pytest.raises(ValueError):
        list(generate(-1, 0.1, 1))
    assert list(generate(0, 0.1, 1)) == []
