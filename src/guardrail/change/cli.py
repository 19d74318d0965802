"""``guardrail diff``, ``guardrail pack approve|verify``, ``guardrail snooze add|list|remove``
and ``guardrail breaker status|reset``.

Every change to how rules apply (an approval, a snooze, a breaker reset) needs the person's id
(``--by``) and is written to the audit log (``--audit LOG``, signed with
``GUARDRAIL_AUDIT_KEY``). When ``GUARDRAIL_APPROVERS`` is set (comma-separated ids), only
those ids may approve, snooze or reset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

APPROVERS_ENV = "GUARDRAIL_APPROVERS"


class _Refused(Exception):
    """A bad argument or a refused change: one line on stderr, exit 2."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _authorised(approver: str) -> str:
    approver = approver.strip()
    if not approver:
        raise _Refused("--by needs the id of the person approving")
    allowed = os.environ.get(APPROVERS_ENV)
    if allowed is not None:
        names = {name.strip() for name in allowed.split(",") if name.strip()}
        if approver not in names:
            raise _Refused(f"{approver!r} is not an authorised approver (see ${APPROVERS_ENV})")
    return approver


def _keys() -> Any:
    from guardrail.audit.keys import AuditKeyError, AuditKeys

    try:
        return AuditKeys.from_env()
    except AuditKeyError as error:
        raise _Refused(str(error)) from None


def _audit(location: str) -> Any:
    from guardrail.stores import open_audit_log

    try:
        return open_audit_log(location, _keys())
    except (OSError, ValueError) as error:
        raise _Refused(f"{location}: cannot open the audit log: {error}") from None


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        from guardrail.errors import GuardrailError
        from guardrail.lang.errors import PackError

        try:
            result: int = func(args)
        except PackError:
            raise  # the main command prints every diagnostic
        except (_Refused, GuardrailError) as error:
            print(f"guardrail {args.command}: {error}", file=sys.stderr)
            return 2
        return result

    return wrapped


# -- diff ----------------------------------------------------------------------------------


def _cmd_diff(args: argparse.Namespace) -> int:
    from guardrail.change.diff import diff_packs, render, stream_impact, to_json
    from guardrail.lang.loader import load_pack
    from guardrail.sim.replay import ReplayError

    old, new = load_pack(args.old), load_pack(args.new)
    diff = diff_packs(old, new)
    impact = None
    if args.events:
        try:
            with open(args.events, encoding="utf-8") as handle:
                impact = stream_impact(old, new, handle, source=args.events)
        except OSError as error:
            raise _Refused(f"{args.events}: cannot read: {error.strerror}") from None
        except ReplayError as error:
            raise _Refused(str(error)) from None
    print(to_json(diff, impact) if args.json else render(diff, impact))
    return 0


# -- pack approve / verify -----------------------------------------------------------------


