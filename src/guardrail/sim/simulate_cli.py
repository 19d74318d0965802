"""``guardrail simulate`` and ``guardrail replay``: a labelled synthetic stream, and a pack's
recall and friction measured on it."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guardrail.guard import Guard
    from guardrail.sim.replay import ReplayReport


def _cmd_simulate(args: argparse.Namespace) -> int:
    from guardrail.sim.behaviours import BehaviourError, load_behaviours
    from guardrail.sim.generator import generate, write_jsonl

    try:
        behaviours = load_behaviours(args.behaviours)
    except BehaviourError as error:
        print(f"guardrail simulate: {error}", file=sys.stderr)
        return 2
    try:
        records = generate(
            args.n, args.fraud_rate, args.seed, start=args.start, behaviours=behaviours
        )
        if args.out in (None, "-"):
            write_jsonl(records, sys.stdout)
            sys.stdout.flush()
        else:
            with open(args.out, "w", encoding="utf-8", newline="\n") as out:
                count = write_jsonl(records, out)
            print(f"{args.out}: {count:,} events", file=sys.stderr)
    except ValueError as error:
        print(f"guardrail simulate: {error}", file=sys.stderr)
        return 2
    return 0


# Builds a Guard for PACK on the history store at URL with BACKEND (see guardrail.stores).
GuardOpener = Callable[[str, str, str], "Guard"]


def _cmd_replay(args: argparse.Namespace) -> int:
    from guardrail.errors import StoreError
    from guardrail.guard import Guard
    from guardrail.sim.replay import ReplayError, replay_file

    open_guard: GuardOpener | None = getattr(args, "open_guard", None)
    if args.history == "memory:" or open_guard is None:
        if args.history != "memory:":
            print("guardrail replay: --history: only memory: here", file=sys.stderr)
            return 2
        guard = Guard.from_path(args.pack, backend=args.backend)
    else:
        try:
            guard = open_guard(args.pack, args.history, args.backend)
        except StoreError as error:
            print(f"guardrail replay: --history: {error}", file=sys.stderr)
            return 2
    show_progress = not args.no_progress and sys.stderr.isatty()
    try:
        report = replay_file(
            guard,
            args.events,
            on_bad_line="skip" if args.skip_bad_lines else "stop",
            limit=args.limit,
            show_progress=show_progress,
        )
    except (ReplayError, OSError) as error:
        return replay_failed(error, args.events)
    return finish_replay(report, args)


def replay_failed(error: Exception, events: object) -> int:
    """Say why a replay stopped (a bad line, an unreadable stream); the exit code, 2."""
    if isinstance(error, OSError):
        print(f"guardrail replay: {events}: cannot read: {error.strerror}", file=sys.stderr)
    else:
        print(f"guardrail replay: {error}", file=sys.stderr)
        print("  (use --skip-bad-lines to skip and count malformed lines)", file=sys.stderr)
    return 2


def finish_replay(report: ReplayReport, args: argparse.Namespace) -> int:
    """Print the report and the skipped lines; 1 on failures or friction over --max-friction."""
    from guardrail.sim.scenario_cli import friction_gate

    print(report.to_json() if args.json else report.render())
    if report.bad_lines:
        print(
            f"guardrail replay: skipped {report.bad_lines:,} bad line(s); "
            f"first: {report.first_bad_line}",
            file=sys.stderr,
        )
    over = friction_gate("replay", report.friction_rate, args.max_friction)
    return 1 if report.failures or over else 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_simulate_subcommands(
    commands: argparse._SubParsersAction[Any], open_guard: GuardOpener | None = None
) -> None:
    """Register ``simulate`` and ``replay`` on the ``guardrail`` command. ``open_guard(pack,
    history_url, backend)`` builds replay's Guard on a history store URL (the ``guardrail``
    command passes one from ``guardrail.stores``; without it only ``memory:``)."""
    from guardrail.sim.generator import DEFAULT_START
    from guardrail.sim.scenario_cli import percent

    simulate = commands.add_parser(
        "simulate",
        help="write a labelled synthetic stream of counter events (JSONL)",
        description="Deterministic: the same arguments always give the same bytes.",
    )
    simulate.add_argument(
        "--n", type=_count, default=100_000, help="number of events (default 100000)"
    )
    simulate.add_argument(
        "--fraud-rate", type=_fraction, default=0.01, help="share of fraud events (default 0.01)"
    )
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument(
        "--start",
        type=_date,
        default=DEFAULT_START,
        help=f"first day, YYYY-MM-DD (default {DEFAULT_START})",
    )
    simulate.add_argument("--out", help="output file (default: standard output)")
    simulate.add_argument(
        "--behaviours",
        metavar="DIR",
        help="folder with typologies.yaml and legitimate.yaml (default: the bundled ones)",
    )
    simulate.set_defaults(func=_cmd_simulate)

    replay = commands.add_parser(
        "replay",
        help="replay a labelled JSONL stream through a pack; report hits, recall and friction",
    )
    replay.add_argument("pack", metavar="PACK", help="rule pack folder")
    replay.add_argument(
        "events", metavar="EVENTS.jsonl", help="labelled events ('-' for standard input)"
    )
    replay.add_argument("--backend", default="reference", choices=("reference", "durable_rules"))
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    replay.add_argument("--limit", type=_count, help="stop after this many events")
    replay.add_argument(
        "--max-friction",
        type=percent,
        metavar="PCT",
        help="fail (exit 1) when the friction rate on legitimate events is above PCT percent",
    )
    replay.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="skip and count malformed lines instead of stopping",
    )
    replay.add_argument(
        "--history",
        default="memory:",
        metavar="URL",
        help="history store the windows read and executed events are recorded in: memory: "
        "(default, fresh), sqlite:///path.db or postgresql://user@host:port/db",
    )
    replay.set_defaults(func=_cmd_replay, open_guard=open_guard)
