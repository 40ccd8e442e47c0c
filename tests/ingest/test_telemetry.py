"""Device telemetry through its one path: bad values rejected with the field named and kept as
rejected records; duplicates and revisions; property (hypothesis): the stored state equals the
accepted messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from grid.ingest.report import Source
from grid.ingest.telemetry import Item, csv_items, ingest_telemetry, message_item, payload_items
from grid.store.live import latest_states
from grid.store.schema import batches, device_telemetry, rejected_records, telemetry_revisions
from grid.store.testing import demo_assets, demo_sensors, scratch_store

NOW = pd.Timestamp("2026-01-15T12:00:00Z")
TS = "2026-01-15T12:00:00+01:00"  # 11:00Z, an hour before NOW


@pytest.fixture
def live(store: Engine) -> Engine:
    demo_sensors(store)
    demo_assets(store)
    return store


def _ingest(engine: Engine, items: list[dict[str, Any]], now: pd.Timestamp = NOW) -> Any:
    return ingest_telemetry(engine, "s1", payload_items({"telemetry": items}), Source("api", "payload"), now)


def _rejected(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rejected_records.c.location, rejected_records.c.field, rejected_records.c.reason))
        return sorted((str(a), str(b), str(c)) for a, b, c in rows)


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"asset_id": "nope", "ts": TS, "soc_kwh": 1.0}, "asset_id", "unknown asset"),
    ({"asset_id": "T1", "ts": TS, "power_kw": 1.0}, "asset_id", "unknown asset"),
    ({"asset_id": "bat1", "ts": TS, "soc_kwh": 10.5}, "soc_kwh", "[0, 10] kWh"),
    ({"asset_id": "bat1", "ts": TS, "soc_kwh": -0.1}, "soc_kwh", "[0, 10] kWh"),
    ({"asset_id": "bat1", "ts": TS, "soc_pct": 101}, "soc_pct", "<= 100"),
    ({"asset_id": "hp1", "ts": TS, "store_kwh": 25}, "store_kwh", "[0, 20] kWh"),
    ({"asset_id": "hp1", "ts": TS, "soc_kwh": 5}, "soc_kwh", "reports no soc_kwh"),
    ({"asset_id": "bat1", "ts": "2026-01-15T12:00:00", "soc_kwh": 1.0}, "ts", "no UTC offset"),
    ({"asset_id": "bat1", "ts": "2026-01-15T13:30:00Z", "soc_kwh": 1.0}, "ts", "in the future"),
    ({"asset_id": "bat1", "ts": "yesterday+01:00", "soc_kwh": 1.0}, "ts", "no UTC offset"),
    ({"asset_id": "bat1", "ts": TS, "quantity": "soc", "value": 1.0, "unit": "kW"}, "unit", "does not fit soc"),
    ({"asset_id": "ev1", "ts": TS, "quantity": "power", "value": 3, "unit": "kWh"}, "unit", "does not fit power"),
    ({"asset_id": "ev1", "ts": TS, "power_kw": 17}, "power_kw", "<= 16.5 kW"),
    ({"asset_id": "bat1", "ts": TS, "soc_kwh": True}, "soc_kwh", "must be a number"),
    ({"asset_id": "bat1", "ts": TS, "soc_kwh": "5"}, "soc_kwh", "must be a number"),
    ({"asset_id": "bat1", "ts": TS}, "payload", "needs one of"),
    ({"asset_id": "bat1", "ts": TS, "soc_kwh": 1, "colour": "red"}, "colour", "unknown field"),
    ({"ts": TS, "soc_kwh": 1}, "asset_id", "is missing"),
]


@pytest.mark.parametrize(("item", "field", "reason"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_telemetry_is_rejected_naming_the_field_and_kept(
    live: Engine, item: dict[str, Any], field: str, reason: str
) -> None:
    good = {"asset_id": "bat1", "ts": "2026-01-15T10:00:00Z", "soc_kwh": 4.0}
    report = _ingest(live, [good, item])
    assert report.balanced and report.accepted == 1
    assert [(r.where, r.field) for r in report.rejected] == [("payload telemetry[1]", field)]
    assert reason in report.rejected[0].reason
    assert _rejected(live) == [("payload telemetry[1]", field, report.rejected[0].reason)]
    with live.connect() as conn:
        batch = conn.execute(sa.select(batches.c.accepted, batches.c.rejected)).one()
    assert tuple(batch) == (1, 1)


def test_units_are_converted_and_latest_state_is_read_back(live: Engine) -> None:
    report = _ingest(
        live,
        [
            {"asset_id": "bat1", "ts": "2026-01-15T09:00:00Z", "soc_pct": 50, "power_kw": -2.5},
            {"asset_id": "bat1", "ts": "2026-01-15T10:00:00Z", "quantity": "soc", "value": 7000, "unit": "Wh"},
            {"asset_id": "hp1", "ts": "2026-01-15T10:30:00+01:00", "store_kwh": 12.0},
            {"asset_id": "ev1", "ts": "2026-01-15T10:07:00Z", "quantity": "power", "value": 11000, "unit": "W"},
        ],
    )
    assert (report.rows_read, report.accepted, report.rejected) == (5, 5, [])
    states = latest_states(live, "s1", NOW)
    assert states["bat1"][:2] == (7.0, "kWh") and states["bat1"][2] == pd.Timestamp("2026-01-15T10:00:00Z")
    assert states["hp1"][:2] == (12.0, "kWh")
    assert latest_states(live, "s1", "2026-01-15T09:30:00Z")["bat1"][0] == 5.0  # 50 % of 10 kWh
    assert "ev1" not in states  # a charger has no state of its own


def test_duplicates_and_revisions(live: Engine) -> None:
    item = {"asset_id": "bat1", "ts": "2026-01-15T10:00:00Z", "soc_kwh": 4.0}
    assert _ingest(live, [item]).accepted == 1
    again = _ingest(live, [item, {**item, "soc_kwh": 4.5}])
    assert (again.accepted, again.duplicates, again.revised) == (0, 1, 1)
    assert latest_states(live, "s1", NOW)["bat1"][0] == 4.5
    r = telemetry_revisions.c
    with live.connect() as conn:
        kept = conn.execute(sa.select(r.asset_id, r.quantity, r.old_value, r.new_value)).all()
    assert [tuple(k) for k in kept] == [("bat1", "soc_kwh", 4.0, 4.5)]  # the replaced value is kept
    with live.connect() as conn:
        received = conn.execute(sa.select(device_telemetry.c.received_at)).scalar_one()
    assert pd.Timestamp(received) == NOW


def test_mqtt_message_and_csv_items(live: Engine, tmp_path: Path) -> None:
    topic = "quartier/s1/devices/bat1/state"
    items = [
        message_item(topic, "bat1", b'{"ts": "2026-01-15T10:00:00Z", "soc_kwh": 3}'),
        message_item(topic, "bat1", b"{not json"),
        message_item(topic, "bat1", b'{"ts": "2026-01-15T10:00:00Z", "asset_id": "x", "soc_kwh": 3}'),
    ]
    report = ingest_telemetry(live, "s1", items, Source("mqtt", topic), NOW)
    assert report.accepted == 1 and [r.where for r in report.rejected] == [topic, topic]
    path = tmp_path / "t.csv"
    path.write_text(
        "asset_id,timestamp,quantity,value,unit\n"
        "hp1,2026-01-15T10:00:00Z,store,10,kWh\n"
        "hp1,2026-01-15T10:15:00Z,store,abc,kWh\n"
        "hp1,2026-01-15T10:30:00Z,store\n"
        "\n"
        "hp1,2026-01-15T10:45:00Z,store,nan,kWh\n",
        encoding="utf-8",
    )
    report = ingest_telemetry(live, "s1", csv_items(path), Source("csv", "t.csv"), NOW)
    assert report.accepted == 1 and report.balanced
    assert [(r.line, r.field) for r in report.rejected] == [(3, "value"), (4, "payload"), (6, "value")]


# --- property: the stored state equals the accepted messages --------------------------------------

_sites = itertools.count()
ASSETS = {"bat1": ("soc_kwh", 10.0), "hp1": ("store_kwh", 20.0), "ev1": ("power_kw", 16.5)}


@st.composite
def messages(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of messages, some bad (out of range, unknown asset, future), some repeated."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for _ in range(draw(st.integers(0, 8))):
            asset = draw(st.sampled_from([*ASSETS, "ghost"]))
            quantity, top = ASSETS.get(asset, ("soc_kwh", 10.0))
            minute = draw(st.integers(0, 8)) * 15 + (120 if draw(st.booleans()) and draw(st.booleans()) else 0)
            value = draw(st.floats(-top * 0.2, top * 1.2, allow_nan=False).map(lambda v: round(v, 3)))
            batch.append(
                {"asset_id": asset, "ts": (NOW - pd.Timedelta(minutes=100 - minute)).isoformat(), quantity: value}
            )
        out.append(batch)
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def prop_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_store(request.param, tmp_path_factory.mktemp("tele")) as engine:
        yield engine


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=messages())
def test_stored_state_equals_accepted_messages(prop_store: Engine, batches: list[list[dict[str, Any]]]) -> None:
    site = f"p{next(_sites)}"
    demo_sensors(prop_store, site)
    demo_assets(prop_store, site)
    expected: dict[tuple[str, str, pd.Timestamp], float] = {}
    every: list[tuple[tuple[str, str, pd.Timestamp], float]] = []  # each accepted message
    rejected = 0
    for batch in batches:
        items = [Item(f"m{k}", dict(m), str(m)) for k, m in enumerate(batch)]
        report = ingest_telemetry(prop_store, site, items, Source("mqtt", "prop"), NOW)
        assert report.balanced
        rejected += len(report.rejected)
        bad = {int(r.where[1:]) for r in report.rejected}
        for k, m in enumerate(batch):
            if k not in bad:
                quantity = next(q for q in ("soc_kwh", "store_kwh", "power_kw") if q in m)
                expected[m["asset_id"], quantity, pd.Timestamp(m["ts"])] = m[quantity]
                every.append(((m["asset_id"], quantity, pd.Timestamp(m["ts"])), m[quantity]))
        for k in bad:  # each rejection is one the rules call bad
            m = batch[k]
            quantity, top = ASSETS.get(m["asset_id"], ("", 0.0))
            value = m.get(quantity, 0.0)
            in_range = abs(value) <= top if quantity == "power_kw" else 0 <= value <= top
            assert not in_range or m["asset_id"] == "ghost" or pd.Timestamp(m["ts"]) > NOW + pd.Timedelta(minutes=5)
    t = device_telemetry.c
    with prop_store.connect() as conn:
        rows = conn.execute(sa.select(t.asset_id, t.quantity, t.measured_at, t.value).where(t.site_id == site)).all()
        kept = conn.execute(sa.select(sa.func.count()).where(rejected_records.c.site_id == site)).scalar_one()
        r = telemetry_revisions.c
        revised = conn.execute(
            sa.select(r.asset_id, r.quantity, r.measured_at, r.old_value).where(r.site_id == site)
        ).all()
    stored = {(a, q, pd.Timestamp(ts)): v for a, q, ts, v in rows}
    assert stored == expected
    assert kept == rejected
    # nothing accepted is lost: each accepted value is the stored one or a kept revision of it
    old = {((a, q, pd.Timestamp(ts)), v) for a, q, ts, v in revised}
    assert all(stored[key] == value or (key, value) in old for key, value in every)


def test_instants_parsed_once_per_text_and_refused_every_time() -> None:
    """fields.instant keeps what it parsed per text (the items of a message share their time):
    the same text gives the same instant, each offset its own, a bad text is refused each time."""
    from grid.errors import InputError
    from grid.ingest import fields

    one = fields.instant("2026-01-15T17:30:00+01:00", "ts")
    assert one == fields.instant("2026-01-15T17:30:00+01:00", "ts") == pd.Timestamp("2026-01-15T16:30:00Z")
    assert fields.instant("2026-01-15T17:30:00+02:00", "ts") == pd.Timestamp("2026-01-15T15:30:00Z")
    for _ in range(2):
        with pytest.raises(InputError, match="no UTC offset"):
            fields.instant("2026-01-15T17:30:00", "ts")


@pytest.mark.parametrize("per_query", [200, 1])
def test_latest_states_of_given_assets_are_those_of_all(
    live: Engine, per_query: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner's read (the site's batteries and heat pumps, each found by its key) gives their
    entries of the read of all assets, at any instant; in one query or one per asset."""
    import grid.store.live as store_live

    monkeypatch.setattr(store_live, "_STATE_ASSETS_PER_QUERY", per_query)
    _ingest(
        live,
        [  # out of time order, power beside the states, a later state that is not yet known at 09:30
            {"asset_id": "bat1", "ts": "2026-01-15T10:00:00Z", "soc_kwh": 7.0, "power_kw": 1.0},
            {"asset_id": "bat1", "ts": "2026-01-15T09:00:00Z", "soc_kwh": 5.0},
            {"asset_id": "bat1", "ts": "2026-01-15T09:15:00Z", "soc_kwh": 6.0},
            {"asset_id": "hp1", "ts": "2026-01-15T09:45:00Z", "store_kwh": 12.0},
            {"asset_id": "hp1", "ts": "2026-01-15T08:00:00Z", "store_kwh": 2.0},
            {"asset_id": "ev1", "ts": "2026-01-15T10:07:00Z", "power_kw": 3.0},
        ],
    )
    # an asset with both state quantities (not from the ingest path): the latest of them counts
    with live.begin() as conn:
        batch = conn.execute(sa.select(sa.func.max(batches.c.id))).scalar()
        conn.execute(
            device_telemetry.insert(),
            [
                {
                    "site_id": "s1",
                    "asset_id": "bat1",
                    "quantity": "store_kwh",
                    "measured_at": pd.Timestamp(t).to_pydatetime(),
                    "value": v,
                    "unit": "kWh",
                    "received_at": NOW.to_pydatetime(),
                    "source": "test",
                    "batch_id": batch,
                }
                for t, v in (("2026-01-15T08:30:00Z", 1.5), ("2026-01-15T10:30:00Z", 8.5))
            ],
        )
    for at in ("2026-01-15T07:00:00Z", "2026-01-15T08:45:00Z", "2026-01-15T09:00:00Z", "2026-01-15T09:30:00Z", NOW):
        everything = latest_states(live, "s1", at)
        for assets in (["bat1", "hp1"], ["hp1", "bat1", "hp1"], ["bat1", "nope", "ev1"], []):
            expected = {a: v for a, v in everything.items() if a in assets}
            assert latest_states(live, "s1", at, assets) == expected, (at, assets)
    assert latest_states(live, "s1", "2026-01-15T09:30:00Z", ["bat1", "hp1"]) == {
        "bat1": (6.0, "kWh", pd.Timestamp("2026-01-15T09:15:00Z")),
        "hp1": (2.0, "kWh", pd.Timestamp("2026-01-15T08:00:00Z")),
    }
    assert latest_states(live, "s1", "2026-01-15T08:45:00Z", ["bat1"])["bat1"][0] == 1.5
    assert latest_states(live, "s1", NOW, ["bat1"])["bat1"][0] == 8.5
