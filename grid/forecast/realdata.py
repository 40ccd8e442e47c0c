"""Measured load series shipped in ``data/real/`` (sources, licences and cuts: its PROVENANCE.md).

Two sources, both cut to 13 winter weeks on the UTC quarter-hour grid:

* ``simbench:<profile>``: 53 SimBench profiles made from measured single connections (households
  ``H0-*`` and ``HS*``, small business ``G*``, agriculture ``L*``), per unit of their yearly peak;
* ``ihepc:<part>``: one household near Paris (UCI), kW: ``total`` = ``kitchen`` + ``laundry`` +
  ``heater_ac`` + ``rest`` exactly (a real meter hierarchy for reconciliation).

and one PV system with the irradiance at its site (:func:`real_pv`): NREL's SERF East, 15 weeks of
summer and autumn 2016, measured AC kW with NSRDB PSM3 satellite GHI and air temperature.

:func:`held_out_ids` lists the series kept out of every tuning decision (model choice, parameters):
all of ``ihepc`` and every fourth SimBench profile. Benchmarks and tests report on them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import pandas as pd

from grid.errors import InputError

REAL_DIR = Path(__file__).resolve().parents[2] / "data" / "real"
FILES = {"simbench": "simbench_load_2016.csv.gz", "ihepc": "ihepc_household_2008.csv.gz"}
PV_FILE = "serf_east_pv_2016.csv.gz"
#: NREL SERF East (PVDAQ system 50), Golden, Colorado: location and orientation as published with
#: the data (pvanalytics' examples); the kWp is nominal (the calibration's scale absorbs the rest).
SERF_EAST = {"latitude": 39.742, "longitude": -105.1727, "altitude_m": 1800.0}
SERF_EAST_ARRAY = {"id": "serf-east", "connection": "T1", "kwp": 6.0, "tilt_deg": 45.0, "azimuth_deg": 158.0}
IHEPC_PARTS = ("kitchen", "laundry", "heater_ac", "rest")
#: Every fourth SimBench profile (in file order) and the whole IHEPC household.
HELD_OUT_EVERY = 4

Split = Literal["tune", "held_out", "all"]


@lru_cache(maxsize=4)
def _read(source: str) -> pd.DataFrame:
    frame = pd.read_csv(REAL_DIR / FILES[source], index_col="timestamp")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True), name="timestamp")
    frame.columns = [f"{source}:{c}" for c in frame.columns]
    return frame


def read_source(source: Literal["simbench", "ihepc"]) -> pd.DataFrame:
    """All series of one source (UTC quarter-hour index, one column per series, NaN = missing)."""
    return _read(source).copy()


def held_out_ids() -> list[str]:
    """Series ids never used for tuning."""
    simbench = list(_read("simbench").columns)
    return [c for i, c in enumerate(simbench) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1] + list(
        _read("ihepc").columns
    )


HELD_OUT_NOTE = "held out: every 4th SimBench profile and the IHEPC household (not used for tuning)"


def real_meters(source: Literal["simbench", "ihepc"], split: Split = "all") -> pd.DataFrame:
    """The series of `source` in `split` (``tune``: not held out)."""
    frame = read_source(source)
    held = set(held_out_ids())
    if split == "all":
        return frame
    keep = [c for c in frame.columns if (c in held) == (split == "held_out")]
    return frame[keep]


def real_series(series_id: str) -> pd.Series:
    """One shipped series by id (``simbench:H0-A``, ``ihepc:total``)."""
    source = series_id.split(":", 1)[0]
    if source not in FILES or series_id not in _read(source).columns:
        known = ", ".join(f"{s}:..." for s in FILES)
        raise InputError("--real", f"no such series in data/real (ids look like {known})", series_id)
    return _read(source)[series_id].rename("power_kw")


def describe(series_id: str) -> str:
    """Where a shipped series comes from and whether it is held out, for reports."""
    source = series_id.split(":", 1)[0]
    origin = {
        "simbench": "SimBench 1.6.3 measured-data profile, p.u. of its peak (ODbL)",
        "ihepc": "UCI household, Sceaux, kW (CC BY 4.0)",
    }[source]
    held = "held out" if series_id in held_out_ids() else "tuning split"
    return f"real: {series_id}, {origin}, {held} (data/real/PROVENANCE.md)"


def real_pv() -> tuple[pd.Series, pd.DataFrame]:
    """SERF East: measured AC power (kW, >= 0: the inverter's night draw is not generation) and
    the site's weather (``ghi_w_per_m2``, ``temp_degc``), on a regular UTC quarter-hour grid
    (NaN where the source has no value)."""
    frame = pd.read_csv(REAL_DIR / PV_FILE, index_col="timestamp")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True), name="timestamp")
    frame = frame.asfreq("15min")
    return frame["pv_kw"].clip(lower=0.0).rename("pv_kw"), frame[["ghi_w_per_m2", "temp_degc"]]
