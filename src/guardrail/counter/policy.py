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
    """The action the session stands at after ``steps`` (see the module docstring).

    A rule that a later screening reports as cleared (its ``clears`` condition held on the
    answers, documents or family confirmation) leaves the hard floor, with the clearing in that
    decision; every other earlier hit stays in it."""
    raised = latest = failed = Action.PROCEED
    hard: dict[str, Action] = {}
    seen: set[str] = set()
    covered: set[str] = set()
    for entry in steps:
        if entry.decision is not None:
            decision = decisions[entry.decision]
            live = [hit for hit in decision.hits if hit.rule_id not in covered]
            latest = max((hit.action for hit in live), default=Action.PROCEED)
            if not covered:
                latest = max(latest, decision.score_action)
            for hit in live:
                if not ANSWER_DRIVEN_TAGS.intersection(hit.tags):
                    hard[hit.rule_id] = max(hard.get(hit.rule_id, Action.PROCEED), hit.action)
            for cleared in decision.cleared:
                hard.pop(cleared.rule_id, None)
            if decision.failures:
                failed = max(failed, FAIL_CLOSED_FLOOR)
            seen.update(hit.rule_id for hit in decision.hits)
        elif entry.step in (Step.TELLER_RAISE, Step.SUPERVISOR_REJECT):
            assert entry.override_to is not None
            raised = max(raised, entry.override_to)
        elif entry.step is Step.SUPERVISOR_OVERRIDE:
            assert entry.override_to is not None
            raised, latest, failed = entry.override_to, Action.PROCEED, Action.PROCEED
            hard.clear()
            covered |= seen
    return max(raised, failed, latest, *hard.values())
