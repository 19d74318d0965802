"""Fixtures: one real server process per module, with a key per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import TELLER, Server, add_key, serve, write_config


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
