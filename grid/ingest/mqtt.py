"""MQTT subscriber: meter messages -> batches -> the one ingestion path, without losing any.

Topic ``quartier/<site>/meters/<meter_id>/<obis>``, payload ``{"ts": ISO 8601, "value": number,
"unit": str}`` (see :mod:`grid.ingest.payload`). With ``live`` (the default) also device state
``quartier/<site>/devices/<asset_id>/state`` (``{ts, soc_kwh | soc_pct | store_kwh | power_kw}``,
:mod:`grid.ingest.telemetry`) and EV session events
``quartier/<site>/chargers/<charger_id>/session`` (``{"event": arrival | change | plug_out, ...}``,
:mod:`grid.ingest.sessions`): the meter messages of a batch go through the meter path, the device
states through the telemetry path (one batch each), the session events one by one; a refused one
is a rejected record, acknowledged like the rest. Storing a batch again after a failure stores
nothing twice (duplicates).

No acknowledged message is lost:

* MQTT 5 with ``clean_start=False`` and a session expiry interval: the broker keeps the
  subscription and queues QoS 1 messages while the subscriber is away (and, with broker
  persistence, across a broker restart).
* ``manual_ack=True``: a message is acknowledged (PUBACK) only after the batch that holds it has
  committed. A crash before that means the broker delivers it again on the next connection; the
  store's idempotency turns the repeat into a duplicate.
* ``Receive Maximum`` is raised so that a whole batch can be in flight unacknowledged.
* Packet ids are per connection: messages received before a reconnect are not acknowledged on the
  new connection (the broker sends them again anyway).

A malformed message becomes a rejected record of its batch; the subscriber keeps running. If a
batch cannot be stored, it is kept (unacknowledged) and retried after ``retry_seconds``:

* the database is unreachable (an ``OperationalError`` / ``InterfaceError``, a pool timeout): the
  failure is not the messages' fault, so the batch is retried whole until the database is back;
* any other error (a message the validator let through but the database refuses): the batch is
  retried once, and when it fails a second time it is split in halves, recursively, until every
  message that cannot be stored on its own is isolated. Each such message is stored as a rejected
  record with the error as its reason (``could not be stored: ...``) and acknowledged; the good
  messages around it are stored as usual. So one poison message never stops ingestion, and the
  broker's redelivery never replays it into a crash loop.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import Engine

from grid.broker import BrokerAuth
from grid.ingest.options import IngestOptions
from grid.ingest.payload import TOPIC_PREFIX, messages_frame
from grid.ingest.pipeline import ingest
from grid.ingest.records import empty_frame
from grid.ingest.report import IngestReport, Rejected, Source
from grid.ingest.sessions import session_message
from grid.ingest.telemetry import ingest_telemetry, message_item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttSettings:
    """Broker, session and batching settings (seconds, counts)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str | None = None  # default: quartiere-ingest-<site>; must be stable across restarts
    prefix: str = TOPIC_PREFIX
    batch_size: int = 5000
    batch_seconds: float = 0.5
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    receive_maximum: int = 65535
    retry_seconds: float = 2.0
    auth: BrokerAuth | None = None  # credentials and TLS; default: the GRID_MQTT_* variables
    live: bool = True  # also device state and EV session topics (see the module docstring)


@dataclass
class _Inbox:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass
class MqttStats:
    """Running totals of a subscriber."""

    batches: int = 0
    messages: int = 0
    acked: int = 0
    failures: int = 0  # attempts to store a batch that failed
    splits: int = 0  # batches split to isolate messages that cannot be stored
    unstorable: int = 0  # messages stored as rejected records because storing them failed
    connects: int = 0
    total: IngestReport = field(default_factory=lambda: IngestReport(Source("mqtt", "")))


