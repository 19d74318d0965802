"""``guardrail simulate --format parquet`` and ``guardrail replay --engine ... --decisions ...``:
extends the ``sim`` commands with Parquet streams and the bulk replay engines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from guardrail.errors import GuardrailError
from guardrail.replay.run import ENGINES
from guardrail.replay.table import is_parquet
from guardrail.sim.replay import BadLinePolicy
from guardrail.sim.simulate_cli import (
    GuardOpener,
    add_simulate_subcommands,
    finish_replay,
    replay_failed,
)


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.format == "jsonl":
        result: int = args.jsonl_simulate(args)
        return result
    from guardrail.replay.table import lines_of, write_parquet
    from guardrail.sim.behaviours import BehaviourError, load_behaviours
    from guardrail.sim.generator import generate

    if args.out in (None, "-"):
        print("guardrail simulate: --format parquet needs --out FILE.parquet", file=sys.stderr)
        return 2
    try:
        behaviours = load_behaviours(args.behaviours)
        records = generate(
            args.n, args.fraud_rate, args.seed, start=args.start, behaviours=behaviours
        )
        count = write_parquet(lines_of(records), args.out)
    except (BehaviourError, ValueError) as error:
        print(f"guardrail simulate: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"guardrail simulate: {args.out}: cannot write: {error.strerror}", file=sys.stderr)
        return 2
    print(f"{args.out}: {count:,} events", file=sys.stderr)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from guardrail.guard import Guard
    from guardrail.replay.report import write_decisions
    from guardrail.replay.run import replay_bulk, replay_reference
    from guardrail.replay.table import count_rows
    from guardrail.sim.replay import ReplayError, count_lines

    plain = args.engine == "reference" and args.decisions is None
    if plain and not is_parquet(args.events):
        result: int = args.sim_replay(args)  # the sim command, with its history stores
        return result
    if args.engine != "reference" and args.history != "memory:":
        print("guardrail replay: --history applies to --engine reference only", file=sys.stderr)
        return 2
    if args.engine != "reference" and args.backend != "reference":
        print("guardrail replay: --backend applies to --engine reference only", file=sys.stderr)
        return 2
    if str(args.events) == "-" and args.engine != "reference":
        print("guardrail replay: the bulk engines read a file, not standard input", file=sys.stderr)
        return 2
    if args.history != "memory:" and args.open_guard is not None:
        try:
            guard = args.open_guard(args.pack, args.history, args.backend)
        except GuardrailError as error:
            print(f"guardrail replay: --history: {error}", file=sys.stderr)
            return 2
    else:
        guard = Guard.from_path(args.pack, backend=args.backend)
    show_progress = not args.no_progress and sys.stderr.isatty()
    on_bad_line: BadLinePolicy = "skip" if args.skip_bad_lines else "stop"
    keep = args.decisions is not None
    events = "/dev/stdin" if str(args.events) == "-" else args.events
    try:
        if args.engine == "reference":
            bar = None
            if show_progress:
                from guardrail.sim.replay import _Progress

                total = count_rows(events) if is_parquet(events) else count_lines(Path(events))
                bar = _Progress(min(total, args.limit) if args.limit is not None else total)
            if bar is not None:
                with bar:
                    outcome = replay_reference(
                        guard,
                        events,
                        on_bad_line=on_bad_line,
                        limit=args.limit,
                        keep_decisions=keep,
                        progress=bar.advance,
                    )
            else:
                outcome = replay_reference(
                    guard, events, on_bad_line=on_bad_line, limit=args.limit, keep_decisions=keep
                )
        else:
            options: dict[str, Any] = {}
            for item in args.conf or []:
                key, _, value = item.partition("=")
                options[key] = value
            outcome = replay_bulk(
                guard,
                events,
                args.engine,
                on_bad_line=on_bad_line,
                limit=args.limit,
                keep_decisions=keep,
                progress=_stderr if show_progress else None,
                spark_master=args.master,
                spark_options=options,
            )
    except (ReplayError, OSError) as error:
        return replay_failed(error, args.events)
    except GuardrailError as error:
        print(f"guardrail replay: {error}", file=sys.stderr)
        return 2
    report = outcome.report
    if keep and outcome.decisions is not None:
        try:
            write_decisions(outcome.decisions, args.decisions)
        except OSError as error:
            print(f"guardrail replay: {args.decisions}: cannot write: {error}", file=sys.stderr)
            return 2
    return finish_replay(report, args)


def _stderr(message: str) -> None:
    print(f"replay: {message}", file=sys.stderr)


def add_replay_subcommands(
    commands: argparse._SubParsersAction[Any], open_guard: GuardOpener | None = None
) -> None:
    """Register ``simulate`` and ``replay`` (from ``sim``) with Parquet and the bulk engines;
    ``open_guard`` as for ``sim.simulate_cli.add_simulate_subcommands``."""
    add_simulate_subcommands(commands, open_guard)
    simulate: argparse.ArgumentParser = commands.choices["simulate"]
    simulate.add_argument(
        "--format",
        choices=("jsonl", "parquet"),
        default="jsonl",
        help="jsonl (default) or parquet (needs --out)",
    )
    simulate.set_defaults(jsonl_simulate=simulate.get_default("func"), func=_cmd_simulate)

    replay: argparse.ArgumentParser = commands.choices["replay"]
    replay.add_argument(
        "--engine",
        choices=ENGINES,
        default="reference",
        help="reference (default: screens event by event through Guard), columnar (one "
        "machine, Polars) or spark; all three give the same decisions",
    )
    replay.add_argument(
        "--decisions",
        metavar="FILE.parquet",
        help="also write per-event decisions (line, event id, action, obligations, rule ids)",
    )
    replay.add_argument(
        "--master",
        default="local[2]",
        help="Spark master for --engine spark (local[N], spark://HOST:PORT, yarn)",
    )
    replay.add_argument(
        "--conf",
        action="append",
        metavar="KEY=VALUE",
        help="extra Spark configuration for --engine spark (repeatable)",
    )
    replay.set_defaults(
        sim_replay=replay.get_default("func"), open_guard=open_guard, func=_cmd_replay
    )
