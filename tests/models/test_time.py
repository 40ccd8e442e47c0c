"""Plans follow UTC intervals; local days in Europe/Berlin have 92, 96 or 100 quarter-hours."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from grid.series import SiteInputs
from grid.timeindex import local_day_index
from models.solve import plan_site
from models.tables import grid_fee
from tests.models.sites import household, make_site


def day_plan(day: dt.date):  # type: ignore[no-untyped-def]
    site = make_site(
        site={"id": "t", "resolution_min": 15},
        households=[household()],
        tariff={
            "import_price_eur_per_kwh": 0.3,
            "grid_fee_windows": [{"start": "17:00", "end": "20:00", "fee_eur_per_kwh": 0.1}],
        },
    )
    # inputs cover the local day with a day of margin on both sides
    idx = pd.date_range(pd.Timestamp(day, tz="UTC") - pd.Timedelta(days=1), periods=96 * 3, freq="15min")
    inputs = SiteInputs(
        base_load_kw=pd.DataFrame({"h1": 1.0}, index=idx),
        pv_kw_per_kwp=pd.DataFrame(index=idx),
        heat_demand_kw=pd.DataFrame(index=idx),
        temp_degc=pd.Series(5.0, index=idx),
    )
    return site, plan_site(site, inputs, local_day_index(day, "Europe/Berlin", 15))


@pytest.mark.parametrize(
    ("day", "n"), [(dt.date(2026, 10, 25), 100), (dt.date(2026, 3, 29), 92), (dt.date(2026, 1, 14), 96)]
)
def test_local_day_plans_have_the_right_number_of_intervals(day: dt.date, n: int) -> None:
    _, plan = day_plan(day)
    data = plan.to_dict()
    assert len(data["intervals"]) == n
    stamps = pd.DatetimeIndex(data["intervals"])
    assert (np.diff(stamps.asi8) == np.diff(stamps.asi8)[0]).all()  # contiguous in UTC
    assert stamps[0].tz_convert("Europe/Berlin").hour == 0
    assert pd.Timestamp(data["end"]).tz_convert("Europe/Berlin").hour == 0
    assert len(data["connections"]["T1"]["import_kw"]) == n


@pytest.mark.parametrize(
    ("day", "first_utc_hour"), [(dt.date(2026, 1, 14), 16), (dt.date(2026, 7, 1), 15), (dt.date(2026, 10, 25), 16)]
)
def test_time_of_day_grid_fee_follows_local_time(day: dt.date, first_utc_hour: int) -> None:
    site, _ = day_plan(dt.date(2026, 1, 14))
    idx = local_day_index(day)
    fee = grid_fee(site, idx)
    inside = idx[fee == 0.1]
    assert len(inside) == 12  # 17:00-20:00 local = 3 h
    assert inside[0].hour == first_utc_hour
