"""Changing rules safely: pack diffs (with their effect on a stream), approvals, snoozes and
breaker resets from the command line. Above ``guard``, ``audit`` and ``sim``."""
