"""A fleet round plans the sites stored as data: each at its newest version from the next round on,
a retired one no longer (the executor here runs the jobs in-process: what travels is the same)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy.engine import Engine

from grid.fleet.generate import generate_fleet
from grid.fleet.round import fleet_service, plan_round
from grid.schedule.runner import Executed, PlanJob, executed_here, run_plan_job
from grid.series import SiteInputs
from grid.store import plans as plan_store
from grid.store import site_versions
from models.solve import plan_site


class HereExecutor:
    """Runs each job in this process with the inputs it is handed (as a Dask worker would)."""

    def run(self, job: PlanJob, inputs: SiteInputs) -> Executed:
        return executed_here(run_plan_job(job, None, inputs, plan_site), "here")

    def close(self) -> None:
        pass


def test_a_round_plans_stored_sites_at_their_newest_version(store: Engine) -> None:
    a, b = generate_fleet(2, 11, hours=6)
    at = pd.Timestamp(a.series["base_load"].index[0]).to_pydatetime()
    for fs in (a, b):
        site_versions.put_site_version(store, fs.site_id, fs.document(), "test", at)
    service = fleet_service(store, {}, HereExecutor(), horizon_hours=2)

    first = plan_round(service, at)
    assert [r.site_id for r in first.results] == [a.site_id, b.site_id]
    assert all(r.status in ("optimal", "optimal_with_violations") for r in first.results), first.results

    changed = a.document()
    changed["batteries"].append(
        {"id": "BAT-NEW", "connection": "T1", "capacity_kwh": 50.0, "charge_kw": 20.0, "discharge_kw": 20.0}
    )
    site_versions.put_site_version(store, a.site_id, changed, "test", at)
    site_versions.retire_site(store, b.site_id, "test", at)
    second = plan_round(service, at + dt.timedelta(minutes=15))
    assert [r.site_id for r in second.results] == [a.site_id]
    plan_id = second.results[0].plan_id
    assert plan_id is not None
    body = plan_store.plan_body(store, plan_id)
    assert "BAT-NEW" in body["assets"] and body["inputs"]["base_load"] == "inputs.base_load (inline)"
