"""Proofs about rule packs with an SMT solver: dead rules, redundant rules, equivalent packs."""

from guardrail.analysis.queries import (
    Analysis,
    Equivalence,
    Finding,
    analyze_pack,
    check_equivalence,
)

__all__ = ["Analysis", "Equivalence", "Finding", "analyze_pack", "check_equivalence"]
