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
import time
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from grid.broker import BrokerAuth

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
    """A paho client with its own network thread (it reconnects by itself) and a sender thread.

    :meth:`publish` only hands the messages over and returns at once: a planning run never waits
    for the broker. The sender publishes them (the newest set per site; an older set not yet sent
    is replaced) and waits for the acknowledgements up to one overall `deadline_s` per set, not
    per message. Messages not acknowledged by then stay with paho, which sends them again after a
    reconnect; meanwhile :attr:`stalled` is true (``/healthz`` says so). On every (re)connect the
    last set of every site is published again, so a broker that lost its retained messages (killed
    without saving them) has them back at once, not only after the next run.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        prefix: str = "quartier",
        client_id: str = "",
        auth: BrokerAuth | None = None,
        deadline_s: float = 30.0,
        keepalive_s: int = 15,
    ) -> None:
        self.prefix = prefix
        self.deadline_s = deadline_s
        self.connected = False
        self.connects = 0
        self._ready = threading.Event()
        self._last: dict[str, list[tuple[str, bytes]]] = {}  # site -> its newest message set
        self._pending: dict[str, list[tuple[str, bytes]]] = {}  # sets waiting for the sender
        self._wake = threading.Condition()
        self._closed = False
        self._sending = False
        self._acked: set[int] = set()  # mids acknowledged (network thread) ...
        self._unacked: dict[int, float] = {}  # ... and sent, not yet acknowledged: mid -> monotonic time
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        (auth or BrokerAuth()).apply(self.client)
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-setpoints", daemon=True)
        self._sender.start()
        self.client.connect_async(host, port, keepalive=keepalive_s)
        self.client.loop_start()

    # --- network thread ---------------------------------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = not reason.is_failure
        if not self.connected:
            log.warning("MQTT broker refused the set-point publisher: %s", reason)
            return
        with self._wake:  # the broker may have lost its retained messages: send every site's again
            for site_id, messages in self._last.items():
                self._pending.setdefault(site_id, messages)
            self._wake.notify()
        self.connects += 1
        self._ready.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        self.connected = False

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        self._acked.add(mid)

    # --- state ------------------------------------------------------------------------------------

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._ready.wait(timeout_s)

    @property
    def unacked(self) -> int:
        """Set-point messages sent but not acknowledged by the broker."""
        self._reconcile()
        return len(self._unacked)

    @property
    def stalled(self) -> bool:
        """True when a message has waited longer than `deadline_s` for the broker's acknowledgement
        (a hung or overloaded broker; also while it is unreachable with messages to send)."""
        self._reconcile()
        limit = time.monotonic() - self.deadline_s
        return any(sent < limit for sent in list(self._unacked.values()))

    def _reconcile(self) -> None:
        for mid in list(self._acked):
            self._acked.discard(mid)
            self._unacked.pop(mid, None)

    # --- sending ----------------------------------------------------------------------------------

    def publish(self, site_id: str, points: dict[str, Any]) -> int:
        """Queue every asset's set-points (retained, QoS 1) for the sender; returns how many
        messages were queued. Never blocks on the broker."""
        messages = setpoint_messages(self.prefix, points)
        with self._wake:
            self._last[site_id] = messages
            self._pending[site_id] = messages
            self._wake.notify()
        return len(messages)

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                site_id, messages = self._pending.popitem()
                self._sending = True
            try:
                self._send(site_id, messages)
            finally:
                self._sending = False

    def _send(self, site_id: str, messages: list[tuple[str, bytes]]) -> None:
        """Publish one set and wait for its acknowledgements until one overall deadline."""
        deadline = time.monotonic() + self.deadline_s
        mids = []
        for topic, payload in messages:
            info = self.client.publish(topic, payload, qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                log.warning("set-point message for %s dropped: paho's queue is full", topic)
                continue
            self._unacked[info.mid] = time.monotonic()  # kept by paho when not connected: sent later
            mids.append(info.mid)
        while time.monotonic() < deadline and not self._closed:
            self._reconcile()
            if not any(mid in self._unacked for mid in mids):
                return
            time.sleep(0.05)  # poll interval for the acknowledgements
        missing = sum(mid in self._unacked for mid in mids)
        if missing:
            log.warning(
                "%d of %d set-point messages of %s not acknowledged within %.0f s (broker stalled or away); "
                "they are sent again after a reconnect",
                missing,
                len(mids),
                site_id,
                self.deadline_s,
            )

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until nothing is queued or unacknowledged (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._wake:
                idle = not self._pending and not self._sending
            if idle and self.unacked == 0:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._sender.join(timeout=self.deadline_s + 1)
        self.client.disconnect()
        self.client.loop_stop()
