"""A bank's audit log, simulated: the labelled stream screened, counter sessions worked as the
simulated customer would answer, outcomes, executed transactions, cases, complaints and later
verdicts, all written into a real chained audit log (``guardrail simulate --audit``)."""

from guardrail.auditsim.month import SimulationSummary, simulate_audit_log

__all__ = ["SimulationSummary", "simulate_audit_log"]
