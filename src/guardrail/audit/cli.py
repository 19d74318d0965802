"""``guardrail audit verify|report``: argument parsing and printing only.

The main ``guardrail`` CLI calls :func:`add_audit_subcommands`; :func:`verify_main` and
:func:`report_main` run the same commands stand-alone (``python -m guardrail.audit ...``).
Exit codes: 0 fine, 1 verification found a problem, 2 could not run (bad arguments, missing
or unreadable log, missing key).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from guardrail.audit.dashboard import DashboardData, render_dashboard
from guardrail.audit.keys import KEY_ENV_VAR, AuditKeyError, AuditKeys, InsecureAuditKeyWarning
from guardrail.audit.log import to_audit_record
from guardrail.audit.period_report import DIMENSIONS, PeriodReport, store_report
from guardrail.audit.records import AuditRecord
from guardrail.audit.shadow_report import build_shadow_report
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.audit.store import AuditStore
from guardrail.audit.verify import VerifyReport, verify_reader
from guardrail.errors import StoreError

# Opens an existing log read-only from what the user typed (a path or a store URL).
StoreOpener = Callable[[str], AuditStore]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


class _UsageError(Exception):
    pass


def open_sqlite_log(location: str) -> AuditStore:
    """The default opener: ``location`` is a SQLite file (``guardrail.stores`` adds URLs)."""
    return SQLiteStore(Path(location), create=False)


def _opener(args: argparse.Namespace) -> StoreOpener:
    opener: StoreOpener = getattr(args, "open_store", None) or open_sqlite_log
    return opener


def _verify(
    args: argparse.Namespace, key: bytes | None, anchors: Sequence[tuple[int, str]]
) -> VerifyReport:
    store = _opener(args)(args.log)
    try:
        with store.snapshot() as reader:
            return verify_reader(reader, key, anchors=anchors)
    finally:
        store.close()


def _records(args: argparse.Namespace) -> Iterator[AuditRecord]:
    store = _opener(args)(args.log)
    try:
        with store.snapshot() as reader:
            for row in reader.iterate():
                yield to_audit_record(row)
    finally:
        store.close()


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, hash_ = text.partition(":")
    if not sep or not seq.isdigit() or len(hash_) != 64:
        raise argparse.ArgumentTypeError(f"expected SEQ:HASH (64 hex digits), got {text!r}")
    return int(seq), hash_.lower()


def configure_verify_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``verify`` arguments to ``parser``."""
    parser.add_argument(
        "log", metavar="LOG", help="the audit log: a SQLite file or a store URL (postgresql://...)"
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--key-env",
        default=KEY_ENV_VAR,
        metavar="VAR",
        help=f"environment variable holding the audit key (default {KEY_ENV_VAR})",
    )
    keys.add_argument(
        "--no-key",
        action="store_true",
        help="check only the hash chain (no signatures, no truncation check)",
    )
    keys.add_argument(
        "--insecure-dev-key",
        action="store_true",
        help="verify with the public development key (development logs only)",
    )
    parser.add_argument(
        "--anchor",
        action="append",
        type=_anchor,
        default=[],
        metavar="SEQ:HASH",
        help="an externally kept (seq, record hash) the log must still contain; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def configure_report_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` arguments to ``parser``."""
    parser.add_argument(
        "log", metavar="LOG", help="the audit log: a SQLite file or a store URL (postgresql://...)"
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="WHEN",
        help="first day or instant included (YYYY-MM-DD or ISO 8601)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        metavar="WHEN",
        help="last day included (YYYY-MM-DD) or instant excluded (ISO 8601)",
    )
    parser.add_argument(
        "--by",
        default="",
        metavar="DIMS",
        help=f"grouping, one or a comma list of: {', '.join(DIMENSIONS)} (e.g. month,branch)",
    )
    parser.add_argument(
        "--kind", action="append", default=[], help="only this transaction kind (repeatable)"
    )
    parser.add_argument(
        "--channel", action="append", default=[], help="only this channel (repeatable)"
    )
    parser.add_argument(
        "--tz",
        default="Asia/Shanghai",
        help="time zone for dates without an offset (default Asia/Shanghai)",
    )
    parser.add_argument(
        "--format",
        choices=["text", "json", "csv", "html"],
        default="text",
        help="html: the self-contained dashboard (charts and tables)",
    )
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    parser.add_argument(
        "--verify",
        action="store_true",
        help=f"verify the log first (needs {KEY_ENV_VAR}); refuse to report on a bad log",
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="report the shadow screenings instead: agreement with the live pack, differences",
    )


def _parse_when(text: str | None, zone: dt.tzinfo, *, end: bool) -> dt.datetime | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), tzinfo=zone)
            return moment + dt.timedelta(days=1) if end else moment
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        flag = "--to" if end else "--from"
        raise _UsageError(f"{flag}: not a date or ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _signing_key(args: argparse.Namespace) -> bytes | None:
    if getattr(args, "no_key", False):
        return None
    if getattr(args, "insecure_dev_key", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureAuditKeyWarning)
            return AuditKeys.insecure_development_keys().signing
    var = getattr(args, "key_env", KEY_ENV_VAR)
    return AuditKeys.from_env(var=var, strict=True).signing


def _print_verify(report: VerifyReport, log: str, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps({"log": str(log), **report.to_dict()}, indent=2) + "\n")
        return
    for warning in report.warnings:
        out.write(f"warning: {warning}\n")
    if report.ok:
        out.write(
            f"{log}: OK, {report.records} records, head at seq {report.head_seq}, "
            f"{report.checkpoints} checkpoints checked\n"
        )
    else:
        problem = report.problem
        assert problem is not None
        where = "" if problem.seq is None else f" at seq {problem.seq}"
        out.write(f"{log}: FAILED{where}: {problem.kind.value}: {problem.message}\n")


def run_verify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``verify`` on parsed arguments; returns the exit code."""
    out = sys.stdout if out is None else out
    try:
        key = _signing_key(args)
        report = _verify(args, key, args.anchor)
    except (AuditKeyError, StoreError) as exc:
        sys.stderr.write(f"guardrail audit verify: {exc}\n")
        return EXIT_ERROR
    _print_verify(report, args.log, args.json, out)
    return EXIT_OK if report.ok else EXIT_FAILED


def run_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``report`` on parsed arguments; returns the exit code."""
    out = sys.stdout if out is None else out
    try:
        zone: dt.tzinfo = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        sys.stderr.write(f"guardrail audit report: unknown time zone {args.tz!r}\n")
        return EXIT_ERROR
    try:
        start = _parse_when(args.start, zone, end=False)
        end = _parse_when(args.end, zone, end=True)
        rebuild_upto: int | None = None
        if args.verify:
            verdict = _verify(args, _signing_key(args), ())
            if not verdict.ok:
                problem = verdict.problem
                assert problem is not None
                sys.stderr.write(
                    f"guardrail audit report: the log failed verification at seq {problem.seq}:"
                    f" {problem.message}\n"
                )
                return EXIT_FAILED
            rebuild_upto = verdict.records  # report on exactly the records just verified
        if args.shadow:
            shadow = build_shadow_report(_records(args))
            if args.format in ("csv", "html"):
                raise _UsageError("--shadow reports as text or json")
            return _write(
                args, shadow.to_json() if args.format == "json" else shadow.to_text(), out
            )
        filters: dict[str, Any] = {
            "start": start,
            "end": end,
            "tz": args.tz,
            "kinds": args.kind,
            "channels": args.channel,
        }
        store = _opener(args)(args.log)
        try:

            def make(by: str = "", rebuild: int | None = None) -> PeriodReport:
                return store_report(store, by=by, rebuild_upto=rebuild, **filters)

            report = make(args.by, rebuild_upto)
            html = None
            if args.format == "html":
                html = render_dashboard(DashboardData(make(), make("day"), make("branch")))
        finally:
            store.close()
        if html is not None:
            text = html
        elif args.format == "json":
            text = report.to_json()
        elif args.format == "csv":
            text = report.to_csv()
        else:
            text = report.to_text()
    except _UsageError as exc:
        sys.stderr.write(f"guardrail audit report: {exc}\n")
        return EXIT_ERROR
    except (AuditKeyError, StoreError) as exc:
        sys.stderr.write(f"guardrail audit report: {exc}\n")
        return EXIT_ERROR
    return _write(args, text, out)


def _write(args: argparse.Namespace, text: str, out: TextIO) -> int:
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"guardrail audit report: {args.output}: {exc.strerror}\n")
            return EXIT_ERROR
    else:
        out.write(text)
    return EXIT_OK


