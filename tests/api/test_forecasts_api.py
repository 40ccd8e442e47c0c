"""The forecasts endpoints against the real app (SQLite and PostgreSQL): JSON and CSV, quantile
selection, the forecast as known at an instant, bad parameters (422 with loc), 404s and auth."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks
from sqlalchemy.engine import Engine

from grid.store.forecasts import store_forecast

URL = "/api/v1/sites/demo/forecasts"
DAY = pd.Timestamp("2026-01-14T00:00:00Z")
#: run A (issued the day before) covers the whole day; run B (issued at 00:00) from 06:00 to 18:00
ISSUED_A = pd.Timestamp("2026-01-13T12:00:00Z")
ISSUED_B = pd.Timestamp("2026-01-14T00:00:00Z")
B_OFFSET_KW = 10.0
CHECKS = [  # as in test_openapi_fuzz
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


def _quantiles(start: pd.Timestamp, hours: float, offset_kw: float = 0.0) -> pd.DataFrame:
    """Median 1 kW + 0.01 kW per quarter-hour since DAY (+ offset); band median -/+ 0.5 kW."""
    index = pd.date_range(start, periods=int(hours * 4), freq="15min")
    median = 1.0 + offset_kw + 0.01 * ((index - DAY) / pd.Timedelta(minutes=15)).to_numpy(dtype=float)
    return pd.DataFrame({0.1: median - 0.5, 0.5: median, 0.9: median + 0.5}, index=index)


@pytest.fixture
def stored(app: FastAPI, store: Engine) -> Engine:
    """Two runs of the site load, one PV run and a heat pump stored in two quantities."""
    store_forecast(store, "demo", "site", _quantiles(DAY, 24), ISSUED_A, "standard_profile")
    store_forecast(store, "demo", "site", _quantiles(DAY + pd.Timedelta(hours=6), 12, B_OFFSET_KW), ISSUED_B, "ridge")
    pv = pd.DataFrame(
        {0.1: [0.0, 0.1], 0.5: [0.05, 0.2], 0.9: [0.1, 0.3]}, index=pd.date_range(DAY, periods=2, freq="15min")
    )
    store_forecast(store, "demo", "pv:pv1", pv, ISSUED_A, "pvlib_clearsky", quantity="kw_per_kwp")
    heat = pd.DataFrame({0.5: [2.0]}, index=[DAY])
    store_forecast(store, "demo", "heat:hp1", heat, ISSUED_A, "heat_model", quantity="heat_kw")
    store_forecast(store, "demo", "heat:hp1", heat, ISSUED_A, "heat_model", quantity="power_kw")
    return store


def _get(client: TestClient, token: str, **params: Any) -> Any:
    return client.get(URL, params=params, headers={"X-API-Key": token})


def test_json_picks_the_latest_run_per_interval(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    r = _get(client, key["manager"], start="2026-01-14T01:00:00+01:00", end="2026-01-14T12:00:00Z")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["site"], body["target"], body["quantity"], body["unit"]) == ("demo", "site", "power_kw", "kW")
    assert body["resolution_min"] == 15 and body["as_of"] is None
    assert body["start"] == "2026-01-14T00:00:00+00:00" and body["end"] == "2026-01-14T12:00:00+00:00"
    assert body["quantiles"] == [0.1, 0.5, 0.9]
    assert body["runs"] == [
        {"issued_at": "2026-01-13T12:00:00+00:00", "model": "standard_profile", "intervals": 24},
        {"issued_at": "2026-01-14T00:00:00+00:00", "model": "ridge", "intervals": 24},
    ]
    intervals = body["intervals"]
    assert len(intervals) == 48 and all(iv["start"].endswith("+00:00") for iv in intervals)
    # 05:45 still from run A (step 23), 06:00 from run B (step 24, + 10 kW)
    assert intervals[23]["run"] == 0 and intervals[23]["values"] == pytest.approx([0.73, 1.23, 1.73])
    assert intervals[24]["run"] == 1 and intervals[24]["values"] == pytest.approx([10.74, 11.24, 11.74])
    assert intervals[24]["start"] == "2026-01-14T06:00:00+00:00"


def test_as_of_reads_the_forecast_as_known_then(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    period = {"start": "2026-01-14T06:00:00Z", "end": "2026-01-14T07:00:00Z"}
    before_b = _get(client, key["admin"], **period, as_of="2026-01-13T20:00:00-04:00").json()  # 2026-01-14T00:00Z
    assert before_b["as_of"] == "2026-01-14T00:00:00+00:00"
    assert [run["model"] for run in before_b["runs"]] == ["ridge"]  # issued at or before as_of
    assert before_b["intervals"][0]["values"][1] == pytest.approx(11.24)
    earlier = _get(client, key["admin"], **period, as_of="2026-01-13T23:59:00Z").json()
    assert [run["model"] for run in earlier["runs"]] == ["standard_profile"]
    assert earlier["intervals"][0]["values"][1] == pytest.approx(1.24)
    r = _get(client, key["admin"], **period, as_of="2026-01-13T11:00:00Z")  # before any run
    assert r.status_code == 404 and "as known at 2026-01-13T11:00:00+00:00" in r.json()["detail"]


def test_quantile_selection(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    period = {"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T00:30:00Z"}
    median = _get(client, key["manager"], **period, quantiles="0.5").json()
    assert median["quantiles"] == [0.5] and [iv["values"] for iv in median["intervals"]] == [[1.0], [1.01]]
    outer = _get(client, key["manager"], **period, quantiles=" 0.9,0.1 ,0.1").json()
    assert outer["quantiles"] == [0.1, 0.9] and outer["intervals"][0]["values"] == pytest.approx([0.5, 1.5])
    missing = _get(client, key["manager"], **period, quantiles="0.3,0.5")
    assert missing.status_code == 404 and "[0.3]" in missing.json()["detail"] and "0.9" in missing.json()["detail"]


def test_csv_matches_json(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    period = {"start": "2026-01-14T05:30:00Z", "end": "2026-01-14T06:30:00Z", "quantiles": "0.1,0.9"}
    as_json = _get(client, key["manager"], **period).json()
    by_param = _get(client, key["manager"], **period, format="csv")
    by_accept = client.get(URL, params=period, headers={"X-API-Key": key["manager"], "Accept": "text/csv"})
    assert by_param.status_code == by_accept.status_code == 200
    assert by_param.headers["content-type"].startswith("text/csv") and by_param.text == by_accept.text
    rows = list(csv.reader(io.StringIO(by_param.text)))
    assert rows[0] == ["start", "issued_at", "model", "power_kw_q0.1", "power_kw_q0.9"]
    assert [row[0] for row in rows[1:]] == [iv["start"] for iv in as_json["intervals"]]
    assert rows[1][1:3] == ["2026-01-13T12:00:00+00:00", "standard_profile"] and rows[3][2] == "ridge"
    got = np.array([[float(v) for v in row[3:]] for row in rows[1:]])
    assert got == pytest.approx(np.array([iv["values"] for iv in as_json["intervals"]]))
    # format= wins over Accept
    assert _get(client, key["manager"], **period, format="json").headers["content-type"] == "application/json"


def test_uncovered_intervals_are_null_and_the_grid_is_snapped(
    stored: Engine, client: TestClient, key: dict[str, str]
) -> None:
    body = _get(client, key["manager"], start="2026-01-14T23:37:00Z", end="2026-01-15T00:20:00Z").json()
    assert [iv["start"][11:16] for iv in body["intervals"]] == ["23:30", "23:45", "00:00", "00:15"]
    assert [iv["run"] for iv in body["intervals"]] == [0, 0, None, None]
    assert body["intervals"][3]["values"] == [None, None, None]
    text = _get(client, key["manager"], start="2026-01-14T23:45:00Z", end="2026-01-15T00:15:00Z", format="csv").text
    assert text.splitlines()[2] == "2026-01-15T00:00:00+00:00,,,,,"


def test_other_targets_and_quantities(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    period = {"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T00:30:00Z"}
    pv = _get(client, key["manager"], **period, target="pv:pv1").json()
    assert (pv["quantity"], pv["unit"]) == ("kw_per_kwp", "kW/kWp")
    assert pv["intervals"][1]["values"] == pytest.approx([0.1, 0.2, 0.3])
    ambiguous = _get(client, key["manager"], **period, target="heat:hp1")
    assert ambiguous.status_code == 422 and ambiguous.json()["detail"][0]["loc"] == ["query", "quantity"]
    heat = _get(client, key["manager"], **period, target="heat:hp1", quantity="heat_kw").json()
    assert heat["unit"] == "kW (thermal)" and heat["intervals"][0]["values"] == [2.0]
    unknown = _get(client, key["manager"], **period, target="pv:nosuch")
    assert unknown.status_code == 404 and "pv:pv1" in unknown.json()["detail"]  # names what is stored
    later = _get(client, key["manager"], start="2026-02-01T00:00:00Z", end="2026-02-02T00:00:00Z")
    assert later.status_code == 404 and "no forecast of 'site' (power_kw)" in later.json()["detail"]


def test_model_filter(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    store_forecast(
        stored, "demo", "site", _quantiles(DAY + pd.Timedelta(hours=6), 1, 5.0), ISSUED_B, "other"
    )  # same time as "ridge"
    period = {"start": "2026-01-14T06:00:00Z", "end": "2026-01-14T07:00:00Z"}
    clash = _get(client, key["manager"], **period)
    assert clash.status_code == 422 and clash.json()["detail"][0]["loc"] == ["query", "model"]
    ridge = _get(client, key["manager"], **period, model="ridge").json()
    assert {run["model"] for run in ridge["runs"]} == {"ridge"}


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"start": None}, "start"),  # missing
        ({"start": "2026-01-14T00:00:00", "end": "2026-01-14T01:00:00Z"}, "start"),  # no offset
        ({"start": "2026-01-14", "end": "2026-01-15T00:00:00Z"}, "start"),  # a date has no offset
        ({"start": "2026-01-14T00:00:00Z", "end": "tomorrow"}, "end"),
        ({"start": "2026-01-14T01:00:00Z", "end": "2026-01-14T01:00:00+01:00"}, "end"),  # end before start
        ({"start": "2000-01-01T00:00:00Z", "end": "2026-01-14T00:00:00Z"}, "end"),  # span too long
        ({"start": "2026-02-30T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "start"),  # no such day (years 1..9999: 404)
        ({"quantiles": "0.1,median"}, "quantiles"),
        ({"quantiles": "0.5,1.5"}, "quantiles"),
        ({"quantiles": "nan"}, "quantiles"),
        ({"as_of": "2026-01-14T00:00:00"}, "as_of"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_422_with_loc(
    stored: Engine, client: TestClient, key: dict[str, str], params: dict[str, str | None], loc: str
) -> None:
    query = {"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z", **params}
    r = _get(client, key["manager"], **{k: v for k, v in query.items() if v is not None})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", loc]


def test_targets_listing(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    r = client.get(URL + "/targets", headers={"X-API-Key": key["manager"]})
    assert r.status_code == 200
    body = r.json()
    assert body["site"] == "demo" and body["resolution_min"] == 15
    targets = {(t["target"], t["quantity"]): t for t in body["targets"]}
    assert set(targets) == {
        ("site", "power_kw"),
        ("pv:pv1", "kw_per_kwp"),
        ("heat:hp1", "heat_kw"),
        ("heat:hp1", "power_kw"),
    }
    site = targets["site", "power_kw"]
    assert site["start"] == "2026-01-14T00:00:00+00:00" and site["end"] == "2026-01-15T00:00:00+00:00"
    assert site["first_issued_at"] == "2026-01-13T12:00:00+00:00"
    assert site["last_issued_at"] == "2026-01-14T00:00:00+00:00"
    assert site["runs"] == 2 and site["models"] == ["ridge", "standard_profile"]
    assert site["quantiles"] == [0.1, 0.5, 0.9] and site["unit"] == "kW"


def test_targets_listing_empty(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    r = client.get(URL + "/targets", headers={"X-API-Key": key["admin"]})
    assert r.status_code == 200 and r.json()["targets"] == []
    nothing = _get(client, key["admin"], start="2026-01-14T00:00:00Z", end="2026-01-14T01:00:00Z")
    assert nothing.status_code == 404 and "no forecasts stored for target 'site'" in nothing.json()["detail"]


def test_auth(stored: Engine, client: TestClient, key: dict[str, str]) -> None:
    period = {"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z"}
    assert client.get(URL, params=period).status_code == 401
    assert _get(client, "qk_0000_wrong", **period).status_code == 401
    for role in ("operator", "planner", "ingest"):
        assert _get(client, key[role], **period).status_code == 403
    assert _get(client, key["admin"], **period).status_code == 200
    other = client.get("/api/v1/sites/north/forecasts", params=period, headers={"X-API-Key": key["manager"]})
    assert other.status_code == 403 and "not scoped" in other.json()["detail"]
    listing = client.get("/api/v1/sites/north/forecasts/targets", headers={"X-API-Key": key["admin"]})
    assert listing.status_code == 403
    assert client.get(URL + "/targets", headers={"X-API-Key": key["operator"]}).status_code == 403


def test_forecasts_conform_to_their_schema(stored: Engine, app: FastAPI, key: dict[str, str]) -> None:
    """Schemathesis over the three forecast operations at site ``demo`` with forecasts stored: each
    generated case as is, and again with a valid period (so that 200 answers are checked too)."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in api.get_all_operations() if "/forecasts" in r.ok().label]  # type: ignore[union-attr]
    assert len(operations) == 3
    headers = {"X-API-Key": key["admin"]}
    statuses: list[int] = []
    for operation in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.path_parameters = {"site": "demo"}
            statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)
            if case.query is not None:
                case.query = {**case.query, "start": "2026-01-14T05:00:00+01:00", "end": "2026-01-14T08:00:00Z"}
                statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

        run()
    assert 200 in statuses and 422 in statuses and 500 not in statuses
