"""The steps of one ingestion batch inside its transaction (see :mod:`grid.ingest.pipeline`):
classify each chunk against the store and write it, difference the registers into interval
energies (right away from memory where that is exact, else over the touched spans at the end),
and close the batch row with its counts and rejected records.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grid.ingest.options import IngestOptions
from grid.ingest.registers import FLAG_COLUMNS, difference, isolated_spikes
from grid.ingest.report import Flag, IngestReport, Source
from grid.store import bulk
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
from grid.store.upsert import THIS_BATCH, UpsertPlan, classify

#: progress(stage, done, total): stage "read" (bytes of a file), "validate" or "write" (rows).
#: On PostgreSQL "write" may be reported from the batch's worker thread.
ProgressFn = Callable[[str, int, int], None]


@dataclass
class Derivation:
    """Register readings differenced over `span` (sensor_id, lo_s, hi_s): `intervals` and `found`
    flags (:func:`grid.ingest.registers.difference`), `current`: interval values stored there."""

    span: pd.DataFrame
    intervals: pd.DataFrame
    found: pd.DataFrame
    current: pd.DataFrame

    def without(self, sensor_ids: np.ndarray) -> Derivation:
        def keep(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[~frame["sensor_id"].isin(sensor_ids)]

        return Derivation(keep(self.span), keep(self.intervals), keep(self.found), keep(self.current))


class Worker:
    """Runs the write jobs of a batch one at a time: on a thread (PostgreSQL), or at once (SQLite,
    whose connections belong to one thread). :meth:`wait` before using the connection again."""

    def __init__(self, threaded: bool) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-write") if threaded else None
        self.pending: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        if self.pool is None:
            job()
        else:
            self.pending = self.pool.submit(job)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # the transaction must not end while a job still uses the connection
        try:
            if kind is None:
                self.wait()
            elif self.pending is not None:
                self.pending.exception()  # wait; the error being raised already says what failed
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


class BatchWriter:
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
        self.counts: tuple[int, int, int] = (0, 0, 0)  # accepted, duplicates, revised
        self.spans: list[pd.DataFrame] = []  # per chunk: register sensor_id, lo_s, hi_s, rows
        # first and last interval start of the ``readings`` rows written or removed (the batch row
        # keeps them: readback's cached aggregates take that span again)
        self.readings_span: tuple[int, int] | None = None
        self.whole = False  # the batch is one chunk: everything is derived from memory at once
        self.seen = np.zeros(0, dtype=np.int64)  # register sensors met so far
        self.late = np.zeros(0, dtype=np.int64)  # ... that are not fresh: differenced at the end
        self.flags = pd.DataFrame(
            {
                c: pd.Series(dtype={"kind": object, "detail": object, "energy_kwh": float}.get(c, np.int64))
                for c in FLAG_COLUMNS
            }
        )

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

    def _touch(self, table: str, keys: pd.DataFrame) -> None:
        """Note the interval starts of `keys` (a ts_s column) written to or removed from `table`."""
        if table != "readings" or keys.empty:
            return
        ts = keys["ts_s"].to_numpy(dtype=np.int64)
        lo, hi = int(ts.min()), int(ts.max())
        if self.readings_span is not None:
            lo, hi = min(lo, self.readings_span[0]), max(hi, self.readings_span[1])
        self.readings_span = (lo, hi)

    def _delete(self, conn: Connection, table: str, keys: pd.DataFrame) -> None:
        self._touch(table, keys)
        bulk.delete_values(conn, table, keys)

    def _write(self, conn: Connection, table: str, plan: UpsertPlan, series: str) -> None:
        self._touch(table, plan.writes)
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

    def add(self, conn: Connection, valid: pd.DataFrame, worker: Worker) -> tuple[np.ndarray, np.ndarray]:
        """Classify one chunk of valid values against the store now (the earlier chunks written),
        and write it on the worker; difference the registers of fresh sensors right away.

        Register readings that are isolated spikes among their stored neighbours and the chunk
        (:func:`grid.ingest.registers.isolated_spikes`) are not written: returns their record
        positions (`pos`) and reasons, for the caller to reject."""
        measure = self.sensors["measure"].reindex(valid["sensor_id"].to_numpy()).to_numpy()
        is_register = measure == Measure.REGISTER.value
        worker.wait()
        plans: list[tuple[str, UpsertPlan, str]] = []
        derivation: Callable[[], None] | None = None
        spikes = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
        for table, series, values in (
            ("readings", "reading", valid[~is_register]),
            ("register_readings", "register", valid[is_register]),
        ):
            if values.empty:
                continue
            bounds = _bounds(values)
            existing = bulk.fetch_existing(conn, table, bounds)
            if table == "register_readings":
                neighbours = bulk.fetch_neighbours(conn, table, bounds)
                context = pd.concat([neighbours, existing], ignore_index=True)
                spike, reasons = isolated_spikes(values, context, self.sensors["max_power_kw"].astype(float))
                spikes = (values["pos"].to_numpy()[spike], reasons[spike])
                values = values[~spike]
            plan = classify(values, existing)
            accepted, duplicates, revised = plan.counts()
            self.counts = (self.counts[0] + accepted, self.counts[1] + duplicates, self.counts[2] + revised)
            self.to_write += len(plan.writes)
            plans.append((table, plan, series))
            if table == "register_readings":
                rows = values.groupby("sensor_id").size().reindex(bounds["sensor_id"], fill_value=0)
                self.spans.append(bounds.assign(rows=rows.to_numpy()))
                derivation = self._derive_now(conn, bounds, existing, neighbours, plan, self.whole)

        def write() -> None:
            for table, plan, series in plans:
                self._write(conn, table, plan, series)
            if derivation is not None:
                derivation()

        worker.submit(write)
        return spikes

    def _derive_now(
        self,
        conn: Connection,
        bounds: pd.DataFrame,
        existing: pd.DataFrame,
        neighbours: pd.DataFrame,
        plan: UpsertPlan,
        whole: bool,
    ) -> Callable[[], None] | None:
        """Interval energies of the chunk's register sensors that can be derived from what is in
        memory: all of them when the chunk is the `whole` batch, else the *fresh* ones.

        A sensor is fresh when the store held none of its registers (nor, later, interval values)
        before this batch: then every interval value and flag in its spans is this batch's own, and
        deriving a span again when a later chunk adds readings to it (rows out of order) gives
        the same tables as deriving once at the end. Any other sensor is differenced at the end
        (:meth:`derive_intervals`), so that revisions of stored values are exact."""
        cols = ["sensor_id", "ts_s", "value"]
        if whole:
            series = pd.concat([neighbours[cols], existing[cols], plan.writes[cols]], ignore_index=True)
            series = series.drop_duplicates(["sensor_id", "ts_s"], keep="last")
            return self._derivation_job(conn, self._derivation(conn, series), classify_against=self.batch_id)
        sensor_ids = bounds["sensor_id"].to_numpy(dtype=np.int64)
        first = sensor_ids[~np.isin(sensor_ids, self.seen)]
        stored = np.union1d(existing["sensor_id"].to_numpy(), neighbours["sensor_id"].to_numpy())
        self.seen = np.union1d(self.seen, first)
        self.late = np.union1d(self.late, np.intersect1d(first, stored))
        fresh = sensor_ids[~np.isin(sensor_ids, self.late)]
        if len(fresh) == 0:
            return None
        series = pd.concat([neighbours[cols], existing[cols], plan.writes[cols]], ignore_index=True)
        series = series[series["sensor_id"].isin(fresh)].drop_duplicates(["sensor_id", "ts_s"], keep="last")
        derived = self._derivation(conn, series)
        current = derived.current
        held = current.loc[current["batch_id"] != self.batch_id, "sensor_id"].unique()
        if len(held):  # interval values stored before this batch: not fresh after all
            self.late = np.union1d(self.late, held)
            derived = derived.without(held)
        return self._derivation_job(conn, derived, classify_against=None)

    def derive_intervals(self, conn: Connection, worker: Worker) -> list[Flag]:
        """Difference the registers of the sensors that are not fresh (see :meth:`_derive_now`)
        over everything this batch touched, a group of sensors (about ``chunk_rows`` register
        readings) at a time; returns the batch's flags."""
        if self.spans and len(self.late):
            by_sensor = pd.concat(self.spans).groupby("sensor_id", as_index=False)
            spans = by_sensor.agg(lo_s=("lo_s", "min"), hi_s=("hi_s", "max"), rows=("rows", "sum"))
            spans = spans[spans["sensor_id"].isin(self.late)]
            group = (spans["rows"].cumsum().to_numpy() - 1) // max(self.options.chunk_rows, 1)
            for g in np.unique(group):
                bounds = spans.loc[group == g, ["sensor_id", "lo_s", "hi_s"]].reset_index(drop=True)
                worker.wait()
                cols = ["sensor_id", "ts_s", "value"]
                registers = bulk.fetch_existing(conn, "register_readings", bounds)
                neighbours = bulk.fetch_neighbours(conn, "register_readings", bounds)
                series = pd.concat([neighbours[cols], registers[cols]], ignore_index=True)
                derived = self._derivation(conn, series.drop_duplicates(["sensor_id", "ts_s"], keep="last"))
                worker.submit(self._derivation_job(conn, derived, classify_against=self.batch_id))
        names = self.sensors["name"].to_dict()
        return [
            Flag(
                sensor=str(names[sid]),
                kind=kind,
                start=pd.Timestamp(start, unit="s", tz="UTC").isoformat(),
                end=pd.Timestamp(end, unit="s", tz="UTC").isoformat(),
                detail=detail,
                energy_kwh=None if np.isnan(energy) else float(energy),
            )
            for sid, start, end, kind, energy, detail in self.flags[FLAG_COLUMNS].itertuples(index=False, name=None)
        ]

    def _derivation(self, conn: Connection, series: pd.DataFrame) -> Derivation:
        """Intervals and flags of register `series` (one row per key), and the interval values
        stored over its span."""
        limits = self.sensors["max_power_kw"].astype(float)
        intervals, found = difference(series, self.resolution_s, limits, self.options.interpolate)
        span = series.groupby("sensor_id")["ts_s"].agg(["min", "max"]).reset_index()
        span.columns = ["sensor_id", "lo_s", "hi_s"]
        current = bulk.fetch_existing(conn, "readings", span.assign(hi_s=span["hi_s"] - 1))
        return Derivation(span, intervals, found, current)

    def _derivation_job(
        self, conn: Connection, derived: Derivation, classify_against: int | None
    ) -> Callable[[], None]:
        """The writes of a derivation. Interval values this batch stored before over the span are
        replaced (they were never visible outside the batch: no revisions); with
        `classify_against` (this batch's id) the others are classified as usual, else there are
        none (fresh sensors)."""
        current = derived.current
        own = current["batch_id"].to_numpy() == self.batch_id
        before = current[~own] if classify_against is not None else current.iloc[:0]
        plan = classify(derived.intervals.assign(pos=np.arange(len(derived.intervals))), before)
        stale = self._stale(before, derived.intervals)
        replaced = current.loc[own, ["sensor_id", "ts_s"]]
        self.to_write += len(plan.writes)
        self._note_flags(derived.span, derived.found)
        rows = list(
            zip(
                derived.found["sensor_id"].to_numpy(dtype=np.int64).tolist(),
                derived.found["start_s"].to_numpy(dtype=np.int64).tolist(),
                derived.found["end_s"].to_numpy(dtype=np.int64).tolist(),
                derived.found["kind"].astype(str).tolist(),
                [None if np.isnan(e) else e for e in derived.found["energy_kwh"].to_numpy(dtype=float).tolist()],
                derived.found["detail"].astype(str).tolist(),
                strict=True,
            )
        )

        def write() -> None:
            self._delete(conn, "readings", replaced)
            self._retract(conn, stale)
            self._write(conn, "readings", plan, "reading")
            bulk.delete_flags(conn, derived.span)
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

        return write

    def _note_flags(self, span: pd.DataFrame, found: pd.DataFrame) -> None:
        """Keep the batch's flags as the store will hold them: a derivation over a span replaces
        the flags within it (like :func:`grid.store.bulk.delete_flags`)."""
        if len(self.flags):
            at = self.flags.merge(span, on="sensor_id", how="left")
            inside = (at["start_s"] >= at["lo_s"]) & (at["end_s"] <= at["hi_s"])
            self.flags = self.flags[~inside.to_numpy()]
        if len(found):
            self.flags = pd.concat([self.flags, found[FLAG_COLUMNS]], ignore_index=True)

    def _stale(self, existing: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
        """Stored interval values that the registers no longer give (e.g. a revised register now
        shows a reset)."""
        if existing.empty:
            return existing
        keys = ["sensor_id", "ts_s"]
        merged = existing.merge(intervals[keys], on=keys, how="left", indicator=True)
        stale = merged[merged["_merge"] == "left_only"]
        if not self.options.interpolate:
            # estimates filled in by an earlier run with interpolation stay until measured
            # values replace them; a run without interpolation does not undo them
            stale = stale[stale["quality"] != QUALITY_CODES[Quality.ESTIMATED]]
        return stale

    def _retract(self, conn: Connection, stale: pd.DataFrame) -> None:
        """Remove `stale` interval values (:meth:`_stale`); their last value is kept in revisions
        with new_value NULL."""
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
        self._delete(conn, "readings", stale[["sensor_id", "ts_s"]])

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
                checksum=report.source.checksum,  # a streamed file's is known only now
                committed_at=pd.Timestamp.now("UTC").to_pydatetime(),
                readings_from=None if self.readings_span is None else self.readings_span[0],
                readings_to=None if self.readings_span is None else self.readings_span[1],
            )
        )


def _bounds(values: pd.DataFrame) -> pd.DataFrame:
    """Per sensor, the smallest and largest timestamp in `values` (sensor_id, lo_s, hi_s)."""
    if values.empty:
        return pd.DataFrame({"sensor_id": [], "lo_s": [], "hi_s": []})
    span = values.groupby("sensor_id")["ts_s"].agg(["min", "max"]).reset_index()
    span.columns = ["sensor_id", "lo_s", "hi_s"]
    return span