def add_audit_subcommands(subparsers: Any, open_store: StoreOpener | None = None) -> None:
    """Register ``audit verify`` and ``audit report`` on the main CLI's subparsers; each
    sets ``func`` which takes the parsed args and returns an exit code. ``open_store`` opens
    LOG (default: a SQLite file; the ``guardrail`` command passes one that takes URLs)."""
    audit = subparsers.add_parser("audit", help="verify and report on the audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = commands.add_parser("verify", help="detect tampering; exit 1 if any")
    configure_verify_parser(verify)
    verify.set_defaults(func=run_verify, open_store=open_store)
    report = commands.add_parser("report", help="counts and amounts by action and outcome")
    configure_report_parser(report)
    report.set_defaults(func=run_report, open_store=open_store)


def verify_main(argv: Sequence[str] | None = None) -> int:
    """``guardrail audit verify LOG``: 0 if the log verifies, 1 if not, 2 on errors."""
    parser = argparse.ArgumentParser(
        prog="guardrail audit verify", description="Verify an audit log."
    )
    configure_verify_parser(parser)
    return _run(parser, run_verify, argv)


def report_main(argv: Sequence[str] | None = None) -> int:
    """``guardrail audit report LOG [--from] [--to] [--by] [--format]``."""
    parser = argparse.ArgumentParser(
        prog="guardrail audit report", description="Report on an audit log."
    )
    configure_report_parser(parser)
    return _run(parser, run_report, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m guardrail.audit verify|report ...``."""
    parser = argparse.ArgumentParser(prog="python -m guardrail.audit")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify")
    configure_verify_parser(verify)
    verify.set_defaults(func=run_verify)
    report = sub.add_parser("report")
    configure_report_parser(report)
    report.set_defaults(func=run_report)
    return _run(parser, None, argv)


def _run(parser: argparse.ArgumentParser, func: Any, argv: Sequence[str] | None) -> int:
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    runner = func if func is not None else args.func
    result: int = runner(args)
    return result
