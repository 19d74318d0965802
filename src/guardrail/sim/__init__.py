"""Simulation: scenario files (``guardrail.sim.scenario``), the scenario runner
(``guardrail.sim.runner``), the ``guardrail test`` command (``guardrail.sim.scenario_cli``) and
the pytest plugin (``guardrail.sim.pytest_plugin``). Import the submodules directly; this
package imports nothing so that loading the pytest plugin stays cheap."""
