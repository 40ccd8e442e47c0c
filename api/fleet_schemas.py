"""Response model of ``GET /fleet/status``: the last planning run of every site (see
:mod:`grid.fleet.status`). Times UTC with offset on the service's clock, durations in seconds."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class FleetSite(BaseModel):
    site: str
    late: bool = Field(
        description="No good plan for the period before the current one: a run was missed or failed "
        "(or the site has not been planned since the service started)."
    )
    failing: bool = Field(description="The last run failed.")
    status: str | None = Field(description="Status of the last run: optimal, optimal_with_violations or failed.")
    message: str = Field(description="Why the last run failed (or the solver's note).")
    last_run_at: dt.datetime | None = Field(description="When the last run started (service clock).")
    period_start: dt.datetime | None = Field(description="The period the last run planned from.")
    last_good_period: dt.datetime | None = Field(description="The latest period with a good plan.")
    duration_s: float | None = Field(description="Wall time of the last run: inputs, solve, store.")
    mode: str | None = Field(description="warm (the kept model re-used), cold (built anew) or unknown.")
    worker: str | None = Field(description="Where the last run was solved: a Dask worker, `pid N`, `service`.")
    queue_wait_s: float | None = Field(description="How long the last run waited for a worker (null: none).")
    failures_in_a_row: int = Field(description="Failed runs since the last good one.")


class FleetStatusOut(BaseModel):
    now: dt.datetime = Field(description="The service's clock.")
    replan_every_min: int
    executor: str = Field(description="Where runs are solved: dask (a cluster), process (one per site) or service.")
    sites: list[FleetSite] = Field(description="Every site the key covers, late and failing ones first.")
    late: list[str] = Field(description="Ids of the late sites.")
    failing: list[str] = Field(description="Ids of the sites whose last run failed.")
