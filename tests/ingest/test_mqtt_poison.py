"""Poison MQTT messages against the real Mosquitto, on SQLite and PostgreSQL: a message the
validator refuses and a message the database refuses (a trigger) are stored as rejected records
with their reason and acknowledged; the good messages around them are stored and the subscriber
keeps running. Also `grid mqtt-ingest` as a process: it must not exit on a poison message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.mqtt import is_outage
from grid.store.testing import demo_sensors, engine_location, scratch_store
from tests.ingest.test_mqtt import HOST, PORT, count, messages, publish, settings, started, until

pytestmark = pytest.mark.mqtt

#: the three messages of issue 12 that made `grid mqtt-ingest` exit, and why each is rejected
ISSUE_POISON = [
    (b'{"ts":"9999-12-31T23:45:00+00:00","value":1,"unit":"kWh"}', "timestamp", "out of range"),
    (b'{"ts":"2026-01-15T00:00:00+00:00","value":1,"unit":"kWh\\u0000"}', "unit", "NUL character"),
    (b'{"ts":"2026-01-15T00:00:00+00:00","value":1,"unit":["kWh"]}', "unit", "must be a string"),
    (b'{"ts":"2026-01-15T00:00:00+00:00","value":1,"unit":"\\udc00"}', "unit", "lone surrogate"),
]
REFUSED_VALUE = 666.0  # a register value the database refuses (trigger below)


def _refuse_in_database(engine: Engine) -> None:
    """A real database-side refusal the validator knows nothing about: a trigger on
    register_readings that aborts any insert of REFUSED_VALUE."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_value() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.value = {REFUSED_VALUE} THEN RAISE EXCEPTION 'value refused by a trigger'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_value BEFORE INSERT ON register_readings "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_value()"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_value BEFORE INSERT ON register_readings "
                    f"WHEN NEW.value = {REFUSED_VALUE} BEGIN SELECT RAISE(ABORT, 'value refused by a trigger'); END"
                )
            )


def _rejections(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(str(f), str(r)) for f, r in conn.execute(sa.text("SELECT field, reason FROM rejected_records"))]


def test_poison_messages_are_rejected_and_the_good_ones_stored(store: Engine) -> None:
    site_id = f"mp{uuid.uuid4().hex[:8]}"
    demo_sensors(store, site_id)
    _refuse_in_database(store)
    ingestor = started(store, site_id, settings(batch_size=200, retry_seconds=0.05))
    try:
        m1 = f"quartier/{site_id}/meters/m1/1-0:1.8.0"
        m2 = f"quartier/{site_id}/meters/m2/1-0:1.8.0"
        refused = json.dumps({"ts": "2026-01-15T00:00:00+00:00", "value": REFUSED_VALUE, "unit": "kWh"})
        good = messages(site_id, 50)
        # poison first, the database-refused one in the middle of the good ones
        batch = [(m1, p) for p, _, _ in ISSUE_POISON] + good[:25] + [(m2, refused.encode())] + good[25:]
        publish(PORT, batch)
        until(lambda: ingestor.stats.messages >= len(batch), ingestor.step, "every message handled")
        assert count(store, "register_readings") == 50  # every good message stored
        assert ingestor.stats.acked == len(batch)  # ... and every message acknowledged
        assert ingestor.stats.splits >= 1 and ingestor.stats.unstorable == 1
        reasons = _rejections(store)
        assert len(reasons) == len(ISSUE_POISON) + 1
        for _, fld, why in ISSUE_POISON:
            assert any(f == fld and why in r for f, r in reasons), (fld, why, reasons)
        assert any(r.startswith("could not be stored") and "refused by a trigger" in r for _, r in reasons)
        # still running: later messages are stored too
        publish(PORT, messages(site_id, 5, start=50))
        until(lambda: count(store, "register_readings") == 55, ingestor.step, "5 more readings")
        total = ingestor.stats.total
        assert total.balanced and total.accepted == 55
    finally:
        ingestor.close()


def test_an_outage_is_retried_whole_not_split() -> None:
    """Connection errors say nothing about the messages: the batch is retried, never split."""
    dead = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    try:
        with dead.connect():
            pass
    except sa.exc.OperationalError as exc:
        assert is_outage(exc)
    else:
        pytest.fail("port 1 accepted a PostgreSQL connection")
    assert not is_outage(sa.exc.IntegrityError("INSERT", {}, Exception("refused")))
    assert not is_outage(ValueError("bad value"))


CLI = [sys.executable, "-c", "from grid.cli import app; app()", "mqtt-ingest"]


def test_mqtt_ingest_process_survives_the_issue_poison(tmp_path: Path) -> None:
    site_id = f"mc{uuid.uuid4().hex[:8]}"
    client_id = f"ingest-{uuid.uuid4().hex[:10]}"
    with scratch_store("sqlite", tmp_path, migrate=True) as engine:
        demo_sensors(engine, site_id)
        url, _ = engine_location(engine)
        log = (tmp_path / "mqtt-ingest.log").open("w")
        proc = subprocess.Popen(
            [*CLI, "--site", site_id, "--db", url, "--client-id", client_id, "--batch-seconds", "0.2"],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        try:
            topic = f"quartier/{site_id}/meters/m1/1-0:1.8.0"
            pause = threading.Event()
            # the subscription may not be made yet: QoS 1 messages before it would be lost, so
            # publish a probe until it arrives
            until(
                lambda: count(engine, "batches") > 0,
                lambda: (publish(PORT, messages(site_id, 1, start=99)), pause.wait(0.3)),
                "the subscriber",
            )
            publish(PORT, [(topic, p) for p, _, _ in ISSUE_POISON] + messages(site_id, 50))
            until(lambda: count(engine, "register_readings") == 51, lambda: pause.wait(0.2), "50 readings")
            assert proc.poll() is None, (tmp_path / "mqtt-ingest.log").read_text()
            assert count(engine, "rejected_records") == len(ISSUE_POISON)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
            log.close()
            _end_session(client_id)
        assert proc.returncode == 0, (tmp_path / "mqtt-ingest.log").read_text()


def _end_session(client_id: str) -> None:
    """Drop the persistent session the process left on the shared broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(HOST, PORT, clean_start=True)
    client.disconnect()
