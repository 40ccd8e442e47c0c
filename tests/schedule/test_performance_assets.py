"""The assets' realised KPIs in one numpy pass (``performance._assets_kpis``) equal, to the last
digit, the per-asset pandas figures they replaced (the reference below is that code), on rows with
missing set-points, missing measurements and dimmings, in time order with the assets interleaved."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from grid.schedule.performance import DIMMED_EPS_KW, _assets_kpis, _num, _tolerance_kw


def _kwh(power_kw: pd.Series, dt_h: float) -> float | None:
    return _num(float(power_kw.sum() * dt_h)) if power_kw.notna().any() else None


def _reference(rows: pd.DataFrame, n: int, kind: str, rating_kw: float | None, dt_h: float) -> dict[str, Any]:
    tol = _tolerance_kw(rating_kw)
    has_setpoint = rows["setpoint_kw"].notna()
    both = has_setpoint & rows["measured_kw"].notna()
    deviation = (rows["measured_kw"] - rows["setpoint_kw"]).abs()[both]
    followed = int((deviation <= tol + 1e-9).sum())
    dimmed = rows["dimmed_kw"].fillna(0.0)
    k = int(both.sum())
    return {
        "type": kind,
        "rating_kw": rating_kw,
        "tolerance_kw": _num(tol),
        "intervals": n,
        "setpoint_intervals": int(has_setpoint.sum()),
        "measured_intervals": k,
        "missing_intervals": int(has_setpoint.sum()) - k,
        "mean_abs_deviation_kw": _num(float(deviation.mean())) if k else None,
        "followed_intervals": followed,
        "followed_share": _num(followed / k) if k else None,
        "measured_kwh": _kwh(rows["measured_kw"], dt_h),
        "setpoint_kwh": _kwh(rows["setpoint_kw"], dt_h),
        "dimmed_intervals": int((dimmed > DIMMED_EPS_KW).sum()),
        "dimmed_kwh": _num(float(dimmed[dimmed > DIMMED_EPS_KW].sum() * dt_h)),
    }


def _frame(rng: np.random.Generator, assets: list[tuple[str, str]], steps: int) -> pd.DataFrame:
    stamps = pd.date_range("2026-01-15T00:00Z", periods=steps, freq="15min")
    rows = []
    for t in stamps:  # as stored: ordered by time, then entity
        for aid, kind in sorted(assets):
            setpoint = rng.normal(0.0, 3.0) if rng.random() > 0.2 else math.nan
            measured = (setpoint if not math.isnan(setpoint) else 0.0) + rng.normal(0.0, 0.3)
            rows.append(
                {
                    "ts": t,
                    "entity": aid,
                    "kind": kind,
                    "setpoint_kw": setpoint,
                    "measured_kw": measured if rng.random() > 0.3 else math.nan,
                    "dimmed_kw": rng.uniform(0.0, 2.0) if rng.random() > 0.8 else math.nan,
                }
            )
    return pd.DataFrame(rows)


def test_assets_kpis_equal_the_per_asset_figures() -> None:
    rng = np.random.default_rng(7)
    assets = [("bat2", "battery"), ("bat10", "battery"), ("hp1", "heat_pump"), ("ev1", "ev_charger"), ("x", "pv")]
    ratings: dict[str, float | None] = {"bat2": 5.0, "bat10": 3.4, "hp1": 9.0, "ev1": 11.0}  # x: unknown
    frame = _frame(rng, assets, 96)
    n, dt_h = 96, 0.25
    got = _assets_kpis(frame, n, ratings, dt_h)
    want = {
        str(aid): _reference(rows, n, str(kind), ratings.get(str(aid)), dt_h)
        for (aid, kind), rows in frame.groupby(["entity", "kind"], sort=True)
    }
    assert got == want
    assert list(got) == sorted(want)


def test_an_asset_without_any_measurement_or_setpoint() -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-15T00:00Z", periods=3, freq="15min"),
            "entity": "bat1",
            "kind": "battery",
            "setpoint_kw": math.nan,
            "measured_kw": math.nan,
            "dimmed_kw": math.nan,
        }
    )
    k = _assets_kpis(frame, 3, {"bat1": 5.0}, 0.25)["bat1"]
    assert k["measured_kwh"] is None and k["setpoint_kwh"] is None and k["followed_share"] is None
    assert k["setpoint_intervals"] == 0 and k["dimmed_kwh"] == 0.0
    assert _assets_kpis(frame.iloc[:0], 3, {}, 0.25) == {}
