"""Ingestion throughput: CSV into SQLite and PostgreSQL, and MQTT sustained, in one run.

Prints readings per second for --rows cumulative register readings (1-0:1.8.0, --meters meters,
15-minute steps) read from a CSV file and stored (file read, validation, differencing into
interval energy, bulk write, commit), once into a fresh SQLite file and once into a scratch
PostgreSQL schema; then MQTT messages per second for --mqtt-messages messages published at QoS 1
to Mosquitto by a separate process and stored through the subscriber, with the number stored
compared to the number sent. The last line is::

    ingest_pg <rate> ingest_sqlite <rate> mqtt <rate> lost <n>

Usage: .venv/bin/python bench/ingest.py [--rows 1000000] [--meters 1000] [--mqtt-messages 50000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.ingest.mqtt import MqttIngestor, MqttSettings
from grid.ingest.options import IngestOptions
from grid.ingest.pipeline import ingest_csv
from grid.store.schema import SensorKind
from grid.store.sites import SensorSpec, add_sensors, create_site
from grid.store.testing import scratch_store

START = pd.Timestamp("2025-01-01T00:00:00Z")


def write_csv(path: Path, rows: int, meters: int) -> None:
    """Register readings, meter by meter, each rising by 0..0.5 kWh per quarter-hour."""
    steps = rows // meters
    stamps = pd.date_range(START, periods=steps, freq="15min").strftime("%Y-%m-%dT%H:%M:%S+00:00").to_numpy()
    rng = np.random.default_rng(1)
    values = np.round(1000 + np.cumsum(rng.uniform(0, 0.5, (meters, steps)), axis=1), 3)
    frame = pd.DataFrame(
        {
            "meter_id": np.repeat([f"m{i:05d}" for i in range(meters)], steps),
            "timestamp": np.tile(stamps, meters),
            "obis": "1-0:1.8.0",
            "value": values.ravel(),
            "unit": "kWh",
        }
    )
    frame.to_csv(path, index=False)


def setup_site(engine: Engine, meters: int) -> None:
    create_site(engine, "bench")
    specs = [
        SensorSpec(f"m{i:05d}.import", SensorKind.HOUSEHOLD_LOAD, f"m{i:05d}", "1-0:1.8.0", max_power_kw=50)
        for i in range(meters)
    ]
    add_sensors(engine, "bench", specs)


def csv_rate(kind: str, path: Path, rows: int, meters: int, tmp: Path) -> float:
    with scratch_store(kind, tmp) as engine:
        setup_site(engine, meters)
        t0 = time.perf_counter()
        report = ingest_csv(engine, "bench", path, options=IngestOptions())
        seconds = time.perf_counter() - t0
        assert report.accepted == rows and report.balanced, report
    rate = rows / seconds
    print(f"csv -> {kind}: {rows:,} readings in {seconds:.2f} s = {rate:,.0f} readings/s", flush=True)
    return rate


PUBLISHER = r"""
import datetime as dt, json, sys, uuid
import paho.mqtt.client as mqtt
site, n, meters, part, parts = sys.argv[1], *map(int, sys.argv[2:6])
client_id = "bench-pub-" + uuid.uuid4().hex[:8]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
client.max_inflight_messages_set(200)  # paho slows down with thousands in flight
client.max_queued_messages_set(0)
client.connect("127.0.0.1", 1883)
client.loop_start()
start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # no pandas: the publisher starts in ~0.1 s
stamps = [(start + dt.timedelta(minutes=15 * k)).isoformat() for k in range(n // meters + 1)]
infos = []
for k in range(part, n, parts):
    meter, step = k % meters, k // meters
    payload = json.dumps({"ts": stamps[step], "value": 1000 + 0.25 * step, "unit": "kWh"})
    infos.append(client.publish(f"quartier/{site}/meters/m{meter:05d}/1-0:1.8.0", payload, qos=1))
for info in infos:
    info.wait_for_publish(120)
print("SENT", sum(i.is_published() for i in infos), flush=True)
client.disconnect()
client.loop_stop()
"""
PUBLISHERS = 2  # processes; one paho publisher tops out below the subscriber's rate

# A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket (--publisher raw): PUBLISH packets are
# built as bytes and written in blocks, PUBACKs counted by a reader thread; "sent" counts only the
# messages the broker acknowledged. It costs a few microseconds per message where paho costs ~80,
# so on a 2-core machine it measures the subscriber rather than the load generator. Paced at
# --mqtt-rate messages per second (0: as fast as it can; then a burst beyond the subscriber's rate
# overflows Mosquitto's per-client queue, max_queued_messages = 1000 by default, and the broker
# drops messages: "lost" counts them).
RAW_PUBLISHER = r"""
import datetime as dt, json, socket, sys, threading, time, uuid
site, n, meters, part, parts, rate = sys.argv[1], *map(int, sys.argv[2:7])
WINDOW = 20_000  # messages in flight (packet ids are 1..65535, never reused while in flight)

def packet(kind, body):
    size, length = len(body), b""
    while True:
        size, byte = divmod(size, 128)
        length += bytes([byte | (128 if size else 0)])
        if not size:
            return bytes([kind]) + length + body

def text(value):
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw

sock = socket.create_connection(("127.0.0.1", 1883))
client_id = "bench-raw-" + uuid.uuid4().hex[:8]
sock.sendall(packet(0x10, text("MQTT") + bytes([4, 0x02, 0, 0]) + text(client_id)))
acked, done, room = 0, threading.Event(), threading.Semaphore(WINDOW)
wanted = len(range(part, n, parts))

def read():
    global acked
    buffer = b""
    while acked < wanted:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        buffer += chunk
        pos = 0
        while True:  # complete packets from pos: type byte, remaining length (varint), body
            size, at, shift = 0, pos + 1, 0
            while at < len(buffer) and buffer[at] & 128:
                size, at, shift = size + ((buffer[at] & 127) << shift), at + 1, shift + 7
            if at >= len(buffer):
                break
            size, at = size + (buffer[at] << shift), at + 1
            if at + size > len(buffer):
                break
            if buffer[pos] == 0x40:  # PUBACK
                acked += 1
                room.release()
            pos = at + size
        buffer = buffer[pos:]
    done.set()

reader = threading.Thread(target=read, daemon=True)
reader.start()
start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
stamps = [(start + dt.timedelta(minutes=15 * k)).isoformat() for k in range(n // meters + 1)]
block, pid, began, count = [], 0, time.perf_counter(), 0
for k in range(part, n, parts):
    meter, step = k % meters, k // meters
    payload = json.dumps({"ts": stamps[step], "value": 1000 + 0.25 * step, "unit": "kWh"}).encode()
    pid = pid % 65535 + 1
    topic = text(f"quartier/{site}/meters/m{meter:05d}/1-0:1.8.0")
    room.acquire()
    block.append(packet(0x32, topic + pid.to_bytes(2, "big") + payload))
    count += 1
    if len(block) == 200:
        sock.sendall(b"".join(block))
        block = []
        if rate:  # paced: this publisher's share of --mqtt-rate messages per second
            ahead = count / (rate / parts) - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
sock.sendall(b"".join(block))
done.wait(120)
print("SENT", acked, flush=True)
sock.sendall(packet(0xE0, b""))  # DISCONNECT
sock.close()
"""


def mqtt_rate(n: int, meters: int, tmp: Path, publisher: str = "paho", pace: int = 0) -> tuple[float, int]:
    """Messages per second from the first publish to the last message stored; and how many of
    the messages sent are not in the store."""
    with scratch_store("sqlite", tmp) as engine:
        site = f"bench{uuid.uuid4().hex[:6]}"
        create_site(engine, site)
        specs = [
            SensorSpec(f"m{i:05d}.import", SensorKind.HOUSEHOLD_LOAD, f"m{i:05d}", "1-0:1.8.0") for i in range(meters)
        ]
        add_sensors(engine, site, specs)
        settings = MqttSettings(client_id=f"bench-{site}", session_expiry_s=60, batch_size=5000, batch_seconds=0.25)
        ingestor = MqttIngestor(engine, site, settings, IngestOptions())
        ingestor.start()
        assert ingestor.subscribed.wait(30), "no subscription"
        t0 = time.perf_counter()
        publishers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RAW_PUBLISHER if publisher == "raw" else PUBLISHER,
                    site,
                    str(n),
                    str(meters),
                    str(part),
                    str(PUBLISHERS),
                    str(pace),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for part in range(PUBLISHERS)
        ]
        deadline = time.monotonic() + 600
        stored = 0
        while stored < n and time.monotonic() < deadline:
            if ingestor.step(wait_s=1.0) is not None:
                stored = ingestor.stats.total.accepted + ingestor.stats.total.duplicates
        seconds = time.perf_counter() - t0
        sent = 0
        for pub in publishers:
            out, _ = pub.communicate(timeout=600)
            sent += int(out.split()[1]) if out.startswith("SENT") else 0
        ingestor.close()
        with engine.connect() as conn:
            in_store = int(conn.execute(sa.text("SELECT count(*) FROM register_readings")).scalar_one())
    lost = sent - in_store
    rate = in_store / seconds
    print(
        f"mqtt -> sqlite: {sent:,} sent, {in_store:,} stored in {seconds:.2f} s = {rate:,.0f} messages/s",
        flush=True,
    )
    return rate, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--mqtt-messages", type=int, default=50_000)
    parser.add_argument("--mqtt-meters", type=int, default=500)
    parser.add_argument(
        "--publisher",
        choices=["paho", "raw"],
        default="paho",
        help="MQTT load generator: paho clients (default) or a minimal socket client (measures the subscriber)",
    )
    parser.add_argument("--mqtt-rate", type=int, default=0, help="messages/s of the raw publisher (0: unpaced)")
    args = parser.parse_args()
    rows = args.rows - args.rows % args.meters
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "readings.csv"
        write_csv(path, rows, args.meters)
        print(
            f"{rows:,} register readings of {args.meters} meters, {path.stat().st_size / 1e6:.0f} MB CSV",
            flush=True,
        )
        sqlite = csv_rate("sqlite", path, rows, args.meters, tmp)
        pg = csv_rate("postgres", path, rows, args.meters, tmp)
        mqtt, lost = mqtt_rate(args.mqtt_messages, args.mqtt_meters, tmp, args.publisher, args.mqtt_rate)
    print(f"ingest_pg {pg:.0f} ingest_sqlite {sqlite:.0f} mqtt {mqtt:.0f} lost {lost}")


if __name__ == "__main__":
    main()
