"""The ``guardrail`` command: thin; parses arguments, calls the library, prints."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardrail.engine.base import BackendUnavailable
from guardrail.errors import GuardrailError
from guardrail.lang.errors import PackError, Severity
from guardrail.lang.loader import lint_pack, packs_under, stray_yaml_files
from guardrail.lang.pack import PACK_FILE
from guardrail.model.decision import TITLES_ZH, Decision
from guardrail.model.event import event_json_schema

DEFAULT_PACK_ENV = "GUARDRAIL_PACK"
DEFAULT_PACKS = ("rules/cn-baseline", "rules/starter")

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def default_pack() -> Path:
    """The pack used when ``--pack`` is not given: $GUARDRAIL_PACK, else the baseline in ./rules."""
    configured = os.environ.get(DEFAULT_PACK_ENV)
    if configured:
        return Path(configured)
    for candidate in DEFAULT_PACKS:
        if (Path(candidate) / PACK_FILE).is_file():
            return Path(candidate)
    raise SystemExit(
        f"guardrail: no rule pack given; pass --pack DIR or set {DEFAULT_PACK_ENV} "
        f"(looked for {', '.join(DEFAULT_PACKS)} under {Path.cwd()})"
    )


def _cmd_screen(args: argparse.Namespace) -> int:
    from guardrail.errors import StoreError
    from guardrail.guard import EventError
    from guardrail.stores import guard_from_path

    options, audit = _screen_options(args)
    try:
        guard = guard_from_path(
            args.pack or default_pack(), history=args.history, backend=args.backend, **options
        )
    except StoreError as error:
        print(f"guardrail screen: --history: {error}", file=sys.stderr)
        return 2
    status = 0
    for path in args.events:
        try:
            raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
            return 2
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            print(f"{path}: (event): not UTF-8 text at byte {error.start}", file=sys.stderr)
            status = 2
            continue
        try:
            decision = guard.screen_json(text)
        except EventError as error:
            for field, problem in error.problems:  # one line per problem, naming file and field
                print(f"{path}: {field}: {problem}", file=sys.stderr)
            status = 2
            continue
        if audit is not None:
            from guardrail.guard import parse_event

            audit.log_decision(parse_event(text), decision)
        if args.json:
            print(decision.model_dump_json())
        else:
            print(render_decision(decision, path))
    return status


def _screen_options(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Guard options from ``screen``'s flags, and the audit log to write to (or None)."""
    options: dict[str, Any] = {}
    audit = None
    if args.audit or args.production:
        from guardrail.audit.keys import AuditKeys

        keys = AuditKeys.from_env()
        if args.production:
            options.update(production=True, approval_key=keys.approval)
        if args.audit:
            from guardrail.stores import open_audit_log

            audit = open_audit_log(args.audit, keys)
    if args.candidate:
        from guardrail.lang.loader import load_pack

        options["candidate"] = load_pack(args.candidate)
        if audit is not None:
            options["shadow_sink"] = audit.log_shadow
    if args.policy_store:
        from guardrail.policy import CircuitBreakers, PostDecisionPolicies
        from guardrail.stores import open_breaker_store, open_snooze_store

        on_trip = audit.log_breaker_trip if audit is not None else None
        options["policies"] = PostDecisionPolicies(
            snoozes=open_snooze_store(args.policy_store),
            breakers=CircuitBreakers(open_breaker_store(args.policy_store), on_trip=on_trip),
        )
    return options, audit


def render_decision(decision: Decision, label: str = "") -> str:
    """A decision as a teller or reviewer reads it."""
    action = decision.action
    lines = [
        f"{label + ': ' if label else ''}{action.value.upper()} ({TITLES_ZH[action]})  "
        f"event {decision.event_id}  pack {decision.pack.name} {decision.pack.version} "
        f"[{decision.pack.content_hash[:12]}]  backend {decision.backend}"
    ]
    if decision.obligations:
        lines.append("  obligations: " + ", ".join(o.value for o in decision.obligations))
    for failure in decision.failures:
        lines.append(f"  FAILURE in {failure.stage}: {failure.error_type}: {failure.message}")
    for adjustment in decision.adjustments:
        lines.append(
            f"  {adjustment.kind.value}: {adjustment.message} "
            f"({adjustment.from_action.value} -> {adjustment.to_action.value})"
        )
    if not decision.hits:
        lines.append("  no rule hit")
    for hit in decision.hits:
        lines.append(f"  - {hit.rule_id} → {hit.action.value}: {hit.title_zh} / {hit.title_en}")
        for evidence in hit.evidence:
            detail = f"  ({evidence.detail})" if evidence.detail else ""
            lines.append(
                f"      because {evidence.feature} = "
                f"{json.dumps(evidence.value, ensure_ascii=False)}{detail}"
            )
        if hit.notice_zh or hit.notice_en:
            lines.append(f"      notice: {hit.notice_zh} {hit.notice_en}".rstrip())
        lines.append(f"      source: {hit.source}")
    if decision.score:
        parts = ", ".join(f"{p.rule_id} +{p.weight}" for p in decision.score_parts)
        lines.append(
            f"  score {decision.score} → {decision.score_action.value} ({parts}); "
            f"highest single rule {decision.ladder_action.value}"
        )
    for cleared in decision.cleared:
        by = ", ".join(
            f"{e.feature} = {json.dumps(e.value, ensure_ascii=False)}" for e in cleared.cleared_by
        )
        lines.append(f"  cleared {cleared.rule_id} ({cleared.action.value}) by {by}")
    return "\n".join(lines)


