"""What-if scenarios and parameter sweeps: edits of a site, evaluation against the baseline, Dask.

Library entry points (the CLI and the API call these):

- :func:`run_scenario` (spec or plain data) -> :class:`ScenarioResult`
- :func:`run_sweep` (spec, optional ``distributed.Client``) -> :class:`SweepResult`
"""

from __future__ import annotations

import importlib
from typing import Any

#: the library names and the module each lives in: loaded on first use, so that importing the
#: package (``grid --help``) does not load the solver and Dask
_EXPORTS = {
    "Evaluation": "evaluate",
    "ScenarioResult": "evaluate",
    "run_scenario": "evaluate",
    "ScenarioSpec": "spec",
    "SweepSpec": "spec",
    "load_scenario": "spec",
    "load_sweep": "spec",
    "scenario_from_dict": "spec",
    "sweep_from_dict": "spec",
    "SweepCancelled": "sweep",
    "SweepResult": "sweep",
    "run_sweep": "sweep",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'grid.scenarios' has no attribute {name!r}")
    return getattr(importlib.import_module(f"grid.scenarios.{_EXPORTS[name]}"), name)


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
