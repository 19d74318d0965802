"""Collect the scenario files in this folder with the guardrail pytest plugin.

The plugin is normally registered by the package's ``pytest11`` entry point; this conftest
forwards to it only when that entry point is not installed, so hooks never run twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guardrail.sim import pytest_plugin


def _plugin_installed(config: pytest.Config) -> bool:
    manager = config.pluginmanager
    return any(
        plugin is pytest_plugin
        for name, plugin in manager.list_name_plugin()
        if not name.endswith("conftest.py")
    )


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not any(plugin is pytest_plugin for _, plugin in pluginmanager.list_name_plugin()):
        pytest_plugin.pytest_addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    if not _plugin_installed(config):
        pytest_plugin.pytest_configure(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    if _plugin_installed(parent.config):
        return None
    return pytest_plugin.pytest_collect_file(file_path, parent)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _plugin_installed(config):
        pytest_plugin.pytest_terminal_summary(terminalreporter, exitstatus, config)
