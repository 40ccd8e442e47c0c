"""Cumulative registers (1-0:1.8.0, 1-0:2.8.0) -> interval energy, with resets and gaps flagged.

Convention: a register reading R(t) is the energy counted up to the instant t. Two consecutive
readings t_prev < t give the interval [t_prev, t) the energy R(t) - R(t_prev) kWh and the mean
power (R(t) - R(t_prev)) / (t - t_prev) kW; the interval value is stamped with its *start* t_prev,
like every value in the store (a value stamped t covers [t, t + resolution)).

* A decrease R(t) < R(t_prev) is a reset or a rollover: the interval [t_prev, t) gets no value
  (never a negative energy), a ``reset`` flag is written, and a new segment starts at t.
* Readings further apart than one resolution step leave a ``gap``: flagged with the register
  advance over it; with ``interpolate`` that advance is spread evenly over the missing intervals
  as ``estimated`` values (never silently).
* An interval whose mean power exceeds the sensor's limit is not stored: ``implausible`` flag.

So, per segment, the interval energies add up to the register advance, except over flagged gaps
left empty and flagged implausible intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grid.store.schema import QUALITY_CODES, Quality

INTERVAL_COLUMNS = ["sensor_id", "ts_s", "value", "quality"]
FLAG_COLUMNS = ["sensor_id", "start_s", "end_s", "kind", "energy_kwh", "detail"]
MEASURED = QUALITY_CODES[Quality.MEASURED]
ESTIMATED = QUALITY_CODES[Quality.ESTIMATED]


def difference(
    series: pd.DataFrame, resolution_s: int, limits_kw: pd.Series, interpolate: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interval energies and flags from register readings.

    Parameters
    ----------
    series : DataFrame
        sensor_id, ts_s (UTC epoch seconds, on the grid), value (register, kWh); one row per key.
    resolution_s : int
        Interval length in seconds.
    limits_kw : Series
        Plausibility limit of the mean power (kW) per sensor id; NaN or absent: no limit.
    interpolate : bool
        Spread the advance over a gap as estimated values.

    Returns
    -------
    intervals : DataFrame
        sensor_id, ts_s (interval start), value (kWh in the interval), quality (code).
    flags : DataFrame
        sensor_id, start_s, end_s, kind (gap/reset/implausible), energy_kwh, detail.
    """
    s = series.sort_values(["sensor_id", "ts_s"], kind="stable")
    sid = s["sensor_id"].to_numpy(dtype=np.int64)
    ts = s["ts_s"].to_numpy(dtype=np.int64)
    val = s["value"].to_numpy(dtype=float)
    if len(s) < 2:
        return _empty_intervals(), _empty_flags()
    same = sid[1:] == sid[:-1]
    t0, t1, s_id = ts[:-1][same], ts[1:][same], sid[1:][same]
    v0, v1 = val[:-1][same], val[1:][same]
    dt_s = t1 - t0
    advance = v1 - v0
    steps = dt_s // resolution_s
    reset = advance < 0
    gap = ~reset & (steps > 1)
    normal = ~reset & (steps == 1)

    flags = [
        _flags(
            s_id[reset],
            t0[reset],
            t1[reset],
            "reset",
            None,
            [
                f"register fell from {a:.3f} to {b:.3f} kWh (reset or rollover); new segment"
                for a, b in zip(v0[reset], v1[reset], strict=True)
            ],
        ),
        _flags(
            s_id[gap],
            t0[gap],
            t1[gap],
            "gap",
            advance[gap],
            [
                f"{int(k) - 1} missing reading(s); {e:.3f} kWh over {int(k)} intervals"
                + (", interpolated as estimated" if interpolate else ", not interpolated")
                for k, e in zip(steps[gap], advance[gap], strict=True)
            ],
        ),
    ]
    parts = [
        pd.DataFrame(
            {
                "sensor_id": s_id[normal],
                "ts_s": t0[normal],
                "value": advance[normal],
                "quality": MEASURED,
            }
        )
    ]
    if interpolate and gap.any():
        k = steps[gap]
        rep = np.repeat(np.arange(len(k)), k)
        offset = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
        parts.append(
            pd.DataFrame(
                {
                    "sensor_id": s_id[gap][rep],
                    "ts_s": t0[gap][rep] + offset * resolution_s,
                    "value": (advance[gap] / k)[rep],
                    "quality": ESTIMATED,
                }
            )
        )
    intervals = pd.concat(parts, ignore_index=True)
    limit = limits_kw.reindex(intervals["sensor_id"].to_numpy()).to_numpy(dtype=float)
    power_kw = intervals["value"].to_numpy(dtype=float) * 3600.0 / resolution_s
    with np.errstate(invalid="ignore"):
        too_high = ~np.isnan(limit) & (power_kw > limit)
    if too_high.any():
        bad = intervals[too_high]
        flags.append(
            _flags(
                bad["sensor_id"].to_numpy(),
                bad["ts_s"].to_numpy(),
                bad["ts_s"].to_numpy() + resolution_s,
                "implausible",
                bad["value"].to_numpy(),
                [
                    f"mean power {p:.3f} kW exceeds the limit {lim:g} kW; interval not stored"
                    for p, lim in zip(power_kw[too_high], limit[too_high], strict=True)
                ],
            )
        )
        intervals = intervals[~too_high]
    return intervals.sort_values(["sensor_id", "ts_s"], ignore_index=True), pd.concat(flags, ignore_index=True)


