"""Set-point publishing against a PRIVATE Mosquitto (free port, persistence on) that hangs
(SIGSTOP), resumes (SIGCONT) and is killed (-9) and restarted; the shared broker is never touched.

* a re-plan finishes and frees the site while the broker hangs (publishing is off the planning
  path, with one overall deadline); /healthz reports the stalled broker;
* after SIGCONT the queued set-points arrive;
* after kill -9 + restart (the broker lost its retained messages: none saved since it started)
  every asset's retained set-point is back without a new run (re-published on reconnect).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.private_services import PrivateMosquitto
from grid.schedule.publish import MqttPublisher
from grid.schedule.runner import RunResult
from grid.store.plans import plan_body
from grid.store.testing import scratch_store
from tests.api.kit import Clock, make_app, service
from tests.api.test_mqtt_publish import HOST, Subscriber

pytestmark = pytest.mark.mqtt
BOUND_S = 120.0  # a bound on waiting for a condition, not a timing


def until(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.1)  # poll interval


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto binary not installed")
    b = PrivateMosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with scratch_store("sqlite", tmp_path) as e:
        yield e


def test_hung_and_killed_broker(
    broker: PrivateMosquitto, engine: Engine, sites: dict[str, Path], clock: Clock, tmp_path: Path
) -> None:
    prefix = f"qtest-{uuid.uuid4().hex[:10]}"
    publisher = MqttPublisher(HOST, broker.port, prefix=prefix, deadline_s=2.0, keepalive_s=5)
    assert publisher.wait_connected(30)
    app = make_app(engine, sites, clock, publisher=publisher)
    svc = service(app)
    try:
        with TestClient(app) as client:
            first = svc.run("demo", clock())
            body = plan_body(engine, first.plan_id or "")
            assets = [a for a, d in body["assets"].items() if d["type"] != "inflexible_load"]
            assert publisher.flush(30)

            broker.signal(signal.SIGSTOP)
            result: list[RunResult] = []
            run = threading.Thread(target=lambda: result.append(svc.run("demo", clock.advance(15))))
            run.start()
            # the old publisher waited 10 s per message (21 assets here: 210 s) holding the site lock
            run.join(BOUND_S / 2)
            assert not run.is_alive() and not svc.busy("demo"), "the re-plan waited for the hung broker"
            second = result[0]
            until(lambda: client.get("/healthz").json()["mqtt_stalled"] is True, "/healthz to see the stall")
            health = client.get("/healthz").json()
            assert health["status"] == "degraded" and any("stalled" in p for p in health["problems"])
            assert health["mqtt_unacked"] > 0

            broker.signal(signal.SIGCONT)
            until(lambda: publisher.unacked == 0, "the queued set-points to be acknowledged")
            until(lambda: client.get("/healthz").json()["mqtt_stalled"] is False, "the stall to clear")
            sub = Subscriber(f"{prefix}/demo/setpoints/#", port=broker.port)
            try:
                assert sub.wait_for(second.plan_id or "", len(assets))
            finally:
                sub.close()

            broker.signal(signal.SIGKILL)  # nothing was saved since the start: retained messages lost
            connects = publisher.connects
            broker.start()
            until(lambda: publisher.connects > connects, "the publisher to reconnect")
            assert publisher.flush(BOUND_S)  # re-published: retained again before anyone subscribes
            sub = Subscriber(f"{prefix}/demo/setpoints/#", port=broker.port)
            try:
                assert sub.wait_for(second.plan_id or "", len(assets))
                assert all(sub.retained.values())
            finally:
                sub.close()
    finally:
        publisher.close()
