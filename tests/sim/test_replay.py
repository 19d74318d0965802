"""Replay: report totals on a small hand-built stream, checked against counts made here
independently; malformed lines are named by number; the CLI wiring works."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from guardrail.cli import build_parser
from guardrail.guard import Guard
from guardrail.model.event import (
    Account,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Event,
    Observations,
    Purpose,
    PurposeCode,
    TransactionKind,
)
from guardrail.model.money import Money
from guardrail.sim.replay import ReplayError, replay, replay_file
from guardrail.sim.simulate_cli import add_simulate_subcommands

STARTER = Path(__file__).resolve().parents[2] / "rules" / "starter"
TZ = dt.timezone(dt.timedelta(hours=8))


def _event(
    event_id: str,
    minute: int,
    amount: int,
    *,
    kind: TransactionKind = TransactionKind.CASH_WITHDRAWAL,
    customer: str = "C1",
    born: dt.date = dt.date(1980, 1, 1),
    opened: dt.date = dt.date(2015, 1, 1),
    text: str = "",
    on_phone: bool = False,
    payee: str | None = None,
    channel: Channel = Channel.COUNTER,
) -> Event:
    return Event(
        event_id=event_id,
        kind=kind,
        amount=Money(value=Decimal(amount)),
        channel=channel,
        timestamp=dt.datetime(2025, 3, 3, 9, 0, tzinfo=TZ) + dt.timedelta(minutes=minute),
        branch=Branch(id="BR1", region="CN-ZJ"),
        teller_id="T1",
        customer=Customer(id=customer, birth_date=born),
        account=Account(id=f"6222{customer}0000", opened_on=opened),
        counterparty=None if payee is None else Counterparty(account=payee),
        purpose=Purpose(code=PurposeCode.OTHER, text=text),
        observations=Observations(on_phone=on_phone),
    )


def _line(label: str, event: Event, typology: str | None = None, hint: str = "if_allowed") -> str:
    record = {
        "label": label,
        "typology": typology,
        "scenario": "s",
        "executed_history_hint": hint,
        "event": json.loads(event.model_dump_json()),
    }
    return json.dumps(record, ensure_ascii=False)


# The starter pack's rules decide these; the expected action is written beside each.
STREAM = [
    # legitimate small cash: proceed
    _line("legitimate", _event("e1", 0, 500)),
    # legitimate elderly large cash: elderly-large-cash (inquire) + large-cash-report (proceed)
    _line("legitimate", _event("e2", 1, 60000, customer="C2", born=dt.date(1950, 1, 1))),
    # legitimate on the phone with a large transfer: review (friction)
    _line(
        "legitimate",
        _event(
            "e3",
            2,
            20000,
            kind=TransactionKind.TRANSFER,
            customer="C3",
            on_phone=True,
            payee="6222999",
        ),
    ),
    # fraud: safe-account words: intercept
    _line(
        "fraud", _event("e4", 3, 30000, customer="C4", text="转到安全账户"), "impersonation_police"
    ),
    # fraud: payee on the involved-account list: report
    _line(
        "fraud",
        _event(
            "e5", 4, 8000, kind=TransactionKind.TRANSFER, customer="C5", payee="6222020200998877665"
        ),
        "impersonation_police",
    ),
    # background credit on a young account, then a mule cash-out: inbound-then-cash-out (review)
    _line(
        "fraud",
        _event(
            "e6",
            5,
            9000,
            kind=TransactionKind.CASH_DEPOSIT,
            customer="C6",
            opened=dt.date(2025, 2, 20),
            channel=Channel.ONLINE,
        ),
        "money_mule",
        hint="always",
    ),
    _line(
        "fraud", _event("e7", 30, 9000, customer="C6", opened=dt.date(2025, 2, 20)), "money_mule"
    ),
    # fraud that shows nothing: proceed (missed)
    _line("fraud", _event("e8", 40, 3000, customer="C7"), "rebate_tasks"),
]


def test_report_totals_match_an_independent_count() -> None:
    report = replay(Guard.from_path(STARTER), STREAM)
    assert report.events == 8
    assert report.background == 1
    assert report.screened == 7
    assert report.actions == {
        "proceed": 2,
        "notice": 0,
        "inquire": 1,
        "review": 2,
        "hold": 0,
        "intercept": 1,
        "report": 1,
    }
    assert report.fraud_events == 4  # e4, e5, e7, e8 (e6 is background)
    assert report.legitimate_events == 3
    assert report.intercepted_fraud == 2  # e4, e5
    assert report.reviewed_fraud == 3  # + e7
    assert report.recall_intercept == pytest.approx(0.5)
    assert report.recall_review == pytest.approx(0.75)
    assert report.inquired_legitimate == 2  # e2, e3
    assert report.friction_rate == pytest.approx(2 / 3)
    # recorded: every legitimate request, the background credit, and fraud below intercept
    assert report.recorded == 3 + 1 + 2
    assert report.rules["large-cash-report"].hits == 1
    assert report.rules["elderly-large-cash"].hits == 1
    assert report.rules["on-phone-while-transacting"].on_legitimate == 1
    assert report.rules["safe-account-words"].on_fraud == 1
    assert report.rules["payee-involved-account"].hits == 1
    assert report.rules["inbound-then-cash-out"].hits == 1
    assert report.rules["inbound-then-cash-out"].share == pytest.approx(1 / 7)
    impersonation = report.typologies["impersonation_police"]
    assert (impersonation.events, impersonation.at_least_intercept) == (2, 2)
    assert report.typologies["rebate_tasks"].at_least_review == 0
    json.dumps(report.to_dict())  # JSON-able
    text = report.render()
    assert "50.00%" in text and "inbound-then-cash-out" in text


def test_a_malformed_line_is_named_by_number(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    broken = [
        *STREAM[:2],
        '{"label": "fraud", "event": {"event_id": "x"}}',
        *STREAM[2:3],
        "{not json",
    ]
    path.write_text("\n".join(broken) + "\n", encoding="utf-8")
    guard = Guard.from_path(STARTER)
    with pytest.raises(ReplayError) as caught:
        replay_file(guard, path)
    assert caught.value.line_no == 3
    assert str(caught.value).startswith(f"{path}:3: ")
    assert "event.kind" in str(caught.value)
    report = replay_file(Guard.from_path(STARTER), path, on_bad_line="skip")
    assert report.bad_lines == 2 and report.events == 3
    assert report.first_bad_line is not None and ":3:" in report.first_bad_line


def test_cli_simulate_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser([add_simulate_subcommands])
    out = tmp_path / "events.jsonl"
    args = parser.parse_args(["simulate", "--n", "2000", "--seed", "3", "--out", str(out)])
    assert args.func(args) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2000
    args = parser.parse_args(
        ["replay", str(STARTER), str(out), "--json", "--no-progress", "--limit", "500"]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 500
    assert report["screened"] + report["background"] == 500
    assert sum(report["actions"].values()) == report["screened"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(STREAM[0] + "\n[]\n", encoding="utf-8")
    args = parser.parse_args(["replay", str(STARTER), str(bad), "--no-progress"])
    assert args.func(args) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