def _flags(
    sid: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    kind: str,
    energy: np.ndarray | None,
    detail: list[str],
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": sid.astype(np.int64),
            "start_s": start.astype(np.int64),
            "end_s": end.astype(np.int64),
            "kind": kind,
            "energy_kwh": energy if energy is not None else np.full(len(sid), np.nan),
            "detail": pd.Series(detail, dtype=object),
        },
        columns=FLAG_COLUMNS,
    )


def _empty_intervals() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c != "value" else "float64") for c in INTERVAL_COLUMNS})


def _empty_flags() -> pd.DataFrame:
    return _flags(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), "gap", None, [])


def isolated_spikes(
    candidates: pd.DataFrame, context: pd.DataFrame, limits_kw: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Which register readings among `candidates` are isolated spikes.

    The series of each sensor is `context` (stored readings) with the `candidates` (sensor_id,
    ts_s, value in kWh; they replace a stored reading at the same key). A step between two
    readings is *impossible* when the register falls or rises faster than the sensor's limit
    (mean power = advance / time). A candidate is a spike when both the step into it and the step
    out of it are impossible while the step over it, from the reading before to the one after, is
    possible: e.g. 100, 5100, 101 kWh a quarter hour apart with a 50 kW limit (+20,000 kW, then
    -19,996 kW; over it +4 kW). Stored as measured it would read as an implausible interval and
    then a register reset; rejected, it leaves a gap that is flagged.

    A reading with no neighbour on one side is never a spike (a meter exchanged for one with a
    higher count goes on from its new value; every reading after it would be refused otherwise).

    Returns a boolean mask over `candidates` and, per candidate, the reason ('' when no spike).
    """
    cols = ["sensor_id", "ts_s", "value"]
    series = pd.concat(
        [context[cols].assign(c=-1), candidates[cols].assign(c=np.arange(len(candidates)))], ignore_index=True
    )
    series = series.drop_duplicates(["sensor_id", "ts_s"], keep="last").sort_values(["sensor_id", "ts_s"])
    sid = series["sensor_id"].to_numpy(dtype=np.int64)
    ts = series["ts_s"].to_numpy(dtype=np.int64)
    val = series["value"].to_numpy(dtype=float)
    cand = series["c"].to_numpy(dtype=np.int64)
    mask = np.zeros(len(candidates), dtype=bool)
    reasons = np.full(len(candidates), "", dtype=object)
    inner = np.zeros(len(series), dtype=bool)
    inner[1:-1] = (sid[1:-1] == sid[:-2]) & (sid[1:-1] == sid[2:])
    k = np.flatnonzero(inner & (cand >= 0))
    if len(k) == 0:
        return mask, reasons
    limit = limits_kw.reindex(sid[k]).to_numpy(dtype=float)

    def step(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        power_kw = (val[j] - val[i]) * 3600.0 / (ts[j] - ts[i])
        with np.errstate(invalid="ignore"):
            return (power_kw < 0) | (power_kw > limit), power_kw

    bad_in, p_in = step(k - 1, k)
    bad_out, p_out = step(k, k + 1)
    bad_over, _ = step(k - 1, k + 1)
    spike = bad_in & bad_out & ~bad_over
    for j in np.flatnonzero(spike).tolist():
        reasons[cand[k[j]]] = (
            f"implausible register reading: {val[k[j]]:.3f} kWh means a mean power of {p_in[j]:.1f} kW "
            f"since the reading before and {p_out[j]:.1f} kW until the one after (the meter's limit is "
            f"{limit[j]:g} kW), while those two agree; a spike: not stored, the gap is flagged"
        )
    mask[cand[k[spike]]] = True
    return mask, reasons
