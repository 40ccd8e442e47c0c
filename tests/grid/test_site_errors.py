"""Bad site YAML and bad series files: each message names the place and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from grid.domain import load_site, site_from_dict
from grid.errors import InputError, InputErrors
from grid.series import read_series_csv

BASE = {"site": {"id": "t"}, "connections": [{"id": "T1", "rated_kva": 400}]}


def messages(raw: dict) -> str:  # type: ignore[type-arg]
    with pytest.raises(InputErrors) as info:
        site_from_dict(raw)
    return str(info.value)


def bat(i: int, **kw: object) -> dict[str, object]:
    return {"id": f"b{i}", "connection": "T1", "capacity_kwh": 10, "charge_kw": 5, "discharge_kw": 5, **kw}


def session(i: int, **kw: object) -> dict[str, object]:
    return {
        "id": f"s{i}",
        "charger": "wb",
        "arrival": "2026-01-14T17:00:00+01:00",
        "departure": "2026-01-15T07:00:00+01:00",
        "energy_needed_kwh": 20,
        **kw,
    }


def test_negative_capacity_names_path_and_value() -> None:
    raw = {**BASE, "batteries": [bat(0), bat(1), bat(2), bat(3, capacity_kwh=-5)]}
    assert "batteries[3].capacity_kwh: must be >= 0, got -5" in messages(raw)


def test_departure_before_arrival() -> None:
    sessions = [session(i) for i in range(12)] + [session(12, departure="2026-01-14T16:00:00+01:00")]
    raw = {**BASE, "ev_chargers": [{"id": "wb", "connection": "T1", "max_kw": 11}], "ev_sessions": sessions}
    assert "ev_sessions[12]: departure before arrival" in messages(raw)


def test_offsetless_session_time_is_refused() -> None:
    raw = {
        **BASE,
        "ev_chargers": [{"id": "wb", "connection": "T1", "max_kw": 11}],
        "ev_sessions": [session(0, arrival="2026-01-14T17:00:00")],
    }
    assert "ev_sessions[0].arrival: must include a UTC offset" in messages(raw)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"households": [{"id": "h1", "meter_id": "m", "annual_kwh": 3000, "connection": "T9"}]},
            "households[0].connection: unknown connection point, got 'T9'",
        ),
        (
            {"households": [{"id": "h1", "meter_id": "m", "annual_kwh": 3000, "connection": "T1", "colour": "red"}]},
            "households[0].colour: is not a known field, got 'red'",
        ),
        (
            {
                "households": [{"id": "x", "meter_id": "m", "annual_kwh": 3000, "connection": "T1"}],
                "pv_arrays": [{"id": "x", "connection": "T1", "kwp": 5}],
            },
            "pv_arrays[0].id: duplicate id (also at households[0].id), got 'x'",
        ),
        (
            {"batteries": [bat(0, initial_soc=0.01, soc_min=0.1)]},
            "batteries[0].initial_soc: must lie in [soc_min, soc_max] = [0.1, 1.0], got 0.01",
        ),
        ({"batteries": [bat(0, initial_soc=1.5)]}, "batteries[0].initial_soc: must be <= 1, got 1.5"),
        (
            {
                "connections": [
                    {
                        "id": "T1",
                        "rated_kva": 400,
                        "feeders": [{"id": "F1", "import_limit_kw": -1, "export_limit_kw": 10}],
                    }
                ]
            },
            "connections[0].feeders[0].import_limit_kw: must be >= 0, got -1",
        ),
        ({"site": {"id": "t", "timezone": "Mars/Olympus"}}, "site.timezone: unknown time zone 'Mars/Olympus'"),
        (
            {"heat_pumps": [{"id": "hp", "connection": "T1", "electric_kw": 5, "feeder": "F7"}]},
            "heat_pumps[0].feeder: not a feeder of connection T1, got 'F7'",
        ),
        ({"connections": []}, "connections: must not be empty"),
        (
            {"tariff": {"grid_fee_windows": [{"start": "25:00", "end": "20:00", "fee_eur_per_kwh": 0.1}]}},
            "tariff.grid_fee_windows[0].start:",
        ),
    ],
)
def test_bad_site_fields(patch: dict, expected: str) -> None:  # type: ignore[type-arg]
    assert expected in messages({**BASE, **patch})


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("site:\n  id: t\nconnections: [\n  - id: T1\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_site(path)
    assert f"{path}:" in str(info.value) and "not valid YAML" in str(info.value)


def test_missing_site_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read site file"):
        load_site(tmp_path / "nope.yaml")


def csv_errors(tmp_path: Path, text: str, name: str = "prices.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises((InputError, InputErrors)) as info:
        read_series_csv(path, "Europe/Berlin", 15, ["price_eur_per_kwh"])
    return str(info.value)


def local_rows(start: str, n: int) -> list[str]:
    import pandas as pd

    idx = pd.date_range(start, periods=n, freq="15min")
    return [f"{t:%Y-%m-%dT%H:%M},0.3" for t in idx]


def test_nonexistent_time_on_line_40(tmp_path: Path) -> None:
    rows = local_rows("2026-03-28 17:00", 60)  # line 2 = 17:00, line 40 = 02:30 next day
    msg = csv_errors(tmp_path, "timestamp,price_eur_per_kwh\n" + "\n".join(rows) + "\n")
    assert "prices.csv line 40: timestamp 2026-03-29T02:30 does not exist in Europe/Berlin" in msg


def test_ambiguous_local_time_in_series(tmp_path: Path) -> None:
    msg = csv_errors(tmp_path, "timestamp,price_eur_per_kwh\n2026-10-25T02:15,0.3\n")
    assert "prices.csv line 2: timestamp 2026-10-25T02:15 is ambiguous in Europe/Berlin" in msg


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "2026-01-14T00:00:00+00:00,0.3\n2026-01-14T00:15:00+00:00,abc\n",
            "prices.csv line 3 column price_eur_per_kwh: not a finite number, got 'abc'",
        ),
        (
            "2026-01-14T00:00:00+00:00,0.3\n2026-01-14T00:15:00+00:00,nan\n",
            "prices.csv line 3 column price_eur_per_kwh: not a finite number",
        ),
        ("2026-01-14T00:00:00+00:00,0.3\n2026-01-14T00:00:00+00:00,0.3\n", "prices.csv line 3: duplicate timestamp"),
        (
            "2026-01-14T00:15:00+00:00,0.3\n2026-01-14T00:00:00+00:00,0.3\n",
            "prices.csv line 3: timestamp goes backwards",
        ),
        (
            "2026-01-14T00:00:00+00:00,0.3\n2026-01-14T01:00:00+00:00,0.3\n",
            "prices.csv line 3: gap: 3 interval(s) missing after 2026-01-14T00:00:00+00:00",
        ),
        ("2026-01-14T00:07:00+00:00,0.3\n", "prices.csv line 2: not on the 15-minute grid"),
        ("yesterday,0.3\n", "prices.csv line 2: timestamp is not ISO 8601, got 'yesterday'"),
    ],
)
def test_bad_series_rows(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in csv_errors(tmp_path, "timestamp,price_eur_per_kwh\n" + body)


def test_missing_column(tmp_path: Path) -> None:
    assert "prices.csv line 1: missing column(s) price_eur_per_kwh" in csv_errors(
        tmp_path, "timestamp,price\n2026-01-14T00:00:00+00:00,1\n"
    )


def test_unquoted_yaml_time_is_refused(tmp_path: Path) -> None:
    # PyYAML reads 17:00 as the base-60 integer 1020; it must not become 00:17 silently.
    path = tmp_path / "site.yaml"
    path.write_text(
        "site: {id: t}\nconnections: [{id: T1, rated_kva: 400}]\n"
        "tariff:\n  grid_fee_windows: [{start: 17:00, end: '20:00', fee_eur_per_kwh: 0.1}]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputErrors, match=r"tariff.grid_fee_windows\[0\].start: must be a quoted local time"):
        load_site(path)


def test_overlapping_sessions_on_one_charger() -> None:
    raw = {
        **BASE,
        "ev_chargers": [{"id": "wb", "connection": "T1", "max_kw": 11}],
        "ev_sessions": [
            session(0),
            session(1, arrival="2026-01-15T06:00:00+01:00", departure="2026-01-15T09:00:00+01:00"),
        ],
    }
    assert "ev_sessions[1].arrival: overlaps session s0 on charger wb" in messages(raw)


def test_inputs_built_in_code_are_checked_against_the_site() -> None:
    import numpy as np
    import pandas as pd

    from grid.series import SiteInputs
    from grid.timeindex import horizon_index

    site = site_from_dict(
        {
            **BASE,
            "households": [
                {"id": f"h{i}", "meter_id": f"m{i}", "annual_kwh": 3000, "connection": "T1"} for i in range(2)
            ],
        }
    )
    idx = horizon_index(pd.Timestamp("2026-01-14T00:00:00+00:00"), 1)
    good = SiteInputs(
        base_load_kw=pd.DataFrame({"h1": [2.0] * 4, "h0": [1.0] * 4}, index=idx),  # other column order
        pv_kw_per_kwp=pd.DataFrame(index=idx),
        heat_demand_kw=pd.DataFrame(index=idx),
        temp_degc=pd.Series(5.0, index=idx),
    )
    assert list(good.for_site(site, idx).base_load_kw.columns) == ["h0", "h1"]
    missing = SiteInputs(good.base_load_kw[["h1"]], good.pv_kw_per_kwp, good.heat_demand_kw, good.temp_degc)
    with pytest.raises(InputErrors, match=r"inputs.base_load_kw: has no column for 1 asset\(s\): h0"):
        missing.for_site(site, idx)
    nan = good.base_load_kw.copy()
    nan.iloc[2, 0] = np.nan
    bad = SiteInputs(nan, good.pv_kw_per_kwp, good.heat_demand_kw, good.temp_degc)
    with pytest.raises(
        InputErrors, match=r"inputs.base_load_kw\[h1\] at 2026-01-14T00:30:00\+00:00: must be a finite number"
    ):
        bad.for_site(site, idx)