def _cmd_lint(args: argparse.Namespace) -> int:
    root = Path(args.pack)
    packs = packs_under(root)
    if not packs:
        print(f"{args.pack}: no {PACK_FILE} found here or in its subfolders", file=sys.stderr)
        return 2
    errors = 0
    for pack in packs:
        diagnostics = lint_pack(pack)
        for diagnostic in diagnostics:
            print(diagnostic)
        count = sum(d.severity is Severity.ERROR for d in diagnostics)
        errors += count
        warnings = len(diagnostics) - count
        state = "ok" if count == 0 else f"{count} error(s)"
        print(f"{pack}: {state}, {warnings} warning(s)", file=sys.stderr)
    for diagnostic in stray_yaml_files(root, packs):
        print(diagnostic)
        errors += diagnostic.severity is Severity.ERROR
    return 1 if errors else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(event_json_schema(), ensure_ascii=False, indent=2))
    return 0


def build_parser(registrars: Sequence[Registrar] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardrail", description="Counter-side anti-fraud screening."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    screen = commands.add_parser("screen", help="screen event JSON files and print the decisions")
    screen.add_argument("events", nargs="+", help="event JSON files ('-' for standard input)")
    screen.add_argument(
        "--pack", help=f"rule pack folder (default: ${DEFAULT_PACK_ENV} or rules/cn-baseline)"
    )
    screen.add_argument("--backend", default="reference", choices=("reference", "durable_rules"))
    screen.add_argument("--json", action="store_true", help="print one JSON decision per line")
    screen.add_argument(
        "--history",
        default="memory:",
        metavar="URL",
        help="executed history the windows read: memory: (default), sqlite:///path.db or "
        "postgresql://user@host:port/db",
    )
    screen.add_argument("--candidate", metavar="PACK", help="screen this pack in shadow too")
    screen.add_argument(
        "--audit", metavar="LOG", help="record decisions (and shadow decisions): file or URL"
    )
    screen.add_argument(
        "--policy-store",
        metavar="URL",
        help="snoozes and circuit breakers: a SQLite file, sqlite:///... or postgresql://...",
    )
    screen.add_argument(
        "--production",
        action="store_true",
        help="refuse a pack without a valid approval (needs GUARDRAIL_AUDIT_KEY)",
    )
    screen.set_defaults(func=_cmd_screen)

    lint = commands.add_parser("lint", help="check a rule pack (or every pack under a folder)")
    lint.add_argument("pack")
    lint.set_defaults(func=_cmd_lint)

    schema = commands.add_parser("schema", help="print the JSON Schema of events")
    schema.set_defaults(func=_cmd_schema)

    for register in registrars:
        register(commands)
    return parser


def _registrars() -> list[Registrar]:
    """Subcommands owned by other parts of the library (imported late to keep start-up cheap)."""
    from guardrail.analysis.cli import add_analyze_subcommand
    from guardrail.audit.cli import add_audit_subcommands
    from guardrail.auditsim.cli import extend_simulate
    from guardrail.cases.cli import add_cases_subcommand
    from guardrail.change.cli import add_change_subcommands
    from guardrail.replay.cli import add_replay_subcommands
    from guardrail.server.cli import add_server_subcommands
    from guardrail.sim.scenario_cli import add_test_subcommand
    from guardrail.stores import guard_from_path, open_audit_store

    def add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        # LOG may be a SQLite path or any store URL; verify and report never create a log.
        add_audit_subcommands(commands, lambda location: open_audit_store(location, create=False))

    def add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        add_replay_subcommands(
            commands,
            lambda pack, url, backend: guard_from_path(pack, history=url, backend=backend),
        )

    return [
        add_test_subcommand,
        add_simulate,
        extend_simulate,
        add_audit,
        add_cases_subcommand,
        add_server_subcommands,
        add_change_subcommands,
        add_analyze_subcommand,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_registrars())
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except PackError as error:
        print(error, file=sys.stderr)
        return 2
    except BackendUnavailable as error:  # e.g. --backend durable_rules on Python 3.13
        print(f"guardrail {args.command}: --backend: {error}", file=sys.stderr)
        return 2
    except GuardrailError as error:  # approval, audit key, store: one line, no traceback
        print(f"guardrail {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