def _cmd_approve(args: argparse.Namespace) -> int:
    from guardrail.lang.approval import ApprovalError, approve
    from guardrail.lang.loader import load_pack

    approver = _authorised(args.by)
    pack = load_pack(args.pack)
    keys = _keys()
    try:
        approval = approve(pack, approver, keys.approval, maker=args.maker, now=_now())
    except ApprovalError as error:
        raise _Refused(str(error)) from None
    log = _audit(args.audit) if args.audit else None
    if log is not None:
        with log:
            log.log_control(
                "pack_approved",
                actor=approver,
                at=_now(),
                pack=pack.ref,
                reason=args.reason,
                detail=f"made by {approval.maker}; content {approval.content_hash}",
            )
    print(
        f"{args.pack}: approved content {approval.content_hash[:12]} of {approval.pack} "
        f"{approval.version}, made by {approval.maker}, approved by {approval.approver} at "
        f"{approval.approved_at}"
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from guardrail.lang.approval import ApprovalError, verify_approval
    from guardrail.lang.loader import load_pack

    pack = load_pack(args.pack)
    try:
        approval = verify_approval(pack, _keys().approval)
    except ApprovalError as error:
        print(f"guardrail pack verify: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.pack}: approved by {approval.approver} at {approval.approved_at}; content matches"
    )
    return 0


# -- snooze --------------------------------------------------------------------------------


def _until(text: str) -> dt.datetime:
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone offset: {text!r}")
    return moment


def _entity(args: argparse.Namespace) -> tuple[str, str]:
    given = [(kind, getattr(args, kind)) for kind in ("customer", "account", "payee")]
    chosen = [(kind, value) for kind, value in given if value]
    if len(chosen) != 1:
        raise _Refused("name exactly one of --customer, --account, --payee")
    return chosen[0]


def _cmd_snooze_add(args: argparse.Namespace) -> int:
    from guardrail.lang.loader import load_pack
    from guardrail.policy.snooze import new_snooze
    from guardrail.stores import open_snooze_store

    approver = _authorised(args.by)
    kind, value = _entity(args)
    pack = load_pack(args.pack)
    now = _now()
    snooze = new_snooze(
        pack,
        args.rule,
        kind,
        value,
        until=args.until,
        reason=args.reason,
        approver=approver,
        now=now,
    )
    with _audit(args.audit) as log:
        log.log_control(
            "snooze_added",
            actor=approver,
            at=now,
            rule_id=snooze.rule_id,
            entity=kind,
            entity_value=value,
            until=snooze.until,
            reason=snooze.reason,
            pack=pack.ref,
        )
        store = open_snooze_store(args.store)
        try:
            store.add(snooze)
        finally:
            _close(store)
    print(snooze.describe())
    return 0


def _cmd_snooze_remove(args: argparse.Namespace) -> int:
    from guardrail.policy.snooze import EntityKind, entity_hash
    from guardrail.stores import open_snooze_store

    approver = _authorised(args.by)
    kind, value = _entity(args)
    entity = EntityKind(kind)
    store = open_snooze_store(args.store)
    try:
        removed = store.remove(args.rule, entity, entity_hash(entity, value))
    finally:
        _close(store)
    if not removed:
        raise _Refused(f"no snooze of rule {args.rule!r} for that {kind}")
    with _audit(args.audit) as log:
        log.log_control(
            "snooze_removed",
            actor=approver,
            at=_now(),
            rule_id=args.rule,
            entity=kind,
            entity_value=value,
            reason=args.reason,
        )
    print(f"snooze of rule {args.rule} for that {kind} removed")
    return 0


def _cmd_snooze_list(args: argparse.Namespace) -> int:
    from guardrail.stores import open_snooze_store

    store = open_snooze_store(args.store)
    try:
        snoozes = store.all()
    finally:
        _close(store)
    now = _now()
    for s in snoozes:
        state = "active" if s.until > now else "expired"
        print(
            f"{s.rule_id}\t{s.entity.value} {s.entity_hint}\tuntil {s.until.isoformat()}\t"
            f"{state}\tby {s.approver}\t{s.reason}"
        )
    if not snoozes:
        print("no snoozes", file=sys.stderr)
    return 0


# -- breaker -------------------------------------------------------------------------------


def _cmd_breaker_status(args: argparse.Namespace) -> int:
    from guardrail.lang.loader import load_pack
    from guardrail.stores import open_breaker_store

    pack = load_pack(args.pack)
    watched = sorted({r.rule_id for r in pack.rules if r.spec.circuit_breaker is not None})
    store = open_breaker_store(args.store)
    try:
        tripped = store.tripped(watched)
    finally:
        _close(store)
    for rule_id in watched:
        state = tripped.get(rule_id)
        if state is None:
            print(f"{rule_id}\tclosed")
        else:
            print(
                f"{rule_id}\tTRIPPED at {state.tripped_at.isoformat()}\thit rate "
                f"{100 * state.hit_rate:.1f}% of {state.screened}\tcapped at {state.cap_at.value}"
            )
    return 1 if tripped else 0


def _cmd_breaker_reset(args: argparse.Namespace) -> int:
    from guardrail.stores import open_breaker_store

    approver = _authorised(args.by)
    if not args.reason.strip():
        raise _Refused("a reset needs --reason")
    log = _audit(args.audit)
    store = open_breaker_store(args.store)
    try:
        before = store.reset(args.rule)
    finally:
        _close(store)
    with log:
        detail = (
            ""
            if before is None
            else (
                f"was tripped at {before.tripped_at.isoformat()}, hit rate "
                f"{100 * before.hit_rate:.1f}% of {before.screened}"
            )
        )
        log.log_control(
            "breaker_reset",
            actor=approver,
            at=_now(),
            rule_id=args.rule,
            reason=args.reason,
            detail=detail or "was not tripped; counts cleared",
        )
    print(f"breaker of rule {args.rule} reset by {approver}" + (f" ({detail})" if detail else ""))
    return 0


def add_change_subcommands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``diff``, ``pack``, ``snooze`` and ``breaker``."""
    diff = commands.add_parser(
        "diff", help="what changed between two packs; with --events, which decisions change"
    )
    diff.add_argument("old", metavar="OLD", help="the pack in force")
    diff.add_argument("new", metavar="NEW", help="the changed pack")
    diff.add_argument("--events", metavar="STREAM", help="labelled JSONL stream to replay")
    diff.add_argument("--json", action="store_true", help="JSON output for tools")
    diff.set_defaults(func=_run(_cmd_diff))

    pack = commands.add_parser("pack", help="approve a pack (maker-checker) or check its approval")
    pack_commands = pack.add_subparsers(dest="pack_command", required=True, metavar="COMMAND")
    approve = pack_commands.add_parser("approve", help="sign the pack's exact content")
    approve.add_argument("pack", metavar="PACK")
    approve.add_argument(
        "--maker", required=True, metavar="ID", help="who made the change (not the checker)"
    )
    approve.add_argument("--by", required=True, metavar="ID", help="the checker's id")
    approve.add_argument("--reason", default="", help="ticket or change reference")
    approve.add_argument("--audit", metavar="LOG", help="also record it in this log (file or URL)")
    approve.set_defaults(func=_run(_cmd_approve))
    verify = pack_commands.add_parser("verify", help="exit 1 unless the approval matches")
    verify.add_argument("pack", metavar="PACK")
    verify.set_defaults(func=_run(_cmd_verify))

    snooze = commands.add_parser("snooze", help="snooze a rule for one customer, account, payee")
    snooze_commands = snooze.add_subparsers(dest="snooze_command", required=True, metavar="COMMAND")
    for name, func in (("add", _cmd_snooze_add), ("remove", _cmd_snooze_remove)):
        sub = snooze_commands.add_parser(name, help=f"{name} a snooze (audited)")
        if name == "add":
            sub.add_argument("pack", metavar="PACK")
        sub.add_argument("rule", metavar="RULE")
        for kind in ("customer", "account", "payee"):
            sub.add_argument(f"--{kind}", metavar="ID")
        if name == "add":
            sub.add_argument("--until", type=_until, required=True, help="date or ISO time")
        sub.add_argument("--reason", required=True)
        sub.add_argument("--by", required=True, metavar="ID", help="the approver's id")
        sub.add_argument(
            "--store", required=True, help="policy store: a SQLite file or a store URL"
        )
        sub.add_argument(
            "--audit", required=True, metavar="LOG", help="a SQLite file or a store URL"
        )
        sub.set_defaults(func=_run(func))
    listing = snooze_commands.add_parser("list", help="every snooze in the store")
    listing.add_argument("--store", required=True)
    listing.set_defaults(func=_run(_cmd_snooze_list))

    breaker = commands.add_parser("breaker", help="circuit breakers: status and reset")
    breaker_commands = breaker.add_subparsers(
        dest="breaker_command", required=True, metavar="COMMAND"
    )
    status = breaker_commands.add_parser("status", help="exit 1 when any breaker is tripped")
    status.add_argument("pack", metavar="PACK")
    status.add_argument("--store", required=True)
    status.set_defaults(func=_run(_cmd_breaker_status))
    reset = breaker_commands.add_parser("reset", help="close a tripped breaker (audited)")
    reset.add_argument("rule", metavar="RULE")
    reset.add_argument("--by", required=True, metavar="ID")
    reset.add_argument("--reason", required=True)
    reset.add_argument("--store", required=True)
    reset.add_argument("--audit", required=True, metavar="LOG")
    reset.set_defaults(func=_run(_cmd_breaker_reset))
