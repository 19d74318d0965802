"""Proofs about rule packs with an SMT solver: dead rules, redundant rules, equivalent packs
(same decisions, or also the same hits), and counterexamples with the history that realises
them."""

from guardrail.analysis.counterexample import confirm, replay
from guardrail.analysis.queries import (
    Analysis,
    Equivalence,
    Finding,
    Outcome,
    Verdict,
    analyze_pack,
    check_equivalence,
)

__all__ = [
    "Analysis",
    "Equivalence",
    "Finding",
    "Outcome",
    "Verdict",
    "analyze_pack",
    "check_equivalence",
    "confirm",
    "replay",
]
