"""The effective-action policy of a counter session: the highest of the latest screening's action
and the hard floor (every earlier screening's hits not tagged ``answers``, every teller raise and
supervisor rejection); a supervisor's override replaces the floor with its own action, covering
the rules hit so far (a rule first hit after the override raises the action again). See
``docs/counter.md``."""

from __future__ import annotations

from collections.abc import Sequence

from guardrail.counter.entries import StepEntry
from guardrail.counter.states import Step
from guardrail.model.decision import FAIL_CLOSED_FLOOR, Action, Decision

ANSWER_DRIVEN_TAGS = frozenset({"answers"})  # hits that later answers may withdraw


def effective_action(steps: Sequence[StepEntry], decisions: Sequence[Decision]) -> Action:
    """The action the session stands at after ``steps`` (see the module docstring)."""
    floor = latest = Action.PROCEED
    seen: set[str] = set()
    covered: set[str] = set()
    for entry in steps:
        if entry.decision is not None:
            decision = decisions[entry.decision]
            live = [hit for hit in decision.hits if hit.rule_id not in covered]
            latest = max((hit.action for hit in live), default=Action.PROCEED)
            hard = max(
                (hit.action for hit in live if not ANSWER_DRIVEN_TAGS.intersection(hit.tags)),
                default=Action.PROCEED,
            )
            if decision.failures:
                hard = max(hard, FAIL_CLOSED_FLOOR)
            floor = max(floor, hard)
            seen.update(hit.rule_id for hit in decision.hits)
        elif entry.step in (Step.TELLER_RAISE, Step.SUPERVISOR_REJECT):
            assert entry.override_to is not None
            floor = max(floor, entry.override_to)
        elif entry.step is Step.SUPERVISOR_OVERRIDE:
            assert entry.override_to is not None
            floor, latest = entry.override_to, Action.PROCEED
            covered |= seen
    return max(floor, latest)
