"""``guardrail analyze``: thin wrapper over the queries (registered by ``guardrail.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from guardrail.analysis.counterexample import build_event, confirm
from guardrail.analysis.queries import DEFAULT_TIMEOUT_S, Verdict, analyze_pack, check_equivalence
from guardrail.analysis.report import analysis_text, equivalence_json, outcome_json
from guardrail.lang.loader import load_pack

EXIT_EQUIVALENT, EXIT_DIFFERENT, EXIT_UNKNOWN = 0, 1, 3


def add_analyze_subcommand(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="prove dead and redundant rules, or that two packs decide alike (SMT solver)",
    )
    analyze.add_argument("pack", nargs="?", help="rule pack folder to analyse")
    analyze.add_argument(
        "--equivalent", nargs=2, metavar=("OLD", "NEW"), help="prove two packs decide alike"
    )
    analyze.add_argument("--json", action="store_true", help="print the result as JSON")
    analyze.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per solver query"
    )
    analyze.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print("guardrail analyze: --timeout must be positive", file=sys.stderr)
        return 2
    if args.equivalent:
        return _equivalent(args.equivalent[0], args.equivalent[1], args.json, args.timeout)
    if not args.pack:
        print("guardrail analyze: give a PACK or --equivalent OLD NEW", file=sys.stderr)
        return 2
    pack = load_pack(args.pack)
    started = time.perf_counter()
    analysis = analyze_pack(pack, timeout_s=args.timeout)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({**analysis.as_json(), "seconds": round(elapsed, 2)}, ensure_ascii=False))
    else:
        print(analysis_text(analysis, elapsed))
    return 1 if analysis.dead else 0


def _equivalent(old_path: str, new_path: str, as_json: bool, timeout_s: float) -> int:
    old, new = load_pack(old_path), load_pack(new_path)
    result = check_equivalence(old, new, timeout_s=timeout_s)
    event = None
    screened = None
    verdict = result.verdict.value
    code = EXIT_EQUIVALENT if result.verdict is Verdict.PROVEN else EXIT_UNKNOWN
    if result.verdict is Verdict.REFUTED and result.model is not None:
        event = build_event(result.model)
        differs, before, after = confirm(old, new, event)
        screened = (outcome_json(before), outcome_json(after))
        if differs:
            verdict, code = "different", EXIT_DIFFERENT
        else:
            # The model needs context (windows, history, lists) the event alone cannot set.
            verdict = "unknown"
            result.explanation = (
                "the solver found a difference, but the event built from it decides alike "
                "when screened (it needs context the event cannot carry)"
            )
    if as_json:
        print(json.dumps(equivalence_json(result, event, screened, verdict), ensure_ascii=False))
        return code
    print(f"{verdict}: {result.explanation}")
    if event is not None and screened is not None:
        print(f"old pack: {json.dumps(screened[0])}  new pack: {json.dumps(screened[1])}")
        print(json.dumps(event, ensure_ascii=False, indent=2))
    return code
