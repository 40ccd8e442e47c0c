"""Device state and EV session messages over the real Mosquitto, beside meter messages: stored,
bad ones rejected with their topic and field and acknowledged (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.mqtt import MqttIngestor
from grid.ingest.options import IngestOptions
from grid.store.live import get_session, latest_states
from grid.store.testing import demo_assets, demo_sensors, scratch_store
from tests.ingest.test_mqtt import DEADLINE_S, PORT, count, messages, publish, settings, until

pytestmark = pytest.mark.mqtt
NOW = pd.Timestamp("2026-01-15T12:00:00Z")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    site_id = f"mq{uuid.uuid4().hex[:8]}"  # own topics per test
    with scratch_store(request.param, tmp_path) as engine:
        demo_sensors(engine, site_id)
        demo_assets(engine, site_id)
        yield engine, site_id


def _msg(topic: str, doc: object) -> tuple[str, bytes]:
    return topic, json.dumps(doc).encode()


def test_device_states_and_sessions_beside_meters(site: tuple[Engine, str]) -> None:
    engine, site_id = site
    ingestor = MqttIngestor(engine, site_id, settings(batch_size=50), IngestOptions(now=NOW))
    ingestor.start()
    assert ingestor.subscribed.wait(DEADLINE_S)
    state = f"quartier/{site_id}/devices/bat1/state"
    charger = f"quartier/{site_id}/chargers/ev1/session"
    arrival = {
        "event": "arrival",
        "session_id": "c1",
        "arrival": "2026-01-15T11:00:00Z",
        "departure": "2026-01-15T18:00:00Z",
        "target_soc": 0.8,
        "capacity_kwh": 50,
        "initial_soc": 0.4,
    }
    msgs = [
        _msg(state, {"ts": "2026-01-15T11:00:00Z", "soc_kwh": 4.0, "power_kw": 1.5}),
        _msg(state, {"ts": "2026-01-15T11:15:00Z", "soc_pct": 55}),
        _msg(state, {"ts": "2026-01-15T11:30:00Z", "soc_kwh": 12.0}),  # above the capacity
        (f"quartier/{site_id}/devices/ghost/state", b'{"ts": "2026-01-15T11:00:00Z", "power_kw": 1}'),
        (state, b"\xff\xfe not json"),
        _msg(charger, arrival),
        _msg(charger, {"event": "change", "session_id": "c1", "departure": "2026-01-15T19:00:00Z"}),
        _msg(charger, {"event": "change", "session_id": "c1", "departure": "2026-01-15T10:00:00Z"}),  # before arrival
        _msg(charger, {"event": "teleport", "session_id": "c1"}),
        *messages(site_id, 3),
    ]
    try:
        publish(PORT, msgs)
        until(lambda: ingestor.stats.messages >= len(msgs), ingestor.step, f"{len(msgs)} messages")
        assert ingestor.stats.acked == len(msgs)
    finally:
        ingestor.close()
    total = ingestor.stats.total
    assert total.balanced
    states = latest_states(engine, site_id, NOW)
    assert states["bat1"][0] == 5.5  # 55 % of 10 kWh
    session = get_session(engine, site_id, "c1")
    assert session is not None and session.departure == pd.Timestamp("2026-01-15T19:00:00Z")
    assert session.energy_needed_kwh == pytest.approx(20.0)
    assert count(engine, "register_readings") == 3
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT location, field FROM rejected_records")).all()
    assert sorted((str(a), str(b)) for a, b in rows) == sorted(
        [
            (state, "soc_kwh"),
            (f"quartier/{site_id}/devices/ghost/state", "asset_id"),
            (state, "payload"),
            (charger, "departure"),
            (charger, "event"),
        ]
    )
