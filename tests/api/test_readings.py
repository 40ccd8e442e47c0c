"""Readings over the API: JSON bulk and CSV upload into the one ingestion path, per-row errors,
422 with locations for a fully invalid payload, and reading back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.kit import reading

URL = "/api/v1/sites/demo/readings"


def test_json_payload_partly_bad(client: TestClient, key: dict[str, str]) -> None:
    h = {"X-API-Key": key["ingest"]}
    payload = {
        "readings": [
            reading(ts="2026-01-14T00:00:00+00:00", value=100.0),
            reading(ts="2026-01-14T00:15:00+00:00", value=100.5),
            reading(ts="2026-01-14T00:30:00+00:00", value="lots"),
            {"meter_id": "MTR-H001", "ts": "2026-01-14T00:45:00+00:00", "value": 1, "unit": "kWh", "colour": "red"},
        ]
    }
    r = client.post(URL, json=payload, headers=h)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows_read"] == 4 and report["accepted"] == 2
    where = {x["where"]: x for x in report["rejected"]}
    assert set(where) == {"payload readings[2]", "payload readings[3]"}
    assert where["payload readings[3]"]["field"] == "colour"
    again = client.post(URL, json={"readings": payload["readings"][:2]}, headers=h).json()
    assert again["duplicates"] == 2  # idempotent: a re-sent batch changes nothing


def test_fully_invalid_payload_is_422_with_locations(client: TestClient, key: dict[str, str]) -> None:
    h = {"X-API-Key": key["ingest"]}
    bad = {"readings": [reading(meter="NOPE"), {"value": 1}, 7]}
    r = client.post(URL, json=bad, headers=h)
    assert r.status_code == 422
    locs = [tuple(d["loc"]) for d in r.json()["detail"]]
    assert sorted(loc[0] for loc in locs) == ["payload readings[0]", "payload readings[1]", "payload readings[2]"]
    assert all(d["msg"] for d in r.json()["detail"])
    shape = client.post(URL, json={"rows": []}, headers=h)  # not the payload shape at all
    assert shape.status_code == 422 and shape.json()["detail"][0]["loc"] == ["body", "readings"]


def test_csv_upload_with_bad_rows(client: TestClient, key: dict[str, str]) -> None:
    h = {"X-API-Key": key["ingest"]}
    text = (
        "meter_id,timestamp,obis,value,unit\n"
        "MTR-H002,2026-01-14T00:00:00+00:00,1-0:1.8.0,50.0,kWh\n"
        "MTR-H002,2026-01-14T00:15:00+00:00,1-0:1.8.0,50.4,kWh\n"
        "MTR-H002,2026-01-14T00:30:00+00:00,1-0:1.8.0,abc,kWh\n"
        "MTR-H002,2026-01-14T00:45:00+00:00,1-0:1.8.0\n"
        "MTR-H002,not-a-time,1-0:1.8.0,51.0,kWh\n"
    )
    r = client.post(f"{URL}/csv", files={"file": ("meters.csv", text, "text/csv")}, headers=h)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 2 and report["rows_read"] == 5
    assert sorted(x["line"] for x in report["rejected"]) == [4, 5, 6]
    bad = "meter_id,timestamp,obis,value,unit\nX,2026-01-14T00:00:00+00:00,1-0:1.8.0,1,kWh\n"
    r = client.post(f"{URL}/csv", files={"file": ("bad.csv", bad, "text/csv")}, headers=h)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0].startswith("bad.csv line 2")


def test_read_back(client: TestClient, key: dict[str, str]) -> None:
    rows = [reading(ts=f"2026-01-14T00:{m:02d}:00+00:00", value=100 + m / 15) for m in (0, 15, 30)]
    assert client.post(URL, json={"readings": rows}, headers={"X-API-Key": key["ingest"]}).status_code == 200
    r = client.get(
        URL,
        params={"sensor": "MTR-H001/1-0:1.8.0", "start": "2026-01-14T00:00:00+00:00", "end": "2026-01-14T01:00:00Z"},
        headers={"X-API-Key": key["manager"]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["intervals"]) == 4 and body["values"][0] is not None and body["values"][3] is None
    assert abs(body["values"][0] - 4.0) < 1e-9  # 1 kWh in 15 min = 4 kW
    missing = client.get(
        URL,
        params={"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z"},
        headers={"X-API-Key": key["manager"]},
    )
    assert missing.status_code == 422


# issue 12: each of these gave a 500 (and lost the good row with it); now each is a rejected row
# with its field and reason, the good row is kept. Written as JSON text: 1e400, a lone surrogate
# and a NUL are what a client can send, not what json.dumps makes of them.
HOSTILE = [
    ('"ts": "9999-12-31T23:45:00+00:00", "value": 1', "timestamp", "out of range"),
    ('"ts": "0001-01-01T00:00:00+00:00", "value": 1', "timestamp", "out of range"),
    ('"ts": "2026-01-14T01:00:00+00:00", "value": 1e400', "value", "not finite"),
    ('"ts": "2026-01-14T01:00:00+00:00", "value": 1, "quality": "\\ud800"', "quality", "lone surrogate"),
    ('"ts": ["2026-01-14T01:00:00+00:00"], "value": 1', "ts", "must be a string, got an array"),
    ('"ts": "2026-01-14T01:00:00+00:00", "value": {"v": 1}', "value", "must be a number, got an object"),
    ('"ts": "2026-01-14T01:00:00+00:00", "value": "1\\u0000"', "value", "NUL character"),
    ('"ts": "2026-01-14T01:00:00+00:00\\u0000", "value": 1', "ts", "NUL character"),
]


def test_hostile_rows_are_rejected_and_the_good_row_kept(client: TestClient, key: dict[str, str]) -> None:
    good = '{"meter_id": "MTR-H001", "obis": "1-0:1.8.0", "unit": "kWh", "ts": "2026-01-14T00:00:00+00:00", "value": 5}'
    items = [good] + ['{"meter_id": "MTR-H001", "obis": "1-0:1.8.0", "unit": "kWh", ' + f + "}" for f, _, _ in HOSTILE]
    body = '{"readings": [' + ", ".join(items) + "]}"
    h = {"X-API-Key": key["ingest"], "Content-Type": "application/json"}
    r = client.post(URL, content=body.encode(), headers=h)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows_read"], report["accepted"], len(report["rejected"])) == (len(items), 1, len(HOSTILE))
    by_where = {x["where"]: x for x in report["rejected"]}
    for i, (_, fld, why) in enumerate(HOSTILE, start=1):
        got = by_where[f"payload readings[{i}]"]
        assert got["field"] == fld and why in got["reason"], got
    # the rejected rows are stored (PostgreSQL refuses NUL in text: they are stored escaped)
    assert "\\x00" in by_where["payload readings[7]"]["value"]
