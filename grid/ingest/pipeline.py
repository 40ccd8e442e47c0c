"""The one ingestion path: validate -> classify against the store -> write, in one transaction.

``ingest`` is what every source calls (CSV, JSON payload, MQTT). The batch is atomic: its
accepted values, the revisions they cause, the derived interval energies, register flags and its
rejected records commit together with the batch row, or nothing does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.ingest.options import IngestOptions
from grid.ingest.registers import difference
from grid.ingest.report import Flag, IngestReport, Rejected, Source
from grid.ingest.validate import validate
from grid.store import bulk
from grid.store.engine import write_transaction
from grid.store.schema import (
    QUALITY_CODES,
    QUALITY_NAMES,
    Measure,
    Quality,
    batches,
    flags,
    rejected_records,
    revisions,
)
from grid.store.sites import get_site, sensor_frame
from grid.store.upsert import THIS_BATCH, UpsertPlan, classify

#: progress(stage, done, total): stage is "validate" or "write"; done/total count rows.
ProgressFn = Callable[[str, int, int], None]


def ingest(
    engine: Engine,
    site_id: str,
    records: pd.DataFrame,
    source: Source,
    options: IngestOptions | None = None,
    pre_rejected: Sequence[Rejected] = (),
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Validate `records` (a record frame, :mod:`grid.ingest.records`) and store them as one batch.

    `pre_rejected` are records the reader already refused (a CSV line with a wrong number of
    fields, a malformed MQTT message); they are stored and counted with the batch. Returns the
    report; ``report.balanced`` holds by construction.
    """
    options = options or IngestOptions()
    site = get_site(engine, site_id)
    sensors = sensor_frame(engine, site_id)
    if not source.checksum:
        digest = hashlib.sha256(pd.util.hash_pandas_object(records.astype(str), index=False).to_numpy().tobytes())
        source = Source(source.kind, source.name, digest.hexdigest())
    if progress:
        progress("validate", 0, len(records))
    checked = validate(records, sensors, site_id, site.resolution_min, options, source.name)
    if progress:
        progress("validate", len(records), len(records))
    rejected = [*pre_rejected, *checked.rejected]
    report = IngestReport(source, rows_read=len(records) + len(pre_rejected), rejected=rejected)
    writer = _BatchWriter(sensors, source, site.resolution_min * 60, options, progress)
    with write_transaction(engine) as conn:
        bulk.lock_site(conn, site_id)
        batch_id = writer.open(conn, site_id)
        measure = sensors["measure"].reindex(checked.valid["sensor_id"].to_numpy()).to_numpy()
        is_register = measure == Measure.REGISTER.value
        direct = writer.store_values(conn, "readings", checked.valid[~is_register])
        registers = writer.store_values(conn, "register_readings", checked.valid[is_register])
        report.flags = writer.derive_intervals(conn, registers)
        report.accepted, report.duplicates, report.revised = (
            a + b for a, b in zip(direct.counts(), registers.counts(), strict=True)
        )
        writer.close(conn, site_id, report)
    report.batch_id = batch_id
    return report


