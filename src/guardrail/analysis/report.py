"""Plain-text and JSON renderings of analysis results for the CLI."""

from __future__ import annotations

from typing import Any

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


def outcome_json(outcome: tuple[Action, tuple[Obligation, ...]] | None) -> object:
    if outcome is None:
        return None
    return {"action": outcome[0].value, "obligations": [o.value for o in outcome[1]]}


def equivalence_json(
    result: Equivalence,
    event: dict[str, Any] | None,
    screened: tuple[object, object] | None,
    verdict: str,
) -> dict[str, object]:
    return {
        "verdict": verdict,
        "explanation": result.explanation,
        "counterexample": event,
        "predicted": {"old": outcome_json(result.old), "new": outcome_json(result.new)},
        "screened": None if screened is None else {"old": screened[0], "new": screened[1]},
        "model": result.model,
    }
