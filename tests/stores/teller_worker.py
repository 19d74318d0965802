"""A teller process for the multi-process tests: screens events against a shared store.

``python teller_worker.py HISTORY_URL EVENTS.jsonl OUT.jsonl [--audit URL] [--threads N]
[--no-record]``: the events are grouped by customer, each thread takes whole customers and
handles their events in order (screen, log the decision, record as executed); one JSON line per
event is written and flushed only after everything for it was acknowledged.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import warnings
from pathlib import Path

from guardrail.audit import AuditKeys
from guardrail.context.windows import history_values
from guardrail.guard import parse_event
from guardrail.model.event import Event
from guardrail.stores import guard_from_path, open_audit_log

PACK = Path(__file__).resolve().parents[2] / "rules" / "cn-baseline"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("history")
    parser.add_argument("events", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--audit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    guard = guard_from_path(PACK, history=args.history)
    audit = None
    if args.audit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = AuditKeys.insecure_development_keys()
        audit = open_audit_log(args.audit, keys)
    events = [parse_event(line) for line in args.events.read_text().splitlines() if line]
    by_customer: dict[str, list[Event]] = {}
    for event in events:
        by_customer.setdefault(event.customer.id, []).append(event)
    groups = list(by_customer.values())
    specs = {f"window.{name}": spec for name, spec in guard.pack.windows.items()}
    out = args.out.open("a", encoding="utf-8")
    out_lock = threading.Lock()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for group in groups[index :: args.threads]:
                for event in group:
                    values = history_values(event, specs, guard.history)
                    decision = guard.screen(event)
                    if audit is not None:
                        audit.log_decision(event, decision, case_id=event.event_id)
                    if not args.no_record:
                        guard.record_executed(event)
                    line = {
                        "event_id": event.event_id,
                        "action": decision.action.value,
                        "obligations": sorted(o.value for o in decision.obligations),
                        "rules": sorted(hit.rule_id for hit in decision.hits),
                        "failures": [f.message for f in decision.failures],
                        "windows": values,
                    }
                    with out_lock:
                        out.write(json.dumps(line) + "\n")
                        out.flush()
        except BaseException as exc:  # reported by the exit code
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.close()
    guard.history.close()
    if audit is not None:
        audit.close()
    for error in errors:
        print(f"worker error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
