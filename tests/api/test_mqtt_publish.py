"""Set-points reach a subscriber over the real Mosquitto (127.0.0.1:1883): retained, QoS 1, one
topic per asset, with plan id, interval and valid_until. Unique topic prefix per test run."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.broker import BrokerAuth
from grid.schedule.publish import MqttPublisher
from tests.api.kit import Clock, make_app

pytestmark = pytest.mark.mqtt
HOST, PORT = "127.0.0.1", 1883


@pytest.fixture
def publisher() -> Iterator[MqttPublisher]:
    pub = MqttPublisher(HOST, PORT, prefix=f"qtest-{uuid.uuid4().hex[:10]}")
    assert pub.wait_connected(10), "Mosquitto at 127.0.0.1:1883 is not reachable"
    yield pub
    pub.close()


class Subscriber:
    """Collects retained set-point messages until `expected` topics carry `plan_id`."""

    def __init__(self, pattern: str, port: int = PORT, auth: BrokerAuth | None = None) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.retained: dict[str, bool] = {}
        self.qos: dict[str, int] = {}
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        (auth or BrokerAuth()).apply(self.client)
        self.client.connect(HOST, port)
        self.client.loop_start()
        self.client.subscribe(pattern, qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.changed:
            if msg.payload:
                self.messages[msg.topic] = json.loads(msg.payload)
                self.retained[msg.topic] = bool(msg.retain)
                self.qos[msg.topic] = msg.qos
            self.changed.notify_all()

    def wait_for(self, plan_id: str, count: int) -> bool:
        def done() -> bool:
            return sum(m["plan_id"] == plan_id for m in self.messages.values()) >= count

        with self.changed:
            return self.changed.wait_for(done, timeout=20)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_new_plan_is_published_retained(
    store: Engine, sites: dict[str, Path], clock: Clock, publisher: MqttPublisher
) -> None:
    app = make_app(store, sites, clock, publisher=publisher)
    svc = app.state.ctx.service
    with TestClient(app):
        first = svc.run("demo", clock())
        assert first.status.startswith("optimal")
        assert publisher.flush(20)  # publishing runs off the planning path: wait until acknowledged
        # a subscriber that connects afterwards still gets every asset's set-points (retained)
        sub = Subscriber(f"{publisher.prefix}/demo/setpoints/#")
        try:
            from grid.store.plans import plan_body

            body = plan_body(store, first.plan_id or "")
            assets = [a for a, d in body["assets"].items() if d["type"] != "inflexible_load"]
            assert sub.wait_for(first.plan_id or "", len(assets))
            assert set(sub.messages) == {f"{publisher.prefix}/demo/setpoints/{a}" for a in assets}
            assert all(sub.retained.values()) and set(sub.qos.values()) == {1}
            msg = sub.messages[f"{publisher.prefix}/demo/setpoints/{assets[0]}"]
            assert msg["interval_start"] == "2026-01-14T01:00:00+00:00"
            assert msg["valid_until"] == "2026-01-14T02:00:00+00:00"  # 4 intervals published
            assert msg["power_kw"] == body["assets"][assets[0]]["power_kw"][0] and msg["stale"] is False
            second = svc.run("demo", clock.advance(15))  # the next plan replaces them
            assert sub.wait_for(second.plan_id or "", len(assets))
            assert sub.messages[f"{publisher.prefix}/demo/setpoints/{assets[0]}"]["interval_start"] == (
                "2026-01-14T01:15:00+00:00"
            )
        finally:
            sub.close()
            for topic in list(sub.messages):  # clear the retained test messages
                publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
