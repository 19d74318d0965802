"""``guardrail cases open|note|attach|assign|verdict|amounts|close|list|show|verify|intake``.

Argument parsing and printing only. Writing needs the audit key (``GUARDRAIL_AUDIT_KEY`` or
``--key-env``); ``list`` and ``show`` read without it. Exit codes: 0 done, 1 verification
found a problem, 2 bad input (one line naming the problem, never a traceback).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail.audit.keys import KEY_ENV_VAR, AuditKeyError, AuditKeys, InsecureAuditKeyWarning
from guardrail.audit.log import AuditLog
from guardrail.audit.records import (
    CaseType,
    PartyRole,
    Resolution,
    Verdict,
)
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import AuditStoreError
from guardrail.cases.errors import CaseError, EvidenceError
from guardrail.cases.evidence import default_evidence_root
from guardrail.cases.ledger import CaseLedger, CasePolicy, Party, find_case, list_cases
from guardrail.cases.state import CaseState
from guardrail.model import Action, Money

_PARTY_FIELDS = ("name", "id_number", "phone", "account", "customer_id")


class _Usage(Exception):
    pass


def _money(text: str) -> Money:
    value, _, currency = text.partition(":")
    try:
        amount = Decimal(value).quantize(Decimal("0.01"))
        return Money.model_validate_json(
            json.dumps({"value": str(amount), "currency": currency or "CNY"})
        )
    except (InvalidOperation, ValidationError):
        raise argparse.ArgumentTypeError(
            f"not an amount: {text!r} (e.g. 80000.00 or 80000.00:CNY)"
        ) from None


def _when(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone offset: {text!r}")
    return moment


def _party(text: str) -> Party:
    role, sep, rest = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ROLE:FIELD=VALUE[,FIELD=VALUE], got {text!r}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.partition("=")
        if not eq or name not in _PARTY_FIELDS:
            raise argparse.ArgumentTypeError(
                f"party field {name!r}: one of {', '.join(_PARTY_FIELDS)} (as FIELD=VALUE)"
            )
        fields[name] = value
    if role not in {r.value for r in PartyRole}:
        raise argparse.ArgumentTypeError(
            f"party role {role!r}: one of {', '.join(r.value for r in PartyRole)}"
        )
    return Party(role=role, **fields)


def _common(parser: argparse.ArgumentParser, *, writes: bool) -> None:
    parser.add_argument("log", type=Path, metavar="LOG", help="the audit log (SQLite file)")
    parser.add_argument(
        "--evidence-dir", type=Path, help="evidence folder (default: LOG.evidence beside the log)"
    )
    if writes:
        parser.add_argument("--by", required=True, help="who writes this entry (officer id)")
        parser.add_argument("--at", type=_when, help="when (ISO 8601 with offset; default now)")
        keys = parser.add_mutually_exclusive_group()
        keys.add_argument("--key-env", default=KEY_ENV_VAR, metavar="VAR")
        keys.add_argument("--insecure-dev-key", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_cases_subcommand(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``guardrail cases ...``."""
    cases = commands.add_parser("cases", help="the case ledger: complaints, cases, verdicts")
    sub = cases.add_subparsers(dest="cases_command", required=True, metavar="COMMAND")

    p = sub.add_parser("open", help="open a case (complaint, friction complaint, by hand)")
    _common(p, writes=True)
    p.add_argument("--type", required=True, choices=[t.value for t in CaseType], dest="case_type")
    p.add_argument("--text", default="", help="what the case is about")
    p.add_argument("--case-id", help="the case id (default: a new one)")
    p.add_argument("--source-case", help="the screening (decision case id) it concerns")
    p.add_argument("--branch")
    p.add_argument("--typology")
    p.add_argument("--amount", type=_money, help="amount at risk, e.g. 80000.00")
    p.add_argument("--assignee")
    p.add_argument(
        "--party",
        type=_party,
        action="append",
        default=[],
        help="ROLE:FIELD=VALUE,... e.g. complainant:name=张伟,phone=13800138000 (stored protected)",
    )
    p.set_defaults(func=_open)

    p = sub.add_parser("note", help="add a progress note")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("--text", required=True)
    p.set_defaults(func=_note)

    p = sub.add_parser("attach", help="attach an evidence file (stored by content hash)")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--text", default="")
    p.set_defaults(func=_attach)

    p = sub.add_parser("assign", help="assign the case to an officer")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("--to", required=True, dest="assignee")
    p.set_defaults(func=_assign)

    p = sub.add_parser("verdict", help="record a verdict learnt later")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("verdict", choices=[v.value for v in Verdict])
    p.add_argument("--text", default="")
    p.set_defaults(func=_verdict)

    p = sub.add_parser("amounts", help="record money prevented or returned")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("--prevented", type=_money)
    p.add_argument("--returned", type=_money)
    p.add_argument("--police", action="store_true", help="the case was reported to the police")
    p.add_argument("--text", default="")
    p.set_defaults(func=_amounts)

    p = sub.add_parser("close", help="close the case with its resolution")
    _common(p, writes=True)
    p.add_argument("case_id", metavar="CASE")
    p.add_argument("--resolution", required=True, choices=[r.value for r in Resolution])
    p.add_argument("--text", default="")
    p.add_argument("--prevented", type=_money)
    p.add_argument("--returned", type=_money)
    p.add_argument("--police", action="store_true")
    p.set_defaults(func=_close)

    p = sub.add_parser("intake", help="open a case for every screening at or above an action")
    _common(p, writes=True)
    p.add_argument("--open-at", default=Action.HOLD.value, choices=[a.value for a in Action])
    p.set_defaults(func=_intake)

    p = sub.add_parser("list", help="list cases")
    _common(p, writes=False)
    p.add_argument("--status", choices=["open", "closed", "all"], default="open")
    p.set_defaults(func=_list)

    p = sub.add_parser("show", help="one case with every entry")
    _common(p, writes=False)
    p.add_argument("case_id", metavar="CASE")
    p.set_defaults(func=_show)

    p = sub.add_parser("verify", help="verify the chain and every evidence file")
    _common(p, writes=False)
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--key-env", default=KEY_ENV_VAR, metavar="VAR")
    keys.add_argument("--insecure-dev-key", action="store_true")
    p.set_defaults(func=_verify)
    for parser in sub.choices.values():
        parser.set_defaults(func=_guarded(parser.get_default("func")))


