"""Demo meter history: 15-minute register readings of the demo quarter, with realistic faults.

Writes what a meter head-end would export for the weeks before the demo plan: one gzip CSV in the
long format of :mod:`grid.ingest.csvfile` (``meter_id,timestamp,obis,value,unit``), cumulative
registers in kWh with 3 decimals (1 Wh, as meters display), timestamps in ISO 8601 with the
Europe/Berlin offset of the moment (``+02:00`` / ``+01:00``). Rows come as daily deliveries: by
local day, then register, then time (as MSCONS messages carry one meter-day each); then the faults
below disturb that order.

What is metered (the sensors :func:`grid.store.sites.register_site` creates):

* household meter ``meter_id`` (e.g. ``MTR-H001``), ``1-0:1.8.0``: the household's draw, built
  exactly like ``base_load.csv`` of :mod:`grid.demo` (BDEW 2025 profile of the household, local
  time, Hesse holidays, x annual kWh, the household's own +-30 min shift, smooth noise). For PV
  homes the profile is P25 (S25 with a battery): BDEW's *grid draw* of such homes, i.e. already net
  of PV self-supply (and of the battery). So the import register measures grid draw for every home.
* household meter, ``1-0:2.8.0``: delivered for every home (smart meters are bidirectional) and
  flat at 0 kWh: the history meters PV as a separate feed-in (the array's own meter below), so
  that ``household_load`` = base load and ``pv`` = generation, the way the plan balances a
  connection (``inflexible_load`` plus ``pv``). No PV is subtracted twice in the history; the
  demo's caveat on P25/S25 (``data/demo/PROVENANCE.md``, base_load.csv) applies unchanged.
* PV meter (meter id = array id, e.g. ``PV-H004``), ``1-0:2.8.0``: the array's generation,
  kWp x the availability of :func:`grid.demo.pv_availability_kw_per_kwp` (pvlib from the GHI of
  :func:`grid.demo.make_weather`); nothing is curtailed.

Batteries, wallboxes, heat pumps and transformers have no history here.

Faults, all drawn from the seed (stream ``history_faults``), listed in
:attr:`HistorySummary.faults` and in ``data/demo/PROVENANCE.md``:

* duplicates: :data:`DUPLICATE_SINGLES` single rows sent twice in a row, and one block of
  :data:`DUPLICATE_BLOCK_STEPS` readings of one meter re-sent a day later (identical values);
* out of order: :data:`OUT_OF_ORDER_ROWS` rows arrive 1..:data:`OUT_OF_ORDER_MAX_STEPS` timestamps
  late;
* reset: one household import register restarts from 0 kWh inside an interval (meter exchange) and
  keeps counting: the reading at the reset shows only the energy since the restart;
* gap: one household meter (both registers) sends nothing for :data:`GAP_STEPS` quarter-hours;
* late rows: :data:`LATE_METERS` household import registers deliver :data:`LATE_STEPS` readings of
  one afternoon only at the very end of the file.

Reset, gap and late rows lie on different meters, never on a local day with a DST change.
Ingested (:func:`ingest_history`), every row is accepted or a duplicate (nothing is revised or
rejected), the reset gives one ``reset`` flag and the gap one ``gap`` flag per register.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from grid import demo
from grid.domain import Site, load_site
from grid.ingest.pipeline import ingest_csv
from grid.ingest.report import IngestReport
from grid.series import load_inputs
from grid.store.catalog import EXPORT_REGISTER, IMPORT_REGISTER
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.sites import register_site

HISTORY_SEED = demo.DEFAULT_SEED
MIN_HISTORY_WEEKS = 8
DECIMALS = 3  # register resolution: 1 Wh
WH_PER_KWH = 1000
UNIT = "kWh"
HEADER = "meter_id,timestamp,obis,value,unit\n"
GZIP_LEVEL = 6
CHUNK_ROWS = 250_000  # rows formatted at a time (memory)
#: Register readings at the start of the history (kWh): meters have been counting for years.
IMPORT_START_KWH = (2_000.0, 60_000.0)
PV_START_KWH = (500.0, 40_000.0)
# faults
DUPLICATE_SINGLES = 20
DUPLICATE_BLOCK_STEPS = 8  # 2 h of one meter, re-sent ...
DUPLICATE_BLOCK_DELAY_STEPS = 96  # ... a day later
OUT_OF_ORDER_ROWS = 40
OUT_OF_ORDER_MAX_STEPS = 8
RESET_AT = 0.40  # share of the window where the reset and the other faults sit
RESET_KEPT_SHARE = 0.4  # energy of the reset interval counted after the restart
GAP_AT = 0.55
GAP_STEPS = 16  # 4 h without readings
LATE_AT = 0.70
LATE_METERS = 3
LATE_STEPS = 24  # 6 h of readings
LATE_HOUR = 12  # local hour the late block starts
FAULT_METERS = 2 + LATE_METERS  # reset, gap and late meters are distinct households
#: Bump when the file this module writes changes, so that cached files are regenerated.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Fault:
    """One fault in the file: `kind` (duplicate, duplicate_block, out_of_order, reset, gap, late),
    the meter and OBIS code, the span of readings [start, end] it concerns (ISO 8601, local
    offset), how many file `rows` it adds (duplicates), moves or removes (gap), and a `detail`."""

    kind: str
    meter_id: str
    obis: str
    start: str
    end: str
    rows: int
    detail: str


@dataclass
class HistorySummary:
    """What :func:`write_history` wrote.

    `rows` lines of data in the file (without the header), `readings` distinct (meter, OBIS,
    timestamp) keys among them, `registers` register series (meter x OBIS); `start`/`end` are the
    first and last reading (UTC ISO 8601; the last interval ends at `end`); `key` identifies the
    inputs (site YAML, window, seed, generator) for caching.
    """

    path: str
    site_id: str
    start: str
    end: str
    seed: int
    households: int
    pv_meters: int
    registers: int
    rows: int
    readings: int
    bytes: int
    sha256: str
    key: str
    seconds: float
    faults: list[Fault] = field(default_factory=list)

    @property
    def duplicate_rows(self) -> int:
        return self.rows - self.readings

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.faults:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        return counts

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "duplicate_rows": self.duplicate_rows}

    @classmethod
    def from_dict(cls, data: dict) -> HistorySummary:
        data = {k: v for k, v in data.items() if k != "duplicate_rows"}
        faults = [Fault(**f) for f in data.pop("faults", [])]
        return cls(**data, faults=faults)


# --- window ---------------------------------------------------------------------------------------


def default_end(site: Site) -> pd.Timestamp:
    """The first interval of the site's inputs (UTC): the history ends where the plan starts."""
    return pd.Timestamp(load_inputs(site).index[0]).tz_convert("UTC")


