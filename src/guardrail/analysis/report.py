"""Plain-text and JSON renderings of analysis results for the CLI."""

from __future__ import annotations

from guardrail.analysis.queries import Analysis, Equivalence
from guardrail.model.decision import Action, Obligation


def analysis_text(analysis: Analysis, elapsed_s: float) -> str:
    lines = [
        f"{analysis.pack}: {analysis.rules} rules, {analysis.queries} solver queries "
        f"in {elapsed_s:.1f}s"
    ]
    if not analysis.findings:
        lines.append("  no dead, redundant or conflicting rules found")
    for finding in analysis.findings:
        lines.append(f"  {finding.kind:<18} {finding.rule}: {finding.explanation}")
    counts = {kind: 0 for kind in ("dead", "redundant", "conflicting_intent", "unknown")}
    for finding in analysis.findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    lines.append("  " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return "\n".join(lines)


Outcome = (
    tuple[Action, tuple[Obligation, ...]] | tuple[Action, tuple[Obligation, ...], tuple[str, ...]]
)


def outcome_json(outcome: Outcome | None) -> object:
    if outcome is None:
        return None
    rendered: dict[str, object] = {
        "action": outcome[0].value,
        "obligations": [o.value for o in outcome[1]],
    }
    if len(outcome) > 2:
        rendered["hits"] = list(outcome[2])
    return rendered


def _predicted(result: Equivalence, outcome: Outcome | None) -> object:
    """The solver's decision; its hit list only when hits were compared (else it is empty)."""
    if outcome is None or result.hits:
        return outcome_json(outcome)
    return outcome_json((outcome[0], outcome[1]))


def equivalence_json(
    result: Equivalence, screened: tuple[object, object] | None, verdict: str
) -> dict[str, object]:
    """The equivalence verdict for tools: ``prior`` lists the executed transactions to record
    (in order) before screening ``counterexample``."""
    return {
        "verdict": verdict,
        "explanation": result.explanation,
        "hits_compared": result.hits,
        "counterexample": result.event,
        "prior": result.prior,
        "predicted": {"old": _predicted(result, result.old), "new": _predicted(result, result.new)},
        "screened": None if screened is None else {"old": screened[0], "new": screened[1]},
        "model": result.model,
    }