def _guarded(run: Any) -> Any:
    def main(args: argparse.Namespace) -> int:
        try:
            result: int = run(args)
            return result
        except (CaseError, EvidenceError, AuditStoreError, AuditKeyError, _Usage) as error:
            print(f"guardrail cases {args.cases_command}: {error}", file=sys.stderr)
            return 2

    return main


def _keys(args: argparse.Namespace) -> AuditKeys:
    if getattr(args, "insecure_dev_key", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureAuditKeyWarning)
            return AuditKeys.insecure_development_keys()
    return AuditKeys.from_env(var=args.key_env, strict=True)


def _ledger(args: argparse.Namespace) -> CaseLedger:
    if not args.log.is_file():
        raise _Usage(f"{args.log}: no audit log at this path")
    try:
        log = AuditLog(SQLiteStore(args.log, create=False), _keys(args))
    except ValueError as error:
        raise _Usage(f"{args.log}: {error}") from None
    return CaseLedger.for_sqlite(log, args.evidence_dir)


def _print_state(state: CaseState, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state.to_dict(), ensure_ascii=False, indent=2))
        return
    d = state.to_dict()
    print(
        f"{state.case_id}  {state.case_type.value}  {state.status}  opened "
        f"{state.opened_at.isoformat()} by {state.opened_by}"
    )
    for key in (
        "summary",
        "branch_id",
        "source_case_id",
        "typology",
        "assignee",
        "verdict",
        "resolution",
        "amount_at_risk",
        "amount_prevented",
        "amount_returned",
    ):
        if d.get(key):
            print(f"  {key}: {d[key]}")
    for seq, entry in state.entries:
        extra = entry.text or entry.assignee or entry.verdict or entry.evidence_sha256 or ""
        print(f"  #{seq} {entry.at.isoformat()} {entry.entry.value:<18} {entry.by:<12} {extra}")


