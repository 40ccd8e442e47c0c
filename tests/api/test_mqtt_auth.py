"""MQTT credentials against a PRIVATE Mosquitto with a password file (mosquitto_passwd) and the
ACL documented in the README: an anonymous client is refused; the service's publisher and
ingestor log in with the configured user; a meter gateway may write readings but not set-points.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy.engine import Engine

from grid.broker import BrokerAuth
from grid.ingest.mqtt import MqttIngestor, MqttSettings
from grid.private_services import PrivateMosquitto
from grid.schedule.publish import MqttPublisher
from grid.store.testing import demo_sensors, scratch_store
from tests.api.test_mqtt_publish import HOST, Subscriber

pytestmark = pytest.mark.mqtt
README = Path(__file__).resolve().parents[2] / "README.md"
BOUND_S = 30.0  # a bound on waiting for the broker, not a timing
USERS = {
    "quartiere": "service-secret",
    "meter-gateway": "gateway-secret",
    "device": "device-secret",
    "BAT-1": "bat-1-secret",  # a device with its own login (the ACL's per-device patterns)
}


def documented_acl() -> str:
    """The ACL example of the README (the code block that starts with ``# mosquitto ACL``)."""
    found = re.search(r"```\n(# mosquitto ACL.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert found, "README lost its broker ACL example"
    return found.group(1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed")
    b = PrivateMosquitto(tmp_path, users=USERS, acl=documented_acl())
    b.start()
    yield b
    b.stop()


def auth(user: str) -> BrokerAuth:
    return BrokerAuth(username=user, password=USERS[user])


def connect_reason(port: int, credentials: BrokerAuth | None) -> Any:
    """The CONNACK reason a v5 client gets (None if none came within the bound)."""
    done = threading.Event()
    reasons: list[Any] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    (credentials or BrokerAuth()).apply(client)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        reasons.append(reason)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *_a: done.set()  # closed without a CONNACK (e.g. plain TCP to TLS)
    client.connect(HOST, port)
    client.loop_start()
    try:
        done.wait(BOUND_S)
    finally:
        client.loop_stop()
        client.disconnect()
    return reasons[0] if reasons else None


def publish_reason(port: int, user: str, topic: str, payload: bytes) -> Any:
    """The PUBACK reason a v5 client logged in as `user` gets for a QoS 1 publish."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    auth(user).apply(client)
    reasons: list[Any] = []
    acked = threading.Event()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        reasons.append(reason)
        acked.set()

    client.on_publish = on_publish
    client.connect(HOST, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert acked.wait(BOUND_S)
    finally:
        client.loop_stop()
        client.disconnect()
    return reasons[0]


def test_anonymous_refused_configured_users_work(broker: PrivateMosquitto, tmp_path: Path) -> None:
    anonymous = connect_reason(broker.port, None)
    assert anonymous is not None and anonymous.is_failure  # "Not authorized"
    wrong = connect_reason(broker.port, BrokerAuth(username="quartiere", password="guess"))
    assert wrong is not None and wrong.is_failure
    assert not connect_reason(broker.port, auth("quartiere")).is_failure

    # publishing as the service: the device user reads the retained set-point
    prefix = "quartier"
    site = f"auth{uuid.uuid4().hex[:8]}"
    publisher = MqttPublisher(HOST, broker.port, prefix=prefix, auth=auth("quartiere"))
    try:
        assert publisher.wait_connected(BOUND_S)
        points = {
            "site": site,
            "plan_id": "p1",
            "computed_at": "2026-01-14T01:00:00+00:00",
            "valid_until": "2026-01-14T01:15:00+00:00",
            "stale": False,
            "stale_reason": "",
            "resolution_min": 15,
            "intervals": ["2026-01-14T01:00:00+00:00"],
            "assets": {"BAT-1": {"type": "battery", "power_kw": [2.5]}},
        }
        assert publisher.publish(site, points) == 1 and publisher.flush(BOUND_S)
    finally:
        publisher.close()
    sub = Subscriber(f"{prefix}/{site}/setpoints/#", port=broker.port, auth=auth("device"))
    try:
        assert sub.wait_for("p1", 1)
        assert sub.messages[f"{prefix}/{site}/setpoints/BAT-1"]["power_kw"] == 2.5
    finally:
        sub.close()

    # a meter gateway must not fake set-points, and a device must not inject readings
    fake = json.dumps({"plan_id": "fake"}).encode()
    assert publish_reason(broker.port, "meter-gateway", f"{prefix}/{site}/setpoints/BAT-1", fake).is_failure
    reading = json.dumps({"ts": "2026-01-14T00:15:00+00:00", "value": 1.0, "unit": "kWh"}).encode()
    assert publish_reason(broker.port, "device", f"{prefix}/s1/meters/m1/1-0:1.8.0", reading).is_failure
    # a device reports its state (a charger its sessions); a meter gateway may not
    state = json.dumps({"ts": "2026-01-14T00:15:00+00:00", "power_kw": 1.0}).encode()
    assert not publish_reason(broker.port, "device", f"{prefix}/{site}/devices/BAT-1/state", state).is_failure
    assert not publish_reason(broker.port, "device", f"{prefix}/{site}/chargers/EV-1/session", state).is_failure
    assert publish_reason(broker.port, "meter-gateway", f"{prefix}/{site}/devices/BAT-1/state", state).is_failure

    # a device with its own login speaks only for itself and reads only its own set-points
    assert not publish_reason(broker.port, "BAT-1", f"{prefix}/{site}/devices/BAT-1/state", state).is_failure
    assert publish_reason(broker.port, "BAT-1", f"{prefix}/{site}/devices/BAT-2/state", state).is_failure
    assert publish_reason(broker.port, "BAT-1", f"{prefix}/{site}/setpoints/BAT-1", fake).is_failure
    own = Subscriber(f"{prefix}/{site}/setpoints/BAT-1", port=broker.port, auth=auth("BAT-1"))
    try:
        assert own.wait_for("p1", 1)  # the retained set-point of its own
    finally:
        own.close()

    # ingestion logs in as the service and stores what the gateway sends
    with scratch_store("sqlite", tmp_path) as engine:
        ingested = ingest_one(engine, broker.port, reading)
    assert ingested == 1


def ingest_one(engine: Engine, port: int, payload: bytes) -> int:
    """Readings stored after the gateway publishes one message to ``s1``'s meter m1."""
    demo_sensors(engine)
    settings = MqttSettings(port=port, client_id=f"qtest-{uuid.uuid4().hex[:8]}", auth=auth("quartiere"))
    ingestor = MqttIngestor(engine, "s1", settings)
    ingestor.start()
    try:
        assert ingestor.subscribed.wait(BOUND_S)
        assert not publish_reason(port, "meter-gateway", "quartier/s1/meters/m1/1-0:1.8.0", payload).is_failure
        end = time.monotonic() + BOUND_S
        while ingestor.stats.messages == 0:
            assert time.monotonic() < end, "the reading never arrived"
            ingestor.step(wait_s=0.2)
        return ingestor.stats.messages
    finally:
        ingestor.close()


def test_tls_with_client_certificate(tmp_path: Path) -> None:
    """A TLS-only listener that wants a client certificate: plain TCP and a client without a
    certificate get nothing; the publisher with GRID_MQTT_TLS_CA/_CERT/_KEY (+ user) works."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    b = PrivateMosquitto(tmp_path, users=USERS, acl=documented_acl(), tls=True)
    b.start()
    try:
        assert connect_reason_or_error(b.port, auth("quartiere")) is not True  # plain TCP to TLS
        no_cert = BrokerAuth(username="quartiere", password=USERS["quartiere"], tls_ca=b.ca)
        assert connect_reason_or_error(b.port, no_cert) is not True
        env = {
            "GRID_MQTT_USERNAME": "quartiere",
            "GRID_MQTT_PASSWORD": USERS["quartiere"],
            "GRID_MQTT_TLS_CA": str(b.ca),
            "GRID_MQTT_TLS_CERT": str(b.client_cert),
            "GRID_MQTT_TLS_KEY": str(b.client_key),
        }
        good = BrokerAuth.from_env(env)
        assert good.uses_tls and "service-secret" not in repr(good)
        assert connect_reason_or_error(b.port, good) is True
        publisher = MqttPublisher(HOST, b.port, auth=good)
        try:
            assert publisher.wait_connected(BOUND_S)
        finally:
            publisher.close()
    finally:
        b.stop()


def connect_reason_or_error(port: int, credentials: BrokerAuth) -> bool | str:
    """True when a v5 client gets a successful CONNACK; else what happened instead."""
    try:
        reason = connect_reason(port, credentials)
    except OSError as exc:  # TLS handshake refused (no client certificate) or reset
        return f"{type(exc).__name__}: {exc}"
    if reason is None:
        return "no CONNACK"
    return True if not reason.is_failure else str(reason)
