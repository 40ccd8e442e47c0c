"""BDEW standard load profiles (demandlib) on a UTC index, in kW for a given annual energy.

demandlib's 2025 profiles (H25 households, P25 with PV, S25 with PV and battery, G25 commercial)
give kW for 1 GWh per year in local time with holidays as Sundays; here they are evaluated on the
local wall clock of each UTC interval, so DST days get 92 or 100 values, and scaled to
``annual_kwh``. The old H0 profile is served by H25 (its successor), which the caller notes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from demandlib import bdew

from grid.forecast.calendar import DEFAULT_SUBDIV, DEFAULT_TZ, holiday_calendar

#: demandlib's profiles are kW for this annual energy (kWh).
PROFILE_ANNUAL_KWH = 1e6
PROFILES = ("H25", "P25", "S25", "G25")
#: Profiles demandlib does not ship in the 2025 form, and the one used instead.
SUBSTITUTES = {"H0": "H25"}


def profile_name(profile: str) -> str:
    """The demandlib profile used for `profile` (H0 -> H25)."""
    return SUBSTITUTES.get(profile, profile)


@lru_cache(maxsize=32)
def _per_gwh(profile: str, start_ns: int, periods: int, tz: str, subdiv: str) -> np.ndarray:
    index = pd.date_range(pd.Timestamp(start_ns, unit="ns", tz="UTC"), periods=periods, freq="15min")
    local = index.tz_convert(tz)
    years = sorted(set(local.year))
    frame = getattr(bdew, profile)(local, holidays=holiday_calendar(years, subdiv))
    values = np.asarray(frame, dtype=float).copy()
    values.flags.writeable = False
    return values


def standard_profile_kw(
    index: pd.DatetimeIndex,
    profile: str = "H25",
    annual_kwh: float = PROFILE_ANNUAL_KWH,
    tz: str = DEFAULT_TZ,
    subdiv: str = DEFAULT_SUBDIV,
) -> pd.Series:
    """Mean power (kW) of the BDEW `profile` for `annual_kwh` kWh/a on the UTC quarter-hours of
    `index` (need not be contiguous)."""
    name = profile_name(profile)
    if name not in PROFILES:
        raise ValueError(f"unknown standard profile {profile!r}; use one of {', '.join(PROFILES)}")
    if len(index) == 0:
        return pd.Series([], index=index, dtype=float, name="power_kw")
    utc = pd.DatetimeIndex(index).tz_convert("UTC")
    start = utc.min()
    step = pd.Timedelta(minutes=15)
    periods = int((utc.max() - start) / step) + 1
    per_gwh = _per_gwh(name, int(start.as_unit("ns").value), periods, tz, subdiv)
    positions = ((utc - start) / step).to_numpy().astype(np.int64)
    return pd.Series(per_gwh[positions] * annual_kwh / PROFILE_ANNUAL_KWH, index=index, name="power_kw")
