"""One teller process acting on a shared counter session (for the multi-process tests).

``python session_worker.py URL CASE_ID STEP [--hold S]``: takes the session from the store
at URL, prints ``held`` once it holds it, waits S seconds, applies STEP (``ask`` the purpose
question, ``escalate``, ``withdraw`` = outcome withdrawn after dissuasion, ``close``) and saves.
Prints ``conflict: ...`` and exits 3 when someone else holds the session.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from guardrail.audit import AuditKeys
from guardrail.counter.session_store import SessionConflict
from guardrail.counter.shared import continue_shared
from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.stores import open_audit_log, open_session_store

STARTER = Path(__file__).resolve().parents[2] / "rules" / "starter"


def main() -> int:
    url, case_id, step = sys.argv[1:4]
    hold_s = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--hold" else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = AuditKeys.insecure_development_keys()
    store = open_session_store(url)
    audit = open_audit_log(url, keys)
    guard = Guard(load_pack(STARTER))
    try:
        with continue_shared(store, case_id, guard, audit=audit) as session:
            print("held", flush=True)
            time.sleep(hold_s)
            if step == "ask":
                session.ask_questions(["purpose"])
            elif step == "escalate":
                session.escalate("payee unknown to the family")
            elif step == "withdraw":
                session.record_outcome("withdrawn_after_dissuasion")
            elif step == "close":
                session.close()
            else:
                raise SystemExit(f"unknown step {step}")
    except SessionConflict as conflict:
        print(f"conflict: {conflict}", flush=True)
        return 3
    finally:
        store.close()
        audit.close()
    print(f"done {step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
