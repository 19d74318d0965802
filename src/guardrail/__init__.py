"""guardrail: counter-side anti-fraud checks for bank teller software."""

__version__ = "0.1.0"
