"""What-if scenarios and parameter sweeps: edits of a site, evaluation against the baseline, Dask.

Library entry points (the CLI and the API call these):

- :func:`run_scenario` (spec or plain data) -> :class:`ScenarioResult`
- :func:`run_sweep` (spec, optional ``distributed.Client``) -> :class:`SweepResult`
"""

from grid.scenarios.evaluate import Evaluation, ScenarioResult, run_scenario
from grid.scenarios.spec import ScenarioSpec, SweepSpec, load_scenario, load_sweep, scenario_from_dict, sweep_from_dict
from grid.scenarios.sweep import SweepCancelled, SweepResult, run_sweep

__all__ = [
    "Evaluation",
    "ScenarioResult",
    "ScenarioSpec",
    "SweepCancelled",
    "SweepResult",
    "SweepSpec",
    "load_scenario",
    "load_sweep",
    "run_scenario",
    "run_sweep",
    "scenario_from_dict",
    "sweep_from_dict",
]
