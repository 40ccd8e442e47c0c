"""A planner for the worker-death test, run on the Dask workers (importable there by name).

For the site named in the Dask variable ``fleet-gate-site`` it puts the worker's process id into
the Dask queue ``fleet-gate-entered`` and waits for the event ``fleet-gate-release`` before planning
on the worker's kept models as usual; every other site plans at once. The test thus knows which
process is solving that site, and kills it while it does.
"""

from __future__ import annotations

import os

import pandas as pd
from distributed import Event, Queue, Variable

from grid.domain import Site
from grid.fleet.worker import worker_models
from grid.series import SiteInputs
from models.plan import Plan
from models.solve import SolveOptions

SITE = "fleet-gate-site"
ENTERED = "fleet-gate-entered"
RELEASE = "fleet-gate-release"
BOUND_S = 120  # a bound on waiting for the test, not a timing


def gated_planner(site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None) -> Plan:
    if site.id == Variable(SITE).get(timeout=BOUND_S):
        Queue(ENTERED).put(os.getpid())
        if not Event(RELEASE).wait(timeout=BOUND_S):
            raise TimeoutError("the test never released the gate")
    return worker_models()(site, inputs, index, options)
