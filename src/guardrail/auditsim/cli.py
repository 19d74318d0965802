"""``guardrail simulate --pack PACK --audit LOG``: the simulate command, extended to screen the
stream and write a bank's audit log (decisions, counter sessions, outcomes, cases,
complaints, later verdicts)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from guardrail.audit.keys import KEY_ENV_VAR, AuditKeyError, AuditKeys, InsecureAuditKeyWarning
from guardrail.model import Action


def _action(text: str) -> Action:
    try:
        return Action(text)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise argparse.ArgumentTypeError(f"not an action: {text!r}; one of {known}") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def extend_simulate(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``--pack``/``--audit`` (and friends) to the already registered ``simulate``."""
    simulate: argparse.ArgumentParser = commands.choices["simulate"]
    group = simulate.add_argument_group("audit log (screen the stream as a bank would)")
    group.add_argument("--pack", help="rule pack to screen with (needed with --audit)")
    group.add_argument("--audit", metavar="LOG", help="write a new SQLite audit log here")
    group.add_argument(
        "--days", type=_days, default=None, help="days the stream spans (default 30 with --audit)"
    )
    group.add_argument(
        "--open-cases-at",
        type=_action,
        default=Action.HOLD,
        metavar="ACTION",
        help="screenings at or above this action open a case (default hold)",
    )
    keys = group.add_mutually_exclusive_group()
    keys.add_argument(
        "--key-env", default=KEY_ENV_VAR, metavar="VAR", help=f"audit key variable ({KEY_ENV_VAR})"
    )
    keys.add_argument(
        "--insecure-dev-key",
        action="store_true",
        help="sign with the public development key (demonstrations only)",
    )
    plain = simulate.get_default("func")
    simulate.set_defaults(func=lambda args: _cmd(args, plain))


def _cmd(args: argparse.Namespace, plain: Any) -> int:
    if args.audit is None:
        if args.pack is not None:
            print("guardrail simulate: --pack needs --audit LOG", file=sys.stderr)
            return 2
        result: int = plain(args)
        return result
    if args.pack is None:
        print("guardrail simulate: --audit needs --pack PACK", file=sys.stderr)
        return 2
    from pathlib import Path

    from guardrail.auditsim.month import simulate_audit_log
    from guardrail.cases.ledger import CasePolicy
    from guardrail.guard import Guard
    from guardrail.sim.generator import generate

    log = Path(args.audit)
    if log.exists():
        print(f"guardrail simulate: {log}: already exists; give a new file", file=sys.stderr)
        return 2
    try:
        if args.insecure_dev_key:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureAuditKeyWarning)
                keys = AuditKeys.insecure_development_keys()
            print("guardrail simulate: signing with the public development key", file=sys.stderr)
        else:
            keys = AuditKeys.from_env(var=args.key_env, strict=True)
    except AuditKeyError as error:
        print(f"guardrail simulate: {error} (or pass --insecure-dev-key)", file=sys.stderr)
        return 2
    guard = Guard.from_path(args.pack)
    days = args.days or 30
    per_day = max(1, -(-args.n // days))
    try:
        stream = generate(args.n, args.fraud_rate, args.seed, start=args.start, per_day=per_day)
        summary = simulate_audit_log(
            guard,
            stream,
            log,
            keys,
            seed=args.seed,
            policy=CasePolicy(open_at=args.open_cases_at),
            progress=lambda count: print(f"  {count:,} events", file=sys.stderr),
        )
    except ValueError as error:
        print(f"guardrail simulate: {error}", file=sys.stderr)
        return 2
    print(
        f"{log}: {summary.records:,} records: {summary.screened:,} requests screened, "
        f"{summary.sessions:,} counter sessions, {summary.executed:,} executed, "
        f"{summary.prevented:,} stopped, {summary.cases_opened:,} cases, "
        f"{summary.complaints + summary.friction_complaints:,} complaints, "
        f"{summary.verdicts:,} verdicts",
        file=sys.stderr,
    )
    return 0
