"""Realised against planned (SQLite and PostgreSQL): a two-hour case whose KPIs are computed by
hand below, a device that ignores its set-points, idempotent re-evaluation and the catch-up of
the scheduled evaluation, the gauges.

The hand case: site ``s1``, connection T1 with an import meter, battery bat1 (5 kW), heat pump hp1
(6 kW), charger ev1 (11 kW), PV pv1 (no set-points, no telemetry); 8 quarter-hours
2026-01-15 00:00-02:00 UTC (dt = 0.25 h).

Plans (the plan in force for an interval is the latest good plan computed by its start):

* A computed 23:55 for 00:00-02:00: in force for intervals 0-3;
* B computed 00:55 for 01:00-03:00: in force for intervals 4-7 (step 0-3 of B);
* C failed, computed 01:10: never in force;
* D good, computed 01:46 for 01:45-...: after interval 7 started, so not in force for it (its limit
  of 5 kW and its heat-pump set-point of 2 kW would change the figures below if it were).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from grid.ingest.signals import Point, import_prices
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.schedule import scheduler as sched
from grid.schedule.performance import (
    evaluate_and_publish,
    evaluate_finished,
    evaluate_intervals,
    performance_kpis,
)
from grid.schedule.runner import PlanningService
from grid.store.engine import write_transaction
from grid.store.live import StoredSession, add_order, save_session
from grid.store.plans import save_plan
from grid.store.schema import SensorKind
from grid.store.sites import SensorSpec, add_sensors, create_site
from grid.store.testing import demo_assets
from grid.timeindex import iso

T0 = pd.Timestamp("2026-01-15T00:00:00Z")
Q = pd.Timedelta(minutes=15)
STAMPS = [T0 + k * Q for k in range(8)]
START, END = T0, T0 + 8 * Q
NOW = pd.Timestamp("2026-01-15T02:05:00Z")
NAN = float("nan")

# measured, per interval 0..7 (NaN: nothing measured)
T1_IMPORT_KW = [10, 12, 22, 16, NAN, 19, 17, 14]
BAT_KW = [2.0, 2.1, 1.7, 2.0, -3.0, -3.2, NAN, -3.0]
HP_KW = [2.0] * 8  # ignores its set-points
EV_KW = [11, 11, 10, 0, 0, 0, 0, 0]


def _plan(
    plan_id: str,
    computed_at: str,
    start: pd.Timestamp,
    t1: tuple[list[float], list[float]],
    assets: dict[str, dict[str, Any]],
    status: str = "optimal",
) -> dict[str, Any]:
    stamps = [start + k * Q for k in range(8)]
    return {
        "plan_id": plan_id,
        "site": "s1",
        "computed_at": computed_at,
        "start": iso(stamps[0]),
        "end": iso(stamps[-1] + Q),
        "resolution_min": 15,
        "status": status,
        "message": "",
        "objective_eur": 1.0,
        "kpis": {},
        "violations": [],
        "dimming": [],
        "intervals": [iso(t) for t in stamps],
        "connections": {"T1": {"import_kw": t1[0], "export_kw": [0.0] * 8, "limit_import_kw": t1[1]}},
        "assets": {"load:T1": {"type": "inflexible_load", "connection": "T1", "power_kw": [5.0] * 8}, **assets},
    }


def _asset(kind: str, power_kw: list[float], **extra: Any) -> dict[str, Any]:
    return {"type": kind, "connection": "T1", "power_kw": power_kw, **extra}


def _site(store: Engine) -> None:
    create_site(store, "s1", "test site", "Europe/Berlin", 15)
    add_sensors(
        store,
        "s1",
        [
            SensorSpec(
                "T1.import",
                SensorKind.TRANSFORMER,
                "T1",
                "1-0:1.29.0",
                connection="T1",
                asset_id="T1",
                max_power_kw=600,
            ),
        ],
    )
    demo_assets(store)  # bat1 5 kW, hp1 6 kW, ev1 11 kW, pv1 10 kWp, T1 400 kVA


def _telemetry(store: Engine, asset_id: str, values: list[float]) -> None:
    items = [
        {"asset_id": asset_id, "ts": iso(t + pd.Timedelta(minutes=m)), "power_kw": v}
        for t, v in zip(STAMPS, values, strict=True)
        if v == v
        for m in (2, 9)  # two samples per interval: the interval's value is their mean
    ]
    report = ingest_telemetry(store, "s1", payload_items({"telemetry": items}), Source("test", "t"), NOW)
    assert report.rejected == []


def _readings(store: Engine) -> None:
    records = records_frame(
        [
            {
                "line": i + 2,
                "meter_id": "T1",
                "obis": "1-0:1.29.0",
                "timestamp": iso(t),
                "value": kw * 0.25,
                "unit": "kWh",
            }
            for i, (t, kw) in enumerate(zip(STAMPS, T1_IMPORT_KW, strict=True))
            if kw == kw
        ]
    )
    report = ingest(store, "s1", records, Source("test", "t.csv"), IngestOptions(now=NOW))
    assert report.rejected == []


def _prices(store: Engine) -> None:
    """0.20 EUR/kWh published the day before; 0.40 for 01:00-02:00 published later (the latest
    publication of an interval is its price)."""
    first = [Point(f"prices[{k}]", {"start": iso(t), "price": 0.20}) for k, t in enumerate(STAMPS)]
    later = [Point(f"prices[{k}]", {"start": iso(t), "price": 0.40}) for k, t in enumerate(STAMPS[4:])]
    import_prices(store, "s1", first, "EUR/kWh", "2026-01-14T12:00:00Z", "test", NOW, 15)
    import_prices(store, "s1", later, "EUR/kWh", "2026-01-15T00:30:00Z", "test", NOW, 15)


def _plans(store: Engine) -> None:
    a = _plan(
        "a" * 32,
        "2026-01-14T23:55:00+00:00",
        T0,
        ([10, 12, 14, 16, 9, 9, 9, 9], [20.0] * 8),
        {
            "bat1": _asset("battery", [2, 2, 2, 2, 0, 0, 0, 0]),
            # the dimming at step 5 is superseded by plan B: it never was in force
            "hp1": _asset("heat_pump", [0, 0, 3, 3, 0, 0, 0, 0], dimmed_kw=[0, 0, 0, 0, 0, 1.5, 0, 0]),
            "ev1": _asset("ev_charger", [11, 11, 11, 7, 0, 0, 0, 0]),
        },
    )
    b = _plan(
        "b" * 32,
        "2026-01-15T00:55:00+00:00",
        T0 + 4 * Q,
        ([15, 16, 15, 14, 0, 0, 0, 0], [18.0] * 8),
        {
            "bat1": _asset("battery", [-3.0] * 8),
            "hp1": _asset("heat_pump", [0, 0, 3, 3, 0, 0, 0, 0], dimmed_kw=[0, 0, 1.2, 0, 0, 0, 0, 0]),
            "ev1": _asset("ev_charger", [0.0] * 8),
        },
    )
    c = _plan("c" * 32, "2026-01-15T01:10:00+00:00", T0 + 5 * Q, ([1.0] * 8, [1.0] * 8), {}, status="failed")
    d = _plan(
        "d" * 32,
        "2026-01-15T01:46:00+00:00",
        T0 + 7 * Q,
        ([1.0] * 8, [5.0] * 8),
        {"hp1": _asset("heat_pump", [2.0] * 8)},
    )
    for body in (a, b, c, d):
        save_plan(store, body, plan_json=json.dumps(body))


def _session(store: Engine) -> None:
    session = StoredSession("car1", "ev1", T0, END, 10.0)
    with write_transaction(store) as conn:
        save_session(conn, "s1", session, "created", T0, T0, "test", {"session_id": "car1"})


@pytest.fixture
def case(store: Engine) -> Engine:
    return populate(store)


def populate(store: Engine) -> Engine:
    """The hand case of the module docstring in `store`."""
    _site(store)
    _plans(store)
    _readings(store)
    for asset_id, values in (("bat1", BAT_KW), ("hp1", HP_KW), ("ev1", EV_KW)):
        _telemetry(store, asset_id, values)
    _prices(store)
    # a grid-operator order placed after plan B: 15 kW for 01:30-02:00 (below B's 18 kW)
    add_order(store, "s1", "T1", T0 + 6 * Q, END, 15.0, None, "test", "2026-01-15T01:20:00Z")
    _session(store)
    return store


def test_two_hour_case_by_hand(case: Engine) -> None:
    assert evaluate_intervals(case, "s1", START, END, now=NOW) == 8
    k = performance_kpis(case, "s1", START, END)
    assert (k["intervals"], k["evaluated_intervals"], k["not_evaluated_intervals"], k["planned_intervals"]) == (
        8,
        8,
        0,
        8,
    )

    t1 = k["connections"]["T1"]
    # limits: A 20 kW (0-3), B 18 kW (4-5), the order 15 kW (6-7); interval 4 is not measured.
    # above: 22 > 20 (2 kW), 19 > 18 (1 kW), 17 > 15 (2 kW): 3 intervals, 5 kW x 0.25 h = 1.25 kWh
    assert (t1["measured_intervals"], t1["missing_intervals"]) == (7, 1)
    assert t1["intervals_above_limit"] == 3
    assert t1["kwh_above_limit"] == pytest.approx(1.25)
    # (10 + 12 + 22 + 16 + 19 + 17 + 14) kW x 0.25 h
    assert t1["import_kwh"] == pytest.approx(27.5)
    # planned: A (10 + 12 + 14 + 16) + B (15 + 16 + 15 + 14), x 0.25 h
    assert t1["planned_import_kwh"] == pytest.approx(28.0)
    assert t1["peak_import_kw"] == pytest.approx(22.0)
    # 15 kWh at 0.20 (00:00-01:00) + 12.5 kWh at the later 0.40 (01:15-02:00; 01:00 not measured)
    assert t1["cost_eur"] == pytest.approx(3.0 + 5.0)
    assert (t1["priced_intervals"], t1["unpriced_intervals"]) == (7, 0)

    bat = k["assets"]["bat1"]
    # set-points 2,2,2,2,-3,-3,-3,-3; tolerance max(0.1, 5 % of 5 kW) = 0.25 kW; interval 6 missing
    # |dev| 0, 0.1, 0.3, 0, 0, 0.2, -, 0: followed 6 of 7, mean 0.6 / 7 (not / 8: missing is not 0)
    assert bat["tolerance_kw"] == pytest.approx(0.25)
    assert (bat["measured_intervals"], bat["missing_intervals"], bat["followed_intervals"]) == (7, 1, 6)
    assert bat["followed_share"] == pytest.approx(6 / 7, abs=1e-6)
    assert bat["mean_abs_deviation_kw"] == pytest.approx(0.6 / 7, abs=1e-6)

    hp = k["assets"]["hp1"]
    # set-points 0,0,3,3 (A) and 0,0,3,3 (B; not D's 2 kW); measured 2 kW throughout
    assert (hp["followed_intervals"], hp["followed_share"]) == (0, 0.0)
    assert hp["mean_abs_deviation_kw"] == pytest.approx(1.5)
    # §14a: B's 1.2 kW at 01:30 was in force; A's 1.5 kW at 01:15 was superseded by B
    assert (hp["dimmed_intervals"], hp["dimmed_kwh"]) == (1, pytest.approx(0.3))
    assert k["dimming"] == {"intervals": 1, "dimmed_kwh": pytest.approx(0.3), "devices": {"hp1": 1}}

    ev = k["assets"]["ev1"]
    # set-points 11,11,11,7,0,...; measured 11,11,10,0,0,...; tolerance 0.55 kW: |dev| 1 and 7 miss
    assert (ev["followed_intervals"], ev["followed_share"]) == (6, 0.75)
    assert ev["mean_abs_deviation_kw"] == pytest.approx(1.0)
    car = k["ev_sessions"]["car1"]
    # delivered (11 + 11 + 10) kW x 0.25 h = 8 kWh of 10 requested; planned (11 x 3 + 7) x 0.25
    assert (car["requested_kwh"], car["delivered_kwh"], car["planned_kwh"]) == (10.0, 8.0, 10.0)
    assert (car["measured_intervals"], car["missing_intervals"], car["within_period"]) == (8, 0, True)

    pv = k["assets"]["pv1"]  # no set-point, no telemetry: missing, never 0
    assert pv["setpoint_intervals"] == 0 and pv["measured_intervals"] == 0
    assert pv["followed_share"] is None and pv["mean_abs_deviation_kw"] is None and pv["measured_kwh"] is None
    assert "load:T1" not in k["assets"]  # household load is no set-point

    assert k["totals"] == {
        "intervals_above_limit": 3,
        "kwh_above_limit": pytest.approx(1.25),
        "import_kwh": pytest.approx(27.5),
        "cost_eur": pytest.approx(8.0),
    }


def test_a_device_that_ignores_its_setpoints_shows_in_the_following_share(store: Engine) -> None:
    """bat1 follows its set-points (within 0.1 kW), hp1 runs at 4 kW whatever it is told."""
    _site(store)
    battery = [3.0, -3.0, 1.0, 0.0, 2.0, -2.0, 4.0, -4.0]
    heat = [0.0, 6.0, 0.0, 6.0, 4.0, 0.0, 6.0, 0.0]
    body = _plan(
        "e" * 32,
        "2026-01-14T23:00:00+00:00",
        T0,
        ([10.0] * 8, [50.0] * 8),
        {"bat1": _asset("battery", battery), "hp1": _asset("heat_pump", heat)},
    )
    save_plan(store, body)
    _telemetry(store, "bat1", [p + 0.1 * (-1) ** k for k, p in enumerate(battery)])
    _telemetry(store, "hp1", [4.0] * 8)
    evaluate_intervals(store, "s1", START, END, now=NOW)
    k = performance_kpis(store, "s1", START, END)
    assert k["assets"]["bat1"]["followed_share"] == 1.0
    assert k["assets"]["bat1"]["mean_abs_deviation_kw"] == pytest.approx(0.1)
    hp = k["assets"]["hp1"]
    # only interval 4 (set-point 4 kW) is followed: 1 of 8; |dev| 4,2,4,2,0,4,2,4 -> mean 22 / 8
    assert (hp["followed_intervals"], hp["followed_share"]) == (1, 0.125)
    assert hp["mean_abs_deviation_kw"] == pytest.approx(22 / 8)


def test_evaluation_is_idempotent_and_catches_up(case: Engine) -> None:
    assert evaluate_finished(case, "s1", NOW) == 8  # the first time: from the first good plan's start
    first = performance_kpis(case, "s1", START, END)
    assert evaluate_intervals(case, "s1", START, END, now=NOW) == 8  # again: replaced, not doubled
    assert performance_kpis(case, "s1", START, END) == first
    # after a stop of 30 minutes: 02:00 and 02:15 are new, the last 4 stored intervals redone
    later = NOW + pd.Timedelta(minutes=30)
    assert evaluate_finished(case, "s1", later) == 6
    assert evaluate_finished(case, "s1", later) == 4
    k = performance_kpis(case, "s1", START, END + 2 * Q)
    assert k["evaluated_intervals"] == 10 and k["connections"]["T1"]["missing_intervals"] == 3
    # nothing has ended since the last stored interval
    assert evaluate_finished(case, "s1", START) == 0


def test_period_not_evaluated_is_missing(case: Engine) -> None:
    k = performance_kpis(case, "s1", START, END)
    assert (k["evaluated_intervals"], k["not_evaluated_intervals"]) == (0, 8)
    assert k["connections"] == {}
    assert k["totals"] == {"intervals_above_limit": 0, "kwh_above_limit": None, "import_kwh": None, "cost_eur": None}


def test_gauges(case: Engine) -> None:
    evaluate_and_publish(case, "s1", NOW)

    def gauge(name: str, entity: str) -> float | None:
        return REGISTRY.get_sample_value(f"quartiere_performance_{name}", {"site": "s1", "entity": entity})

    assert gauge("intervals_above_limit", "T1") == 3
    assert gauge("cost_eur", "T1") == pytest.approx(8.0)
    assert gauge("followed_share", "hp1") == 0.0
    assert gauge("followed_share", "bat1") == pytest.approx(6 / 7, abs=1e-6)
    assert gauge("ev_delivered_kwh", "car1") == 8.0
    value = gauge("followed_share", "pv1")
    assert value is not None and value != value  # NaN: nothing measured, not 0


def test_scheduled_evaluation_job(case: Engine, tmp_path: Path) -> None:
    """The scheduler's job evaluates what ended by the service's clock; another site is skipped."""
    service = PlanningService(case, {"s1": tmp_path / "s1.yaml"})
    sched.make_scheduler(service, run_now=False, clock=lambda: NOW.to_pydatetime())
    assert sched.scheduled_evaluation("s1") == 8
    assert performance_kpis(case, "s1", START, END)["connections"]["T1"]["intervals_above_limit"] == 3
    assert sched.scheduled_evaluation("north") is None


def test_interval_by_interval_equals_all_at_once(case: Engine) -> None:
    """As the scheduler goes (one finished interval after another) the stored rows and KPIs are
    the same as from one evaluation of the whole period."""
    for t in STAMPS:
        assert evaluate_intervals(case, "s1", t, t + Q, now=NOW) == 1
    one_by_one = performance_kpis(case, "s1", START, END)
    evaluate_intervals(case, "s1", START, END, now=NOW)
    assert performance_kpis(case, "s1", START, END) == one_by_one
    assert one_by_one["totals"]["intervals_above_limit"] == 3


def test_kept_rows_are_read_again_where_an_evaluation_rewrote_them(case: Engine) -> None:
    """The stored rows of the windows read last are kept per engine (performance._KEPT) and read
    again only where an evaluation rewrote them since (its span in performance_writes): after
    late telemetry and a re-evaluation of part of the period, the KPIs are those of a fresh
    read, and they did change."""
    from grid.schedule import performance

    evaluate_intervals(case, "s1", START, END, now=NOW)
    before = performance_kpis(case, "s1", START, END)
    assert performance_kpis(case, "s1", START + Q, END) == performance_kpis(case, "s1", START + Q, END)
    # the battery's telemetry of the last four intervals arrives late and different
    _telemetry(case, "bat1", [float("nan")] * 4 + [0.0, 0.0, 0.0, 0.0])
    assert evaluate_intervals(case, "s1", START + 4 * Q, END, now=NOW) == 4
    kept = performance_kpis(case, "s1", START, END)
    kept_hour = performance_kpis(case, "s1", END - 4 * Q, END)
    performance._KEPT.clear()
    assert kept == performance_kpis(case, "s1", START, END) != before
    assert kept_hour == performance_kpis(case, "s1", END - 4 * Q, END)
    with case.connect() as conn:
        spans = conn.execute(sa.text("SELECT COUNT(*) FROM performance_writes WHERE site_id = 's1'")).scalar()
    assert spans == 2
