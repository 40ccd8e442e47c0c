"""What the simulated site reports, through the same ingestion path as the real one.

* Meter readings: each household's import register (``1-0:1.8.0``, its base load, as in the demo
  history) and export register (flat), each PV array's export register (its generation), each
  connection's transformer meter (import and export of its simulated flow), as
  cumulative kWh with 3 decimals, one batch per ``batch_steps`` intervals (:func:`grid.ingest.pipeline.ingest`),
  continuing the registers where the store's history left them. With the demo history's kinds of
  faults, drawn from the seed: rows sent twice, rows held back 1..8 intervals (late and out of
  order), and one meter silent for 4 h.
* Telemetry: battery SoC, heat-store content and wallbox power at the end of each interval
  (:func:`grid.ingest.telemetry.ingest_telemetry`); a share of the messages is lost.
* EV sessions: a car announces itself on arrival (:func:`grid.ingest.sessions.create_session`)
  with what it needs, and plugs out at departure (``plug_out``); what it got meanwhile the planner
  reads from the wallbox's power telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.domain import EVSession, Site
from grid.ingest.pipeline import ingest
from grid.ingest.records import records_frame
from grid.ingest.report import Source
from grid.ingest.sessions import create_session, plug_out
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.store.catalog import EXPORT_REGISTER, IMPORT_REGISTER
from grid.store.schema import register_readings, sensors

SOURCE = "sim"
DUPLICATE_SHARE = 0.002  # rows sent twice
LATE_SHARE = 0.004  # rows held back ...
LATE_MAX_STEPS = 8  # ... 1..8 intervals
GAP_STEPS = 16  # one meter silent for 4 h ...
GAP_AT = 0.4  # ... from this share of the run
TELEMETRY_LOSS = 0.01  # telemetry messages that never arrive


@dataclass
class Feeds:
    """The simulated site's meter, telemetry and session feeds into the store at `engine`."""

    engine: Engine
    site: Site
    rng: np.random.Generator
    steps: int
    faults: bool = True
    batch_steps: int = 1
    registers_kwh: np.ndarray = field(init=False)
    meters: list[tuple[str, str]] = field(init=False)  # (meter id, OBIS) per register
    held: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (due step, record)
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)  # readings of the current batch

    def __post_init__(self) -> None:
        s = self.site
        self.meters = [(h.meter_id, obis) for h in s.households for obis in (IMPORT_REGISTER, EXPORT_REGISTER)]
        self.meters += [(p.id, EXPORT_REGISTER) for p in s.pv_arrays]
        # each connection's own meter at the transformer (import and export registers): what the
        # realised KPIs measure the connection's import against its plan and limit with
        self.meters += [(c.id, obis) for c in s.connections for obis in (IMPORT_REGISTER, EXPORT_REGISTER)]
        self.registers_kwh = self._last_registers()
        gap_meter = int(self.rng.integers(len(s.households))) if s.households else 0
        self.gap = (gap_meter, int(GAP_AT * self.steps), int(GAP_AT * self.steps) + GAP_STEPS)

    def _last_registers(self) -> np.ndarray:
        """The latest stored register value of each meter (0 for a meter without history): one
        query, the newest reading of each of the site's sensors by its key (sensor, time)."""
        c, r = sensors.c, register_readings.c
        latest = sa.select(r.value).where(r.sensor_id == c.id).order_by(r.ts.desc()).limit(1).scalar_subquery()
        query = sa.select(c.meter_id, c.obis, latest).where(c.site_id == self.site.id)
        with self.engine.connect() as conn:
            values = {(m, o): float(v) for m, o, v in conn.execute(query) if v is not None}
        return np.array([values.get(k, 0.0) for k in self.meters])

    # --- meters -----------------------------------------------------------------------------------

    def readings(
        self, k: int, end: pd.Timestamp, base_kw: np.ndarray, pv_kw: np.ndarray, flow_kw: np.ndarray, dt_h: float
    ) -> None:
        """The registers at `end` (the end of interval `k`) after it drew `base_kw` per household,
        generated `pv_kw` (< 0) per array and each connection's transformer carried `flow_kw`
        (> 0 import); sent with this run's faults."""
        n_h, n_pv = len(self.site.households), len(self.site.pv_arrays)
        energy = np.zeros(len(self.meters))
        energy[0 : 2 * n_h : 2] = base_kw * dt_h
        energy[2 * n_h : 2 * n_h + n_pv] = -pv_kw * dt_h
        energy[2 * n_h + n_pv :: 2] = np.maximum(flow_kw, 0.0) * dt_h
        energy[2 * n_h + n_pv + 1 :: 2] = np.maximum(-flow_kw, 0.0) * dt_h
        self.registers_kwh = self.registers_kwh + energy
        stamp = end.isoformat()
        due: list[dict[str, Any]] = []
        sent_late = self.rng.random(len(self.meters)) < LATE_SHARE if self.faults else np.zeros(len(self.meters), bool)
        twice = self.rng.random(len(self.meters)) < DUPLICATE_SHARE if self.faults else sent_late
        delays = self.rng.integers(1, LATE_MAX_STEPS + 1, len(self.meters))
        for j, (meter, obis) in enumerate(self.meters):
            if self.faults and self.gap[1] <= k < self.gap[2] and j // 2 == self.gap[0] and j < 2 * n_h:
                continue
            rec = {
                "meter_id": meter,
                "obis": obis,
                "timestamp": stamp,
                "value": f"{self.registers_kwh[j]:.3f}",
                "unit": "kWh",
            }
            if sent_late[j]:
                self.held.append((k + int(delays[j]), rec))
                continue
            due.append(rec)
            if twice[j]:
                due.append(dict(rec))
        due += [rec for at, rec in self.held if at <= k]
        self.held = [(at, rec) for at, rec in self.held if at > k]
        self.pending += due
        if (k + 1) % self.batch_steps == 0 or k + 1 == self.steps:
            self.flush(stamp)

    def flush(self, stamp: str) -> None:
        """Ingest the readings of the current batch (one batch in the store)."""
        if not self.pending:
            return
        report = ingest(self.engine, self.site.id, records_frame(self.pending), Source(SOURCE, f"meters {stamp}"))
        self.pending = []
        self._count("readings_accepted", report.accepted)
        self._count("readings_duplicates", report.duplicates)
        self._count("readings_rejected", len(report.rejected))

    # --- telemetry --------------------------------------------------------------------------------

    def telemetry(self, end: pd.Timestamp, soc_kwh: np.ndarray, store_kwh: np.ndarray, ev_kw: np.ndarray) -> None:
        """Device states at `end` and the wallboxes' power in the interval before it."""
        s = self.site
        stamp = end.isoformat()
        items: list[dict[str, Any]] = []
        items += [
            {"asset_id": b.id, "ts": stamp, "soc_kwh": round(float(v), 3)}
            for b, v in zip(s.batteries, soc_kwh, strict=True)
        ]
        items += [
            {"asset_id": h.id, "ts": stamp, "store_kwh": round(float(v), 3)}
            for h, v in zip(s.heat_pumps, store_kwh, strict=True)
        ]
        items += [
            {"asset_id": c.id, "ts": stamp, "power_kw": round(float(v), 3)}
            for c, v in zip(s.ev_chargers, ev_kw, strict=True)
        ]
        if self.faults:
            lost = self.rng.random(len(items)) < TELEMETRY_LOSS
            items = [it for it, gone in zip(items, lost, strict=True) if not gone]
        report = ingest_telemetry(
            self.engine, s.id, payload_items({"telemetry": items}), Source(SOURCE, f"telemetry {stamp}"), end
        )
        self._count("telemetry_accepted", report.accepted)
        self._count("telemetry_rejected", len(report.rejected))

    # --- EV sessions ------------------------------------------------------------------------------

    def arrive(self, session: EVSession, now: pd.Timestamp) -> None:
        data = {
            "session_id": session.id,
            "charger": session.charger,
            "arrival": pd.Timestamp(session.arrival).isoformat(),
            "departure": pd.Timestamp(session.departure).isoformat(),
            "energy_needed_kwh": session.energy_needed_kwh,
        }
        if session.capacity_kwh is not None:
            data["capacity_kwh"] = session.capacity_kwh
            data["initial_soc"] = session.initial_soc
        create_session(self.engine, self.site.id, data, SOURCE, now)
        self._count("sessions_created", 1)

    def leave(self, session_id: str, at: pd.Timestamp, now: pd.Timestamp) -> None:
        plug_out(self.engine, self.site.id, session_id, {"at": at.isoformat()}, SOURCE, now)
        self._count("sessions_plugged_out", 1)

    def _count(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n