class _BatchWriter:
    """The steps of one batch inside its transaction."""

    def __init__(
        self,
        sensors: pd.DataFrame,
        source: Source,
        resolution_s: int,
        options: IngestOptions,
        progress: ProgressFn | None,
    ) -> None:
        self.sensors = sensors
        self.units = sensors["unit"]
        self.source = source
        self.resolution_s = resolution_s
        self.options = options
        self.progress = progress
        self.now_s = int(pd.Timestamp.now("UTC").timestamp())
        self.batch_id = 0
        self.to_write = 0
        self.written = 0
        self.register_existing = pd.DataFrame()
        self.register_bounds = pd.DataFrame()

    def open(self, conn: Connection, site_id: str) -> int:
        result = conn.execute(
            batches.insert().values(
                site_id=site_id,
                source_kind=self.source.kind,
                source=self.source.name,
                checksum=self.source.checksum,
                started_at=pd.Timestamp.now("UTC").to_pydatetime(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        self.batch_id = int(key[0])
        return self.batch_id

    def _advance(self, n: int) -> None:
        self.written += n
        if self.progress:
            self.progress("write", self.written, max(self.to_write, self.written))

    def _write(self, conn: Connection, table: str, plan: UpsertPlan, series: str) -> None:
        self.to_write += len(plan.writes)
        bulk.write_values(
            conn,
            table,
            plan.writes,
            self.units,
            self.source.kind,
            self.batch_id,
            self.now_s,
            self._advance,
            self.options.chunk_rows,
        )
        self._revisions(conn, plan.revisions, series)

    def _revisions(self, conn: Connection, rev: pd.DataFrame, series: str) -> None:
        if rev.empty:
            return
        old_batch = rev["old_batch_id"].to_numpy(dtype=np.int64)
        old_batch = np.where(old_batch == THIS_BATCH, self.batch_id, old_batch)
        ids = sorted({int(b) for b in old_batch})
        query = sa.select(batches.c.id, batches.c.source_kind).where(batches.c.id.in_(ids))
        kinds = {int(i): str(k) for i, k in conn.execute(query)}
        quality = np.asarray(QUALITY_NAMES, dtype=object)
        new_value = rev["new_value"].to_numpy(dtype=float)
        bulk.insert_rows(
            conn,
            revisions,
            (
                {
                    "series": series,
                    "sensor_id": sid,
                    "ts": ts,
                    "old_value": ov,
                    "old_quality": quality[oq],
                    "old_source": kinds.get(b, "?"),
                    "old_batch_id": b,
                    "new_value": None if np.isnan(nv) else nv,
                    "batch_id": self.batch_id,
                    "revised_at": self.now_s,
                }
                for sid, ts, ov, oq, b, nv in zip(
                    rev["sensor_id"].to_numpy(dtype=np.int64).tolist(),
                    rev["ts_s"].to_numpy(dtype=np.int64).tolist(),
                    rev["old_value"].to_numpy(dtype=float).tolist(),
                    rev["old_quality"].to_numpy(dtype=np.int64).tolist(),
                    old_batch.tolist(),
                    new_value.tolist(),
                    strict=True,
                )
            ),
        )

    def store_values(self, conn: Connection, table: str, values: pd.DataFrame) -> UpsertPlan:
        """Classify `values` against the store and write them; returns the plan (for counts)."""
        bounds = _bounds(values)
        existing = bulk.fetch_existing(conn, table, bounds)
        plan = classify(values, existing)
        self._write(conn, table, plan, "register" if table == "register_readings" else "reading")
        if table == "register_readings":
            self.register_existing = existing
            self.register_bounds = bounds
        return plan

    def derive_intervals(self, conn: Connection, plan: UpsertPlan) -> list[Flag]:
        """Difference the registers around what this batch changed into interval energies."""
        if plan.outcome.empty:
            return []
        bounds = self.register_bounds
        neighbours = bulk.fetch_neighbours(conn, "register_readings", bounds)
        cols = ["sensor_id", "ts_s", "value"]
        series = pd.concat([neighbours[cols], self.register_existing[cols], plan.writes[cols]], ignore_index=True)
        series = series.drop_duplicates(["sensor_id", "ts_s"], keep="last")
        limits = self.sensors["max_power_kw"].astype(float)
        intervals, found = difference(series, self.resolution_s, limits, self.options.interpolate)
        span = series.groupby("sensor_id")["ts_s"].agg(["min", "max"]).reset_index()
        span.columns = ["sensor_id", "lo_s", "hi_s"]
        derived = span.assign(hi_s=span["hi_s"] - 1)
        existing = bulk.fetch_existing(conn, "readings", derived)
        interval_plan = classify(intervals.assign(pos=np.arange(len(intervals))), existing)
        self._retract(conn, existing, intervals)
        self._write(conn, "readings", interval_plan, "reading")
        bulk.delete_flags(conn, span)
        rows = list(
            zip(
                found["sensor_id"].to_numpy(dtype=np.int64).tolist(),
                found["start_s"].to_numpy(dtype=np.int64).tolist(),
                found["end_s"].to_numpy(dtype=np.int64).tolist(),
                found["kind"].astype(str).tolist(),
                [None if np.isnan(e) else e for e in found["energy_kwh"].to_numpy(dtype=float).tolist()],
                found["detail"].astype(str).tolist(),
                strict=True,
            )
        )
        bulk.insert_rows(
            conn,
            flags,
            (
                {
                    "sensor_id": sid,
                    "start_ts": start,
                    "end_ts": end,
                    "kind": kind,
                    "energy_kwh": energy,
                    "detail": detail,
                    "batch_id": self.batch_id,
                }
                for sid, start, end, kind, energy, detail in rows
            ),
        )
        names = self.sensors["name"].to_dict()
        return [
            Flag(
                sensor=str(names[sid]),
                kind=kind,
                start=pd.Timestamp(start, unit="s", tz="UTC").isoformat(),
                end=pd.Timestamp(end, unit="s", tz="UTC").isoformat(),
                detail=detail,
                energy_kwh=energy,
            )
            for sid, start, end, kind, energy, detail in rows
        ]

    def _retract(self, conn: Connection, existing: pd.DataFrame, intervals: pd.DataFrame) -> None:
        """Interval values that the registers no longer give (e.g. a revised register now shows a
        reset) are removed; their last value is kept in revisions with new_value NULL."""
        if existing.empty:
            return
        keys = ["sensor_id", "ts_s"]
        merged = existing.merge(intervals[keys], on=keys, how="left", indicator=True)
        stale = merged[merged["_merge"] == "left_only"]
        if not self.options.interpolate:
            # estimates filled in by an earlier run with interpolation stay until measured
            # values replace them; a run without interpolation does not undo them
            stale = stale[stale["quality"] != QUALITY_CODES[Quality.ESTIMATED]]
        if stale.empty:
            return
        rev = pd.DataFrame(
            {
                "sensor_id": stale["sensor_id"],
                "ts_s": stale["ts_s"],
                "old_value": stale["value"],
                "old_quality": stale["quality"],
                "old_batch_id": stale["batch_id"],
                "new_value": np.nan,
            }
        )
        self._revisions(conn, rev, "reading")
        bulk.delete_values(conn, "readings", stale[keys])

    def close(self, conn: Connection, site_id: str, report: IngestReport) -> None:
        bulk.insert_rows(
            conn,
            rejected_records,
            (
                {
                    "batch_id": self.batch_id,
                    "site_id": site_id,
                    "source": self.source.name,
                    "location": r.where,
                    "line": r.line,
                    "field": r.field,
                    "value": r.value,
                    "reason": r.reason,
                    "raw": r.raw,
                    "rejected_at": self.now_s,
                }
                for r in report.rejected
            ),
        )
        conn.execute(
            batches.update()
            .where(batches.c.id == self.batch_id)
            .values(
                rows_read=report.rows_read,
                accepted=report.accepted,
                duplicates=report.duplicates,
                revised=report.revised,
                rejected=len(report.rejected),
                committed_at=pd.Timestamp.now("UTC").to_pydatetime(),
            )
        )


def _bounds(values: pd.DataFrame) -> pd.DataFrame:
    """Per sensor, the smallest and largest timestamp in `values` (sensor_id, lo_s, hi_s)."""
    if values.empty:
        return pd.DataFrame({"sensor_id": [], "lo_s": [], "hi_s": []})
    span = values.groupby("sensor_id")["ts_s"].agg(["min", "max"]).reset_index()
    span.columns = ["sensor_id", "lo_s", "hi_s"]
    return span