def default_start(end: pd.Timestamp, tz: str = demo.TIMEZONE) -> pd.Timestamp:
    """Local midnight of the Monday before the latest end-of-October DST change that lies at least
    :data:`MIN_HISTORY_WEEKS` weeks before `end` (UTC), so the history holds a 100-quarter-hour day.

    For the demo (plan from 2026-01-14) that is 2025-10-20 (DST change 2025-10-26), 86 days; for a
    plan from 2027-01-14 it would be 2026-10-19 (DST change 2026-10-25)."""
    local_end = end.tz_convert(tz)
    for year in (local_end.year, local_end.year - 1, local_end.year - 2):
        last_day = dt.date(year, 10, 31)
        sunday = last_day - dt.timedelta(days=(last_day.weekday() + 1) % 7)
        monday = pd.Timestamp(sunday - dt.timedelta(days=6)).tz_localize(tz)
        if end - monday >= pd.Timedelta(weeks=MIN_HISTORY_WEEKS):
            return monday.tz_convert("UTC")
    raise ValueError(f"no October DST change found before {end}")


def _utc(text: str | pd.Timestamp, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        raise ValueError(f"{name} needs a UTC offset, got {text!r}")
    return stamp.tz_convert("UTC")


# --- the readings ---------------------------------------------------------------------------------


def _history_key(site_path: Path, start: pd.Timestamp, end: pd.Timestamp, seed: int) -> str:
    """sha256 of everything the file depends on: site YAML bytes, window, seed, generator code."""
    digest = hashlib.sha256()
    digest.update(Path(site_path).read_bytes())
    digest.update(f"{start.isoformat()}|{end.isoformat()}|{seed}|{FORMAT_VERSION}".encode())
    for module in (demo.__file__, __file__):
        digest.update(Path(str(module)).read_bytes())
    return digest.hexdigest()


def _registers_wh(site: Site, index: pd.DatetimeIndex, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Register values (Wh, int64) at the N + 1 instants of `index`, one column per register.

    Columns: household import and export register of each household (in site order), then the PV
    export register of each array. Returns (values, meter ids, OBIS codes)."""
    intervals = index[:-1]
    rng = demo._rng(seed, "history_registers")
    households = [h.model_dump() for h in site.households]
    load_kw = demo.base_load_kw(households, intervals, seed, noise_stream="history_base_load")
    weather_seed = int(demo._rng(seed, "history_weather").integers(2**31))
    weather = demo.make_weather(intervals, weather_seed)
    arrays = [p.model_dump() for p in site.pv_arrays]
    pv_kw = demo.pv_availability_kw_per_kwp(arrays, weather) * np.array([p.kwp for p in site.pv_arrays])
    n_h, n_pv = len(site.households), len(site.pv_arrays)
    energy_kwh = np.zeros((len(intervals), 2 * n_h + n_pv))
    energy_kwh[:, 0 : 2 * n_h : 2] = load_kw.to_numpy() * demo.DT_H
    energy_kwh[:, 2 * n_h :] = pv_kw.to_numpy() * demo.DT_H
    start_kwh = np.zeros(2 * n_h + n_pv)
    start_kwh[0 : 2 * n_h : 2] = rng.uniform(*IMPORT_START_KWH, n_h)
    start_kwh[2 * n_h :] = rng.uniform(*PV_START_KWH, n_pv)
    cumulative = np.vstack([np.zeros((1, energy_kwh.shape[1])), np.cumsum(energy_kwh, axis=0)])
    values_wh = np.rint((start_kwh + cumulative) * WH_PER_KWH).astype(np.int64)
    meters: list[str] = []
    obis: list[str] = []
    for h in site.households:
        meters += [h.meter_id, h.meter_id]
        obis += [IMPORT_REGISTER, EXPORT_REGISTER]
    meters += [p.id for p in site.pv_arrays]
    obis += [EXPORT_REGISTER] * n_pv
    return values_wh, meters, obis


def _off_dst_day(index: pd.DatetimeIndex, k: int, span: int, tz: str) -> int:
    """Move reading position `k` on by whole days until the readings [k, k + span] avoid local
    days that are not 24 h long (DST changes) and stay inside the window."""
    day = pd.Timedelta(days=1)
    while k + span < len(index):
        days = {t.date() for t in index[k : k + span + 1].tz_convert(tz)}
        midnights = [
            (pd.Timestamp(d).tz_localize(tz), pd.Timestamp(d + dt.timedelta(days=1)).tz_localize(tz)) for d in days
        ]
        if all(b - a == day for a, b in midnights):
            return k
        k += int(day / (index[1] - index[0]))
    raise ValueError("window too short to place the faults off the DST days")


def _at_local_hour(index: pd.DatetimeIndex, k: int, hour: int, tz: str) -> int:
    """The first reading position >= k at `hour`:00 local time."""
    local = index.tz_convert(tz)
    hits = np.flatnonzero((local.hour == hour) & (local.minute == 0) & (np.arange(len(index)) >= k))
    if len(hits) == 0:
        raise ValueError("window too short to place the late rows")
    return int(hits[0])


def write_history(
    site_path: Path,
    out_path: Path,
    start: str | None = None,
    end: str | None = None,
    seed: int = HISTORY_SEED,
) -> HistorySummary:
    """Write the meter history of the site at `site_path` as a gzip CSV to `out_path`.

    Parameters
    ----------
    site_path : site YAML (a demo site from :func:`grid.demo.generate_demo`; households need
        ``annual_kwh`` and ``profile``, PV arrays ``kwp``, tilt and azimuth).
    out_path : file to write (gzip; the name should end in ``.csv.gz``). A JSON summary is written
        next to it (``<out_path>.json``).
    start : first reading, ISO 8601 with offset, on the 15-minute grid. Default
        :func:`default_start` (the Monday before the last October DST change >= 8 weeks before `end`).
    end : last reading = end of the last interval. Default :func:`default_end`: the first interval
        of the site's 48 h inputs, so the history ends where the plan starts.
    seed : seed of every random choice; the same arguments give the same bytes.

    Returns
    -------
    HistorySummary (also written as JSON next to the file).
    """
    began = time.perf_counter()
    site_path, out_path = Path(site_path), Path(out_path)
    site = load_site(site_path)
    tz = site.site.timezone
    step = pd.Timedelta(minutes=site.site.resolution_min)
    end_ts = _utc(end, "end") if end is not None else default_end(site)
    start_ts = _utc(start, "start") if start is not None else default_start(end_ts, tz)
    for name, stamp in (("start", start_ts), ("end", end_ts)):
        if (stamp - pd.Timestamp(0, tz="UTC")) % step:
            raise ValueError(f"{name} {stamp} is not on the {step} grid")
    if end_ts <= start_ts:
        raise ValueError(f"end {end_ts} must be after start {start_ts}")
    if len(site.households) < FAULT_METERS:
        raise ValueError(f"the faults need at least {FAULT_METERS} households, got {len(site.households)}")
    index = pd.date_range(start_ts, end_ts, freq=step, tz="UTC")  # N + 1 readings
    values, meters, obis = _registers_wh(site, index, seed)
    n_t, n_m = values.shape
    present = np.ones((n_t, n_m), dtype=bool)
    faults: list[Fault] = []
    local = index.tz_convert(tz)
    stamps = np.array([t.isoformat() for t in local], dtype=object)
    rng = demo._rng(seed, "history_faults")
    chosen = rng.choice(len(site.households), size=FAULT_METERS, replace=False)
    import_col = 2 * chosen  # household import register columns

    # reset: the register restarts from 0 inside interval [k-1, k) and keeps counting
    k = _off_dst_day(index, max(1, int(RESET_AT * n_t)), 1, tz)
    c = int(import_col[0])
    kept = round(RESET_KEPT_SHARE * float(values[k, c] - values[k - 1, c]))
    before = values[k - 1, c]
    values[k:, c] = values[k:, c] - values[k, c] + kept
    faults.append(
        Fault(
            "reset",
            meters[c],
            obis[c],
            stamps[k - 1],
            stamps[k],
            0,
            f"register restarts from 0 inside the interval: {before / WH_PER_KWH:.3f} kWh at "
            f"{stamps[k - 1]}, {kept / WH_PER_KWH:.3f} kWh at {stamps[k]}, counting on from there",
        )
    )

    # gap: both registers of one meter silent for GAP_STEPS readings
    k = _off_dst_day(index, int(GAP_AT * n_t), GAP_STEPS + 1, tz)
    for c in (int(2 * chosen[1]), int(2 * chosen[1] + 1)):
        present[k + 1 : k + 1 + GAP_STEPS, c] = False
        faults.append(
            Fault(
                "gap",
                meters[c],
                obis[c],
                stamps[k + 1],
                stamps[k + GAP_STEPS],
                GAP_STEPS,
                f"no readings from {stamps[k + 1]} to {stamps[k + GAP_STEPS]}: "
                f"{GAP_STEPS} missing, {GAP_STEPS + 1} intervals without a value",
            )
        )

    # row order: local day, then register, then time (a daily delivery per meter, as MSCONS
    # messages come); the faults below move rows or add copies by changing their sort key
    rank = _daily_blocks(local, n_m)
    rows_t, rows_m = np.nonzero(present)
    order_key = rank[rows_t, rows_m].astype(float)
    end_key = float(rank.size)
    extra_t: list[int] = []
    extra_m: list[int] = []
    extra_key: list[float] = []

    # late rows: LATE_STEPS readings of LATE_METERS import registers come at the end of the file
    k = _off_dst_day(index, _at_local_hour(index, int(LATE_AT * n_t), LATE_HOUR, tz), LATE_STEPS, tz)
    late = np.zeros((n_t, n_m), dtype=bool)
    for j, c in enumerate(import_col[2:]):
        late[k : k + LATE_STEPS, c] = True
        faults.append(
            Fault(
                "late",
                meters[c],
                obis[c],
                stamps[k],
                stamps[k + LATE_STEPS - 1],
                LATE_STEPS,
                f"{LATE_STEPS} readings appended at the end of the file (late delivery {j + 1})",
            )
        )
    is_late = late[rows_t, rows_m]
    order_key[is_late] += end_key  # after everything, in their own order

    # out of order: rows that arrive 1..OUT_OF_ORDER_MAX_STEPS timestamps late
    movable = np.flatnonzero(~is_late & (rows_t < n_t - OUT_OF_ORDER_MAX_STEPS))
    moved = np.sort(rng.choice(movable, size=OUT_OF_ORDER_ROWS, replace=False))
    delay = rng.integers(1, OUT_OF_ORDER_MAX_STEPS + 1, OUT_OF_ORDER_ROWS)
    for r, d in zip(moved.tolist(), delay.tolist(), strict=True):
        t, c = int(rows_t[r]), int(rows_m[r])
        order_key[r] = rank[t + d, c] + 0.25
        faults.append(
            Fault(
                "out_of_order",
                meters[c],
                obis[c],
                stamps[t],
                stamps[t],
                1,
                f"arrives right after the reading of {stamps[t + d]} ({d} step(s) late)",
            )
        )

    # duplicates: single rows sent twice in a row ...
    stays = ~is_late
    stays[moved] = False
    candidates = np.flatnonzero(stays)
    for r in np.sort(rng.choice(candidates, size=DUPLICATE_SINGLES, replace=False)).tolist():
        t, c = int(rows_t[r]), int(rows_m[r])
        extra_t.append(t)
        extra_m.append(c)
        extra_key.append(order_key[r] + 0.5)
        faults.append(Fault("duplicate", meters[c], obis[c], stamps[t], stamps[t], 1, "sent twice in a row"))
    # ... and one block of one meter re-sent a day later
    c = int(rng.choice(n_m))
    hi = n_t - DUPLICATE_BLOCK_STEPS - DUPLICATE_BLOCK_DELAY_STEPS
    k0 = int(rng.integers(1, hi))
    block = [t for t in range(k0, k0 + DUPLICATE_BLOCK_STEPS) if present[t, c] and not late[t, c]]
    for t in block:
        extra_t.append(t)
        extra_m.append(c)
        extra_key.append(rank[t + DUPLICATE_BLOCK_DELAY_STEPS, c] + 0.5)
    faults.append(
        Fault(
            "duplicate_block",
            meters[c],
            obis[c],
            stamps[k0],
            stamps[k0 + DUPLICATE_BLOCK_STEPS - 1],
            len(block),
            f"{len(block)} readings re-sent {DUPLICATE_BLOCK_DELAY_STEPS} steps later (same values)",
        )
    )

    all_t = np.concatenate([rows_t, np.asarray(extra_t, dtype=np.int64)])
    all_m = np.concatenate([rows_m, np.asarray(extra_m, dtype=np.int64)])
    keys = np.concatenate([order_key, np.asarray(extra_key, dtype=float)])
    order = np.argsort(keys, kind="stable")
    all_t, all_m = all_t[order], all_m[order]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _write_gzip_csv(out_path, values[all_t, all_m], all_t, all_m, stamps, meters, obis)
    packed = out_path.read_bytes()
    summary = HistorySummary(
        path=str(out_path),
        site_id=site.id,
        start=start_ts.isoformat(),
        end=end_ts.isoformat(),
        seed=seed,
        households=len(site.households),
        pv_meters=len(site.pv_arrays),
        registers=n_m,
        rows=len(all_t),
        readings=int(present.sum()),
        bytes=len(packed),
        sha256=hashlib.sha256(packed).hexdigest(),
        key=_history_key(site_path, start_ts, end_ts, seed),
        seconds=0.0,
        faults=faults,
    )
    summary.seconds = round(time.perf_counter() - began, 2)
    _summary_path(out_path).write_text(json.dumps(summary.as_dict(), indent=1) + "\n", encoding="utf-8")
    return summary


def _daily_blocks(local: pd.DatetimeIndex, n_m: int) -> np.ndarray:
    """Position of each reading (time x register) in the file: by local day, register, time."""
    day = pd.factorize(local.date)[0]
    n_t = len(local)
    t_grid = np.repeat(np.arange(n_t), n_m)
    m_grid = np.tile(np.arange(n_m), n_t)
    order = np.lexsort((t_grid, m_grid, day[t_grid]))
    rank = np.empty(n_t * n_m, dtype=np.int64)
    rank[order] = np.arange(n_t * n_m)
    return rank.reshape(n_t, n_m)


def _write_gzip_csv(
    path: Path,
    values_wh: np.ndarray,
    t_idx: np.ndarray,
    m_idx: np.ndarray,
    stamps: np.ndarray,
    meters: list[str],
    obis: list[str],
) -> None:
    """Write the rows as gzip CSV (register value in Wh -> kWh with 3 decimals), in chunks so that
    memory stays small; via a temporary file, so that a cached file is never half written. The
    gzip header has no name and mtime 0: same rows, same bytes."""
    heads = np.array([f"{m}," for m in meters], dtype=object)
    codes = np.array([f",{o}," for o in obis], dtype=object)
    part = path.with_name(path.name + ".part")
    with (
        part.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as packed,
    ):
        packed.write(HEADER.encode("ascii"))
        for lo in range(0, len(values_wh), CHUNK_ROWS):
            chunk = slice(lo, lo + CHUNK_ROWS)
            value = values_wh[chunk]
            whole = pd.Series(value // WH_PER_KWH).astype(str).to_numpy(dtype=object)
            frac = pd.Series(value % WH_PER_KWH).astype(str).str.zfill(DECIMALS).to_numpy(dtype=object)
            m, t = m_idx[chunk], t_idx[chunk]
            lines = heads[m] + stamps[t] + codes[m] + whole + "." + frac + f",{UNIT}\n"
            packed.write("".join(lines.tolist()).encode("ascii"))
    part.replace(path)


def _summary_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".json")


def ensure_history(
    site_path: Path,
    out_path: Path,
    start: str | None = None,
    end: str | None = None,
    seed: int = HISTORY_SEED,
) -> HistorySummary:
    """:func:`write_history`, unless `out_path` already holds the file for these inputs.

    The cache key (sha256 of the site YAML, window, seed and this generator's code) is kept in the
    JSON summary next to the file; the file's sha256 is checked too. Either mismatch regenerates."""
    site_path, out_path = Path(site_path), Path(out_path)
    summary_path = _summary_path(out_path)
    if out_path.is_file() and summary_path.is_file():
        site = load_site(site_path)
        end_ts = _utc(end, "end") if end is not None else default_end(site)
        start_ts = _utc(start, "start") if start is not None else default_start(end_ts, site.site.timezone)
        cached = HistorySummary.from_dict(json.loads(summary_path.read_text(encoding="utf-8")))
        key = _history_key(site_path, start_ts, end_ts, seed)
        if cached.key == key and cached.sha256 == hashlib.sha256(out_path.read_bytes()).hexdigest():
            return cached
    return write_history(site_path, out_path, start, end, seed)


# --- ingestion ------------------------------------------------------------------------------------


def ingest_history(
    site_path: Path,
    history_path: Path,
    database_url: str | None = None,
    *,
    engine: Engine | None = None,
) -> IngestReport:
    """Register the site in the store and ingest the history file as one batch.

    Parameters
    ----------
    site_path : site YAML; the site and its sensors are created or updated first.
    history_path : the gzip CSV of :func:`write_history`.
    database_url : store URL (default ``$GRID_DATABASE_URL``, else ``./quartiere.sqlite``); the
        schema is migrated to the newest revision first.
    engine : an existing engine instead (its schema must exist), e.g. a scratch store in tests.

    Returns
    -------
    The batch's :class:`grid.ingest.report.IngestReport` (accepted, duplicates, revised, rejected,
    flags); ``report.balanced`` holds.
    """
    site = load_site(Path(site_path))
    own = engine is None
    eng = make_engine(database_url) if engine is None else engine
    try:
        if own:
            upgrade(eng)
        register_site(eng, site)
        return ingest_csv(eng, site.id, Path(history_path))  # streamed: bounded memory
    finally:
        if own:
            eng.dispose()


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``python -m grid.demo_history SITE_YAML OUT.csv.gz [--start] [--end] [--seed] [--ingest]``."""
    parser = argparse.ArgumentParser(prog="python -m grid.demo_history", description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="site YAML (e.g. data/demo/site.yaml)")
    parser.add_argument("out", type=Path, help="gzip CSV to write (e.g. out/history.csv.gz)")
    parser.add_argument("--start", help="first reading, ISO 8601 with offset (default: see docs)")
    parser.add_argument("--end", help="last reading (default: start of the site's inputs)")
    parser.add_argument("--seed", type=int, default=HISTORY_SEED)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    parser.add_argument("--ingest", action="store_true", help="then ingest it into the store")
    parser.add_argument("--db", help="store URL (default $GRID_DATABASE_URL or ./quartiere.sqlite)")
    args = parser.parse_args(argv)
    make = write_history if args.force else ensure_history
    summary = make(args.site, args.out, args.start, args.end, args.seed)
    counts = ", ".join(f"{k} {v}" for k, v in summary.fault_counts().items())
    print(
        f"{summary.path}: {summary.rows:,} rows ({summary.readings:,} readings of {summary.registers} "
        f"registers, {summary.duplicate_rows} duplicate rows), {summary.bytes / 1e6:.1f} MB, "
        f"{summary.start} .. {summary.end}, {summary.seconds:.1f} s\nfaults: {counts}"
    )
    if args.ingest:
        began = time.perf_counter()
        report = ingest_history(args.site, args.out, args.db)
        flags: dict[str, int] = {}
        for f in report.flags:
            flags[f.kind] = flags.get(f.kind, 0) + 1
        print(
            f"ingested in {time.perf_counter() - began:.1f} s: {report.rows_read:,} read, "
            f"{report.accepted:,} accepted, {report.duplicates:,} duplicates, {report.revised:,} revised, "
            f"{len(report.rejected):,} rejected; flags {flags}"
        )


if __name__ == "__main__":
    main()
