"""MQTT subscriber against the real Mosquitto: batches, malformed messages, a killed subscriber
(messages it had not acknowledged come back), and a broker restart (a private Mosquitto)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.mqtt import MqttIngestor, MqttSettings
from grid.ingest.options import IngestOptions
from grid.store.testing import demo_sensors, engine_location, scratch_store

pytestmark = pytest.mark.mqtt

HOST, PORT = "127.0.0.1", 1883
NOW = pd.Timestamp("2026-06-01T00:00:00Z")
T0 = pd.Timestamp("2026-01-15T00:00:00Z")
DEADLINE_S = 60.0


def until(condition: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    """Call `step` until `condition` holds; fail after DEADLINE_S (a bound, not a timing)."""
    end = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        step()


def messages(site: str, n: int, meter: str = "m1", start: int = 0) -> list[tuple[str, bytes]]:
    topic = f"quartier/{site}/meters/{meter}/1-0:1.8.0"
    return [
        (
            topic,
            json.dumps(
                {
                    "ts": (T0 + pd.Timedelta(minutes=15 * k)).isoformat(),
                    "value": 100 + k,
                    "unit": "kWh",
                }
            ).encode(),
        )
        for k in range(start, start + n)
    ]


def publish(port: int, msgs: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"pub-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5,
    )
    client.connect(HOST, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in msgs]
        for info in infos:
            info.wait_for_publish(timeout=DEADLINE_S)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    site_id = f"mq{uuid.uuid4().hex[:8]}"  # own topics per test
    with scratch_store("sqlite", tmp_path) as engine:
        demo_sensors(engine, site_id)
        yield engine, site_id


def settings(port: int = PORT, client_id: str | None = None, **kwargs: object) -> MqttSettings:
    client_id = client_id or f"ingest-{uuid.uuid4().hex[:10]}"
    return MqttSettings(host=HOST, port=port, client_id=client_id, session_expiry_s=120, batch_seconds=0.2, **kwargs)  # type: ignore[arg-type]


def started(engine: Engine, site_id: str, cfg: MqttSettings) -> MqttIngestor:
    ingestor = MqttIngestor(engine, site_id, cfg, IngestOptions(now=NOW))
    ingestor.start()
    assert ingestor.subscribed.wait(DEADLINE_S)
    return ingestor


def test_batches_are_stored_and_malformed_messages_rejected(site: tuple[Engine, str]) -> None:
    engine, site_id = site
    ingestor = started(engine, site_id, settings(batch_size=25))
    try:
        bad = [
            (f"quartier/{site_id}/meters/m1/1-0:1.8.0", b"not json"),
            (
                f"quartier/{site_id}/meters/m9/1-0:1.8.0",
                b'{"ts": "2026-01-15T00:00:00Z", "value": 1, "unit": "kWh"}',
            ),
        ]
        publish(PORT, messages(site_id, 40)[:20] + bad + messages(site_id, 40)[20:])
        until(lambda: ingestor.stats.messages >= 42, ingestor.step, "42 messages")
        assert ingestor.stats.batches >= 2
        assert ingestor.stats.acked == 42
        assert count(engine, "register_readings") == 40
        assert count(engine, "readings") == 39
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT location, field FROM rejected_records ORDER BY field")).all()
        assert [tuple(r) for r in rows] == [(bad[1][0], "meter_id"), (bad[0][0], "payload")]
        total = ingestor.stats.total
        assert (total.rows_read, total.accepted, len(total.rejected)) == (42, 40, 2)
    finally:
        ingestor.close()


CHILD = r"""
import sys, threading
import pandas as pd
from grid.ingest.mqtt import MqttIngestor, MqttSettings
from grid.ingest.options import IngestOptions
from grid.store.engine import make_engine

url, site_id, client_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = MqttSettings(client_id=client_id, session_expiry_s=120, batch_size=10**6, batch_seconds=3600)
ingestor = MqttIngestor(make_engine(url), site_id, cfg, IngestOptions())
ingestor.start()
ingestor.subscribed.wait(60)
print("READY", flush=True)
pause = threading.Event()
for _ in range(1200):  # poll (bounded): received, but never stored, so never acknowledged
    if ingestor.waiting >= n:
        break
    pause.wait(0.05)
print("HAVE", ingestor.waiting, flush=True)
sys.stdin.readline()
"""


def test_messages_not_yet_stored_come_back_after_the_subscriber_is_killed(
    site: tuple[Engine, str],
) -> None:
    engine, site_id = site
    url, _ = engine_location(engine)
    client_id = f"ingest-{uuid.uuid4().hex[:10]}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, site_id, client_id, "30"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("READY")
        publish(PORT, messages(site_id, 30))
        assert child.stdout.readline().startswith("HAVE 30")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=DEADLINE_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert count(engine, "register_readings") == 0
    ingestor = started(engine, site_id, settings(client_id=client_id))  # same session
    try:
        until(
            lambda: count(engine, "register_readings") == 30,
            ingestor.step,
            "30 redelivered readings",
        )
    finally:
        ingestor.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


class Broker:
    """A private Mosquitto with persistence, so that the test may restart it."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {directory}/\nuser root\nlog_dest none\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(self.conf)])
        end = time.monotonic() + DEADLINE_S
        while not _listening(self.port):
            assert self.proc.poll() is None, "mosquitto exited"
            assert time.monotonic() < end, "mosquitto did not start"
            threading.Event().wait(0.05)  # poll interval of the readiness check

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves its persistence file on the way out
            self.proc.wait(timeout=DEADLINE_S)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto binary not installed")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def test_reconnects_after_a_broker_restart_and_gets_what_was_queued(site: tuple[Engine, str], broker: Broker) -> None:
    engine, site_id = site
    ingestor = started(engine, site_id, settings(port=broker.port))
    try:
        publish(broker.port, messages(site_id, 20))
        until(lambda: ingestor.stats.messages >= 20, ingestor.step, "20 messages before the restart")
        broker.stop()
        until(lambda: not ingestor.subscribed.is_set(), lambda: ingestor.step(0.05), "the disconnect")
        broker.start()
        publish(broker.port, messages(site_id, 20, start=20))  # possibly before the subscriber is back
        until(lambda: ingestor.stats.messages >= 40, ingestor.step, "40 messages after the restart")
        assert ingestor.stats.connects >= 2
        assert count(engine, "register_readings") == 40
    finally:
        ingestor.close()
