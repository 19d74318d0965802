"""Constants shared by the case and report tests."""

from __future__ import annotations

from pathlib import Path

SECRET = b"case-tests-secret-key-0123456789ab"
PACK = Path(__file__).resolve().parents[2] / "rules" / "cn-baseline"
