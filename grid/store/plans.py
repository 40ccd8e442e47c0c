"""Plans in the store: every run's plan (failed ones too), the stale mark of the last good plan,
and the scheduler's record of which periods it has planned.

A plan row keeps its identity and status in columns and the whole :meth:`models.plan.Plan.to_dict`
as JSON text. "Good" means status ``optimal`` or ``optimal_with_violations``. When a run fails, the
latest good plan of the site is marked stale with the reason; the next good plan is fresh.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from grid.store.engine import write_transaction
from grid.store.schema import plans, schedule_runs

GOOD = ("optimal", "optimal_with_violations")
_COLUMNS = [c for c in plans.c if c.name != "plan_json"]


@dataclass(frozen=True)
class PlanRow:
    """A stored plan without its JSON body."""

    seq: int
    plan_id: str
    site_id: str
    computed_at: dt.datetime
    start: dt.datetime
    end: dt.datetime
    status: str
    stale: bool
    stale_reason: str
    objective_eur: float | None
    message: str
    trigger: str
    duration_s: float | None

    @property
    def good(self) -> bool:
        return self.status in GOOD


def _row(r: Any) -> PlanRow:
    return PlanRow(
        r.seq,
        r.plan_id,
        r.site_id,
        r.computed_at,
        r.start,
        r.end,
        r.status,
        bool(r.stale),
        r.stale_reason,
        r.objective_eur,
        r.message,
        r.trigger,
        r.duration_s,
    )


def _utc(text: str) -> dt.datetime:
    return pd.Timestamp(text).tz_convert("UTC").to_pydatetime()


def plan_text(body: dict[str, Any]) -> str:
    """`body` (a :meth:`Plan.to_dict` and what a run adds to it) as the JSON text a plan row keeps.

    orjson writes the same values as ``json.dumps`` in about a tenth of the time (a demo plan of
    ~0.9 MB: 2 ms against 30 ms, once per run): without the blanks after separators, numbers in
    their shortest round-trip form like Python's ``repr``, numpy numbers and non-text keys written
    as ``json.dumps`` writes them (keys as text). A plan's numbers are finite or None already
    (:meth:`Plan.to_dict` rounds them); a non-finite one would be written as ``null`` (``json.dumps``
    with ``allow_nan=False`` raised). Every reader parses the text (:func:`plan_body`)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _mark_latest_stale(conn: Connection, site_id: str, reason: str) -> None:
    latest = conn.execute(
        sa.select(plans.c.seq)
        .where(plans.c.site_id == site_id, plans.c.status.in_(GOOD))
        .order_by(plans.c.seq.desc())
        .limit(1)
    ).scalar()
    if latest is not None:
        conn.execute(plans.update().where(plans.c.seq == latest).values(stale=True, stale_reason=reason))


def save_plan(
    engine: Engine,
    plan: dict[str, Any],
    trigger: str = "manual",
    duration_s: float | None = None,
    plan_json: str | None = None,
) -> PlanRow:
    """Store `plan` (a :meth:`Plan.to_dict`, or with `plan_json` its JSON text and `plan` just the
    keys the table indexes); a failed plan marks the latest good one stale."""
    failed = plan["status"] not in GOOD
    with write_transaction(engine) as conn:
        if failed:
            _mark_latest_stale(conn, plan["site"], f"latest run failed: {plan.get('message') or 'no reason given'}")
        conn.execute(
            plans.insert().values(
                plan_id=plan["plan_id"],
                site_id=plan["site"],
                computed_at=_utc(plan["computed_at"]),
                start=_utc(plan["start"]),
                end=_utc(plan["end"]),
                status=plan["status"],
                stale=False,
                stale_reason="",
                objective_eur=plan.get("objective_eur"),
                message=plan.get("message") or "",
                trigger=trigger,
                duration_s=duration_s,
                plan_json=plan_json if plan_json is not None else plan_text(plan),
            )
        )
        row = conn.execute(sa.select(*_COLUMNS).where(plans.c.plan_id == plan["plan_id"])).one()
    return _row(row)


def mark_stale(engine: Engine, site_id: str, reason: str) -> None:
    """Mark the latest good plan of `site_id` stale (a run failed before it produced a plan)."""
    with write_transaction(engine) as conn:
        _mark_latest_stale(conn, site_id, reason)


def list_plans(engine: Engine, site_id: str, limit: int = 50) -> list[PlanRow]:
    """The newest `limit` plans of a site, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*_COLUMNS).where(plans.c.site_id == site_id).order_by(plans.c.seq.desc()).limit(limit)
        ).all()
    return [_row(r) for r in rows]


def latest_good(engine: Engine, site_id: str) -> PlanRow | None:
    """The newest good plan of a site, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(*_COLUMNS)
            .where(plans.c.site_id == site_id, plans.c.status.in_(GOOD))
            .order_by(plans.c.seq.desc())
            .limit(1)
        ).first()
    return None if row is None else _row(row)


