"""The last planning run of each site (table ``site_runs``, migration 0010), for the fleet status.

One row per site, replaced by each run: the fields of :class:`grid.fleet.status.SiteRun` (times
UTC, durations in seconds), so that a restarted service reports which sites are late or failing
from the runs of the process before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.store.engine import write_transaction
from grid.store.schema import site_runs

COLUMNS = tuple(c.name for c in site_runs.columns)


def save_run(engine: Engine, run: Mapping[str, Any]) -> None:
    """Store `run` (column name -> value, ``site_id`` included) as its site's last run."""
    values = {name: run.get(name) for name in COLUMNS}
    values["message"] = values["message"] or ""
    values["worker"] = values["worker"] or ""
    with write_transaction(engine) as conn:
        conn.execute(site_runs.delete().where(site_runs.c.site_id == values["site_id"]))
        conn.execute(site_runs.insert().values(**values))


def load_runs(engine: Engine) -> dict[str, dict[str, Any]]:
    """Site id -> its last run as stored (column name -> value)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(site_runs)).mappings().all()
    return {row["site_id"]: dict(row) for row in rows}
