"""Scenario runs in the store: what was asked (the scenario as JSON), how far the run got, and its
result (both evaluations and the KPI comparison as JSON), written once when the run ends.

A run's ``status`` is ``queued``, ``running``, ``succeeded`` (the scenario was evaluated; its own
status, e.g. ``optimal`` or ``invalid``, is ``scenario_status``) or ``failed`` (no result: the
baseline could not be evaluated, the worker crashed, or the service stopped meanwhile).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.store.schema import scenario_runs

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed")

_COLUMNS = [c for c in scenario_runs.c if c.name not in ("spec_json", "result_json")]


@dataclass(frozen=True)
class ScenarioRunRow:
    """A stored run without its scenario and result."""

    seq: int
    run_id: str
    site_id: str
    name: str
    status: str
    scenario_status: str | None
    message: str
    submitted_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _row(r: Any) -> ScenarioRunRow:
    return ScenarioRunRow(**r._mapping)  # _COLUMNS are the dataclass's fields


def create_run(engine: Engine, run_id: str, site_id: str, name: str, spec: dict[str, Any], now: dt.datetime) -> None:
    """Store a new queued run of `spec` (JSON-ready)."""
    with engine.begin() as conn:
        conn.execute(
            scenario_runs.insert().values(
                run_id=run_id,
                site_id=site_id,
                name=name,
                status="queued",
                message="",
                submitted_at=now,
                spec_json=json.dumps(spec, allow_nan=False),
            )
        )


def start_run(engine: Engine, run_id: str, now: dt.datetime) -> bool:
    """Mark a queued run running; False when it is no longer queued."""
    with engine.begin() as conn:
        result = conn.execute(
            scenario_runs.update()
            .where(scenario_runs.c.run_id == run_id, scenario_runs.c.status == "queued")
            .values(status="running", started_at=now)
        )
    return result.rowcount == 1


def finish_run(
    engine: Engine,
    run_id: str,
    status: str,
    now: dt.datetime,
    *,
    message: str = "",
    scenario_status: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Record the end of a run (``succeeded`` or ``failed``) and its result, once."""
    if status not in FINISHED:
        raise ValueError(f"a run finishes as {' or '.join(FINISHED)}, not {status!r}")
    with engine.begin() as conn:
        conn.execute(
            scenario_runs.update()
            .where(scenario_runs.c.run_id == run_id, scenario_runs.c.status.in_(ACTIVE))
            .values(
                status=status,
                scenario_status=scenario_status,
                message=message,
                finished_at=now,
                result_json=None if result is None else json.dumps(result, allow_nan=False),
            )
        )


def interrupt_active(engine: Engine, now: dt.datetime, message: str) -> int:
    """Mark every queued or running run failed with `message` (a service starting up: runs of the
    process before it can no longer finish); returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            scenario_runs.update()
            .where(scenario_runs.c.status.in_(ACTIVE))
            .values(status="failed", message=message, finished_at=now)
        )
    return int(result.rowcount)


def count_active(engine: Engine, site_id: str) -> int:
    """Queued and running runs of a site."""
    query = sa.select(sa.func.count()).where(scenario_runs.c.site_id == site_id, scenario_runs.c.status.in_(ACTIVE))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def get_run(engine: Engine, site_id: str, run_id: str) -> ScenarioRunRow | None:
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(*_COLUMNS).where(scenario_runs.c.run_id == run_id, scenario_runs.c.site_id == site_id)
        ).first()
    return None if r is None else _row(r)


def list_runs(engine: Engine, site_id: str, limit: int = 50) -> list[ScenarioRunRow]:
    """The newest runs of a site, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*_COLUMNS)
            .where(scenario_runs.c.site_id == site_id)
            .order_by(scenario_runs.c.seq.desc())
            .limit(limit)
        ).all()
    return [_row(r) for r in rows]


def run_documents(engine: Engine, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(scenario as submitted, result or None) of a run."""
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(scenario_runs.c.spec_json, scenario_runs.c.result_json).where(scenario_runs.c.run_id == run_id)
        ).one()
    return json.loads(r.spec_json), None if r.result_json is None else json.loads(r.result_json)