class MqttIngestor:
    """Subscribe to a site's meter topics and ingest the messages in batches.

    Use :meth:`start`, then :meth:`run` (blocking until `stop` is set) or :meth:`step` (one
    batch), and :meth:`close`.
    """

    def __init__(
        self,
        engine: Engine,
        site_id: str,
        settings: MqttSettings | None = None,
        options: IngestOptions | None = None,
        on_batch: Callable[[IngestReport], None] | None = None,
    ) -> None:
        self.engine = engine
        self.site_id = site_id
        self.settings = settings or MqttSettings()
        self.options = options or IngestOptions()
        self.on_batch = on_batch
        self.client_id = self.settings.client_id or f"quartiere-ingest-{site_id}"
        self.topic = f"{self.settings.prefix}/{site_id}/meters/+/+"
        self.topics = [self.topic]
        if self.settings.live:
            self.topics += [
                f"{self.settings.prefix}/{site_id}/devices/+/state",
                f"{self.settings.prefix}/{site_id}/chargers/+/session",
            ]
        self.stats = MqttStats()
        self.stats.total.source = Source("mqtt", self.topic)
        self.subscribed = threading.Event()
        # appended by the network thread, taken by the ingesting thread (deque: no lock per message)
        self._inbox: deque[_Inbox] = deque()
        self._arrived = threading.Event()
        self._generation = 0
        self._retry: list[_Inbox] = []
        self._retry_failures = 0  # failed attempts (not outages) of the batch in _retry
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)

    # --- network thread ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connect refused: %s", reason)
            return
        with self._lock:
            self._generation += 1
            self.stats.connects += 1
        log.info("MQTT connected (session present: %s)", flags.session_present)
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.subscribed.clear()
        log.info("MQTT disconnected: %s", reason)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # runs on the network thread, like _on_connect, the only writer of _generation
        self._inbox.append(_Inbox(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload)))
        if not self._arrived.is_set():
            self._arrived.set()

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background, retrying) and start the network thread."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        (self.settings.auth or BrokerAuth.from_env()).apply(self.client)
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def close(self) -> None:
        """Disconnect (the broker keeps the session) and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, stop: threading.Event) -> None:
        """Ingest batches until `stop` is set."""
        while not stop.is_set():
            self.step(wait_s=0.2)

    # --- batching ---------------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Messages received but not yet stored."""
        return len(self._inbox) + len(self._retry)

    def _collect(self, wait_s: float) -> list[_Inbox]:
        batch = self._retry
        self._retry = []
        size = self.settings.batch_size
        first_by = time.monotonic() + wait_s
        deadline: float | None = None
        while len(batch) < size:
            if batch and deadline is None:  # the batch collects for batch_seconds from its first message
                deadline = time.monotonic() + self.settings.batch_seconds
            try:
                batch.append(self._inbox.popleft())
                continue
            except IndexError:
                pass
            remaining = (deadline if deadline is not None else first_by) - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            if not self._inbox:  # nothing arrived between popleft and clear: wait for the next one
                self._arrived.wait(remaining)
        return batch

    def step(self, wait_s: float = 0.2) -> IngestReport | None:
        """Collect one batch (by count or time), store it, then acknowledge its messages.

        Returns the batch report (the sum of its parts when it had to be split), or None when
        nothing arrived within `wait_s` or the batch could not be stored (it is retried on the
        next call; see the module docstring). Never raises for what a message holds.
        """
        batch = self._collect(wait_s)
        if not batch:
            return None
        report: IngestReport | None
        try:
            report = self._store(batch)
        except Exception as exc:  # whatever failed, the batch is retried or split
            report = self._after_failure(batch, exc)
        if report is None:
            return None
        self._retry_failures = 0
        with self._lock:
            generation = self._generation
        for m in batch:
            if m.generation == generation and m.qos > 0:
                self.client.ack(m.mid, m.qos)
                self.stats.acked += 1
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.total.merge(report)
        if self.on_batch is not None:
            self.on_batch(report)
        return report

    def _store(self, batch: list[_Inbox]) -> IngestReport:
        """Store `batch`: its meter messages as one ingestion batch (all or nothing), its device
        states as one telemetry batch, its session events one by one."""
        meters: list[_Inbox] = []
        states: list[_Inbox] = []
        sessions: list[_Inbox] = []
        for m in batch:
            kind = self._live_kind(m.topic)
            (states if kind == "devices" else sessions if kind == "chargers" else meters).append(m)
        if not (states or sessions):
            records, rejected = messages_frame([(m.topic, m.payload) for m in batch], self.site_id)
            return ingest(self.engine, self.site_id, records, self._source(batch), self.options, rejected)
        now = pd.Timestamp(self.options.now if self.options.now is not None else pd.Timestamp.now("UTC"))
        total = IngestReport(Source("mqtt", self.topic))
        for m in sessions:
            charger = m.topic.split("/")[3]
            total.merge(session_message(self.engine, self.site_id, m.topic, charger, m.payload, now))
        if states:
            items = [message_item(m.topic, m.topic.split("/")[3], m.payload) for m in states]
            source = Source("mqtt", f"{self.settings.prefix}/{self.site_id}/devices/+/state")
            report = ingest_telemetry(self.engine, self.site_id, items, source, now)
            total.merge(report)
            total.batch_id = report.batch_id
        if meters:
            records, rejected = messages_frame([(m.topic, m.payload) for m in meters], self.site_id)
            report = ingest(self.engine, self.site_id, records, self._source(meters), self.options, rejected)
            total.merge(report)
            total.batch_id = report.batch_id
        return total

    def _live_kind(self, topic: str) -> str | None:
        """``devices`` or ``chargers`` for a well-formed live topic of this site, else None (the
        meter path takes it, and refuses a topic it does not know)."""
        parts = topic.split("/")
        if not self.settings.live or len(parts) != 5 or parts[0] != self.settings.prefix or parts[1] != self.site_id:
            return None
        if parts[2] == "devices" and parts[3] and parts[4] == "state":
            return "devices"
        if parts[2] == "chargers" and parts[3] and parts[4] == "session":
            return "chargers"
        return None

    def _source(self, batch: list[_Inbox]) -> Source:
        digest = hashlib.sha256()
        for m in batch:
            digest.update(f"{m.topic}\0{len(m.payload)}\0".encode())
            digest.update(m.payload)
        return Source("mqtt", self.topic, digest.hexdigest())

    def _after_failure(self, batch: list[_Inbox], exc: Exception) -> IngestReport | None:
        """Keep `batch` for a retry (None), or, on its second failure not due to an outage, split
        it and return the report of its parts."""
        self.stats.failures += 1
        if not is_outage(exc):
            self._retry_failures += 1
            if self._retry_failures >= 2:
                try:
                    return self._split(batch, exc)
                except Exception as again:  # an outage while splitting: retry later
                    exc = again
        log.error(
            "storing an MQTT batch of %d messages failed (%s: %s); retrying in %g s",
            len(batch),
            type(exc).__name__,
            exc,
            self.settings.retry_seconds,
        )
        self._retry = batch
        time.sleep(self.settings.retry_seconds)  # back off before retrying
        return None

    def _split(self, batch: list[_Inbox], exc: Exception) -> IngestReport:
        """Store the halves of a failing batch, splitting again where a half fails; a single
        message that fails becomes a rejected record. Raises on an outage (nothing is
        acknowledged then; halves already stored come back as duplicates)."""
        if len(batch) == 1:
            return self._store_unstorable(batch[0], exc)
        self.stats.splits += 1
        half = len(batch) // 2
        total = IngestReport(Source("mqtt", self.topic))
        for part in (batch[:half], batch[half:]):
            try:
                report = self._store(part)
            except Exception as failure:  # isolate the message(s) at fault
                if is_outage(failure):
                    raise
                report = self._split(part, failure)
            total.merge(report)
            total.batch_id = report.batch_id
        return total

    def _store_unstorable(self, message: _Inbox, exc: Exception) -> IngestReport:
        """A batch of one rejected record: the message and why storing it failed."""
        what = f"could not be stored: {type(exc).__name__}: {exc}"
        rejected = Rejected(
            message.topic,
            "payload",
            None,
            what[:2000],
            message.payload.decode("utf-8", errors="replace")[:100_000],
        )
        log.warning("MQTT message on %s rejected: %s", message.topic, what)
        self.stats.unstorable += 1
        return ingest(self.engine, self.site_id, empty_frame(), self._source([message]), self.options, [rejected])


_OUTAGE_NAMES = {"OperationalError", "InterfaceError", "TimeoutError", "ConnectionError", "DisconnectionError"}


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be used (connection lost or refused, pool timed
    out, database locked) rather than that it refuses the data: then retrying the same batch
    later is right and splitting it would not help. Judged by the DB-API error classes (PEP 249),
    of the exception and of the driver error it wraps."""
    for err in (exc, getattr(exc, "orig", None), exc.__cause__):
        if err is not None and any(c.__name__ in _OUTAGE_NAMES for c in type(err).__mro__):
            return True
        if getattr(err, "connection_invalidated", False):
            return True
    return False