def get_plan(engine: Engine, site_id: str, plan_id: str) -> PlanRow | None:
    """The plan `plan_id` of `site_id`, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(plans.c.plan_id == plan_id, plans.c.site_id == site_id)).first()
    return None if row is None else _row(row)


def plan_body(engine: Engine, plan_id: str) -> dict[str, Any]:
    """The stored :meth:`Plan.to_dict` of `plan_id` (KeyError if absent)."""
    with engine.connect() as conn:
        text = conn.execute(sa.select(plans.c.plan_json).where(plans.c.plan_id == plan_id)).scalar()
    if text is None:
        raise KeyError(plan_id)
    body: dict[str, Any] = orjson.loads(text)  # a few times faster than json: less GIL while serving
    return body


#: parsed plan bodies per engine by plan id (:func:`kept_plan_body`)
_BODIES: weakref.WeakKeyDictionary[Engine, OrderedDict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()
_BODIES_KEPT = 16
_BODIES_LOCK = threading.Lock()


def kept_plan_body(engine: Engine, plan_id: str) -> dict[str, Any]:
    """:func:`plan_body`, kept per engine for the next readers (the last :data:`_BODIES_KEPT`): a
    stored plan's JSON never changes (only its stale flag; plan ids are unique), and a run reads
    the same plans again and again (the next run starts from the latest good plan, set-points
    are published from it, the evaluation reads the plans in force; ~13 ms a parse on the demo
    site). The caller must not change the dict."""
    with _BODIES_LOCK:
        kept = _BODIES.get(engine)
        body = kept.get(plan_id) if kept is not None else None
        if body is not None:
            assert kept is not None
            kept.move_to_end(plan_id)
            return body
    body = plan_body(engine, plan_id)
    with _BODIES_LOCK:
        kept = _BODIES.setdefault(engine, OrderedDict())
        kept[plan_id] = body
        while len(kept) > _BODIES_KEPT:
            kept.popitem(last=False)
    return body


# --- scheduler periods --------------------------------------------------------------------------


#: message of a run found ``running`` when the service started (it was killed mid-run)
INTERRUPTED = "interrupted: the service stopped during this run"


def claim_period(engine: Engine, site_id: str, period_start: dt.datetime, now: dt.datetime) -> bool:
    """Record that a run for (site, period) starts; False when that period was already run (a
    period whose run was interrupted, see :func:`fail_orphaned_runs`, may be claimed again)."""
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                schedule_runs.insert().values(
                    site_id=site_id, period_start=period_start, started_at=now, status="running"
                )
            )
    except IntegrityError:
        with write_transaction(engine) as conn:
            retried = conn.execute(
                schedule_runs.update()
                .where(
                    schedule_runs.c.site_id == site_id,
                    schedule_runs.c.period_start == period_start,
                    schedule_runs.c.status == "failed",
                    schedule_runs.c.message == INTERRUPTED,
                )
                .values(started_at=now, finished_at=None, status="running", plan_id=None, message="")
            )
        return bool(retried.rowcount)
    return True


def fail_orphaned_runs(engine: Engine, now: dt.datetime) -> list[RunRow]:
    """Mark every run still ``running`` as failed (:data:`INTERRUPTED`); call at start, before the
    scheduler runs: a run of an earlier process that was killed never finishes. Returns them."""
    with write_transaction(engine) as conn:
        rows = conn.execute(sa.select(schedule_runs).where(schedule_runs.c.status == "running")).all()
        conn.execute(
            schedule_runs.update()
            .where(schedule_runs.c.status == "running")
            .values(status="failed", finished_at=now, message=INTERRUPTED)
        )
    return [RunRow(*r) for r in rows]


def finish_period(
    engine: Engine,
    site_id: str,
    period_start: dt.datetime,
    now: dt.datetime,
    status: str,
    plan_id: str | None,
    message: str = "",
) -> None:
    """Record how the run of (site, period) ended."""
    with write_transaction(engine) as conn:
        conn.execute(
            schedule_runs.update()
            .where(schedule_runs.c.site_id == site_id, schedule_runs.c.period_start == period_start)
            .values(finished_at=now, status=status, plan_id=plan_id, message=message)
        )


@dataclass(frozen=True)
class RunRow:
    """One scheduler run."""

    site_id: str
    period_start: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    plan_id: str | None
    message: str


def list_runs(engine: Engine, site_id: str | None = None) -> list[RunRow]:
    """Scheduler runs, newest period first."""
    query = sa.select(schedule_runs).order_by(schedule_runs.c.period_start.desc())
    if site_id is not None:
        query = query.where(schedule_runs.c.site_id == site_id)
    with engine.connect() as conn:
        return [RunRow(*r) for r in conn.execute(query).all()]


def last_successful_run(engine: Engine) -> RunRow | None:
    """The most recently finished good scheduler run of any site."""
    query = (
        sa.select(schedule_runs)
        .where(schedule_runs.c.status.in_(GOOD), schedule_runs.c.finished_at.is_not(None))
        .order_by(schedule_runs.c.finished_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else RunRow(*row)