def _done(args: argparse.Namespace, ledger: CaseLedger, case_id: str) -> int:
    state = ledger.get(case_id)
    ledger.log.close()
    _print_state(state, args.json)
    return 0


def _open(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    case_id = ledger.open(
        args.case_type,
        by=args.by,
        text=args.text,
        at=args.at,
        case_id=args.case_id,
        source_case_id=args.source_case,
        branch_id=args.branch,
        typology=args.typology,
        parties=args.party,
        amount_at_risk=args.amount,
        assignee=args.assignee,
    )
    return _done(args, ledger, case_id)


def _writes_entry(
    write: Callable[[CaseLedger, argparse.Namespace], object],
) -> Callable[[argparse.Namespace], int]:
    """A command that adds one entry to an existing case, then reports the case."""

    def run(args: argparse.Namespace) -> int:
        ledger = _ledger(args)
        write(ledger, args)
        return _done(args, ledger, args.case_id)

    return run


def _police(args: argparse.Namespace) -> bool | None:
    return True if args.police else None


_note = _writes_entry(lambda cases, a: cases.note(a.case_id, a.text, by=a.by, at=a.at))
_attach = _writes_entry(
    lambda cases, a: cases.attach(a.case_id, a.file, by=a.by, text=a.text, at=a.at)
)
_assign = _writes_entry(lambda cases, a: cases.assign(a.case_id, a.assignee, by=a.by, at=a.at))
_verdict = _writes_entry(
    lambda cases, a: cases.verdict(a.case_id, a.verdict, by=a.by, text=a.text, at=a.at)
)
_amounts = _writes_entry(
    lambda cases, a: cases.amounts(
        a.case_id,
        by=a.by,
        prevented=a.prevented,
        returned=a.returned,
        reported_to_police=_police(a),
        text=a.text,
        at=a.at,
    )
)
_close = _writes_entry(
    lambda cases, a: cases.close(
        a.case_id,
        a.resolution,
        by=a.by,
        text=a.text,
        prevented=a.prevented,
        returned=a.returned,
        reported_to_police=_police(a),
        at=a.at,
    )
)


def _intake(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    policy = CasePolicy(open_at=Action(args.open_at))
    try:
        opened = ledger.intake(policy, by=args.by, at=args.at)
    finally:
        ledger.log.close()
    print(f"{args.log}: opened {len(opened)} case(s) at or above {policy.open_at.value}")
    return 0


def _store(args: argparse.Namespace) -> SQLiteStore:
    return SQLiteStore(args.log, create=False)


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        states = list_cases(store, args.status)
    finally:
        store.close()
    if args.json:
        print(json.dumps([s.to_dict() for s in states], ensure_ascii=False, indent=2))
        return 0
    for s in states:
        print(
            f"{s.case_id:<28} {s.case_type.value:<18} {s.status:<6} "
            f"{s.opened_at.date()}  {s.assignee or '-':<8} {s.verdict.value if s.verdict else '-'}"
            f"  {s.summary[:60]}"
        )
    print(f"{len(states)} case(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        state = find_case(store, args.case_id)
    finally:
        store.close()
    if state is None:
        raise CaseError(f"case {args.case_id}: no such case in the ledger")
    _print_state(state, args.json)
    return 0


def _verify(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    try:
        report = ledger.verify()
    finally:
        ledger.log.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        chain = report.chain
        print(
            f"{args.log}: chain {'OK' if chain.ok else 'FAILED'} ({chain.records} records); "
            f"{report.evidence_checked} evidence file(s) checked, "
            f"{len(report.evidence_problems)} problem(s)"
        )
        if chain.problem is not None:
            print(
                f"  chain: {chain.problem.kind.value} at seq {chain.problem.seq}: "
                f"{chain.problem.message}"
            )
        for problem in report.evidence_problems:
            print(f"  evidence {problem.kind}: {problem.message}")
    return 0 if report.ok else 1


__all__ = ["add_cases_subcommand", "default_evidence_root"]
