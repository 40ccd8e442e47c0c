"""Publish set-points over MQTT: one retained QoS 1 message per asset on
``<prefix>/<site>/setpoints/<asset_id>`` (prefix ``quartier``).

Payload (JSON): ``site, asset, type, plan_id, computed_at, interval_start, power_kw, valid_until,
stale, stale_reason, resolution_min, schedule`` where ``schedule`` lists ``{start, power_kw}`` for
the current and next intervals. Power in kW, positive = drawn from the grid.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Something that can publish a site's set-points (see :func:`setpoint_messages`)."""

    connected: bool

    def publish(self, site_id: str, points: dict[str, Any]) -> int: ...


def setpoint_messages(prefix: str, points: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(topic, payload) per asset for the set-points dict of :func:`grid.schedule.setpoints.setpoints`."""
    out = []
    intervals = points["intervals"]
    for aid, asset in points["assets"].items():
        body = {
            "site": points["site"],
            "asset": aid,
            "type": asset["type"],
            "plan_id": points["plan_id"],
            "computed_at": points["computed_at"],
            "interval_start": intervals[0],
            "power_kw": asset["power_kw"][0],
            "valid_until": points["valid_until"],
            "stale": points["stale"],
            "stale_reason": points["stale_reason"],
            "resolution_min": points["resolution_min"],
            "schedule": [{"start": t, "power_kw": p} for t, p in zip(intervals, asset["power_kw"], strict=False)],
        }
        out.append((f"{prefix}/{points['site']}/setpoints/{aid}", json.dumps(body).encode("utf-8")))
    return out


class MqttPublisher:
    """A paho client with its own network thread; reconnects by itself."""

    def __init__(self, host: str, port: int = 1883, prefix: str = "quartier", client_id: str = "") -> None:
        self.prefix = prefix
        self.connected = False
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(host, port)
        self.client.loop_start()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = not reason.is_failure
        if self.connected:
            self._ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        self.connected = False

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._ready.wait(timeout_s)

    def publish(self, site_id: str, points: dict[str, Any], timeout_s: float = 10.0) -> int:
        """Publish every asset's set-points retained with QoS 1; returns how many were acknowledged."""
        infos = [self.client.publish(t, p, qos=1, retain=True) for t, p in setpoint_messages(self.prefix, points)]
        done = 0
        for info in infos:
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:  # not connected / queue full: paho retries later
                log.warning("set-point publish for %s not confirmed: %s", site_id, exc)
                continue
            done += info.is_published()
        return done

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
