"""Fixtures: one real server process per module, with a key per role."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import ROOT, Server, add_key, serve, write_config

EVENT = json.loads((ROOT / "examples/events/elderly_cash_on_phone.json").read_text("utf-8"))
TELLER = "T0457"


def event(teller_id: str = TELLER, **changes: Any) -> dict[str, Any]:
    """The example event with a fresh id (and any top-level field changed)."""
    return {**EVENT, "event_id": f"evt-{uuid.uuid4().hex[:16]}", "teller_id": teller_id, **changes}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("serve")
    config = write_config(folder)
    keys = {
        "teller": add_key(config, "teller", TELLER),
        "teller2": add_key(config, "teller", "T0999"),
        "supervisor": add_key(config, "supervisor", "S0001"),
        "supervisor_as_teller": add_key(config, "supervisor", TELLER),
        "auditor": add_key(config, "auditor", "A0001"),
        "admin": add_key(config, "admin", "root"),
    }
    with serve(config) as running:
        running.keys = keys
        yield running
