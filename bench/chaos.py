"""Chaos replay of issue 12's fault cases against a real `grid serve` on a PRIVATE PostgreSQL and a
PRIVATE Mosquitto (free ports, temp directories; the machine's shared servers are never touched).

Cases (each prints PASS/FAIL with what it saw):

 1. crash_mid_solve     kill -9 of the service while a scheduled run solves: its worker processes
                        die with it; after a restart the run is marked failed and planned again
 2. db_outage           PostgreSQL stopped for --outage-s: set-point polls stay 200 (stale, with
                        the reason), other routes 503 + Retry-After, never 500; fresh after restart
 3. broker_stall        Mosquitto SIGSTOPped: a re-plan finishes anyway; /healthz says stalled
 4. broker_kill         Mosquitto kill -9 + restart: every asset's retained set-point is back
 5. mqtt_poison         a message stamped 9999-12-31 before 50 good ones: `grid mqtt-ingest` lives
                        on and stores the 50
 6. api_nul_row         one good row and one with a NUL byte: 200, the good row kept
 7. csv_stray_quote     100 data lines, a stray quote on line 12: every line accounted for
 8. big_body_no_key     100 MB of JSON without a key: 401/413, and the service's peak memory
                        (VmRSS sampled while it uploads) grows by less than 50 MB (not read into memory first)
 9. duplicate_api_key   two X-API-Key headers: refused (4xx) by the fast path and the route alike
10. wrong_key_flood     100 connections of wrong keys: answered 401/429; a real poller stays fast
11. poll_200c_replan    200 connections polling set-points while a 300-household site re-plans

Some of these (5-10) are fixed on other branches; on a branch without them they FAIL here.
Ends with exactly one line:

    chaos_cases <n> passed <n> readings_lost <n> setpoint_gap_s <s> poll_p99_200c_ms <ms>

``setpoint_gap_s``: the longest time during the database outage and the broker stall in which a
poller got no valid set-points. ``poll_p99_200c_ms`` comes from case 11 (wrk when installed, else
the httpx fallback of bench/poll.py).

Run by hand: .venv/bin/python bench/chaos.py [--outage-s 30] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from poll import make_sites, replan, wait_job, while_replanning

from grid.private_services import PrivateMosquitto, PrivatePostgres, alive, descendants, free_port
from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.schema import register_readings, sensors

ROOT = Path(__file__).resolve().parent.parent
CLOCK_START = "2026-01-14T01:00:00+00:00"
BOUND_S = 300.0  # a bound on waiting for a condition


@dataclass
class Case:
    name: str
    passed: bool
    note: str


@dataclass
class Totals:
    cases: list[Case] = field(default_factory=list)
    readings_lost: int = 0
    gaps_s: list[float] = field(default_factory=list)
    p99_200c_ms: float = float("nan")

    def record(self, name: str, passed: bool, note: str) -> None:
        self.cases.append(Case(name, passed, note))
        print(f"{'PASS' if passed else 'FAIL'} {name}: {note}", flush=True)


def until(condition: Callable[[], bool], bound_s: float = BOUND_S) -> bool:
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return False


class Service:
    """`grid serve` as a subprocess (restartable on the same port)."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from grid.cli import app; app()", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit("grid serve exited")
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        if not until(up):
            raise SystemExit("grid serve did not come up")

    def descendants(self) -> list[int]:
        assert self.proc is not None
        return descendants(self.proc.pid)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)


class Poller(threading.Thread):
    """Polls set-points every 50 ms; records (time, valid) per answer and the status counts."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{base}/api/v1/sites/demo/setpoints"
        self.headers = {"X-API-Key": token}
        self.stop = threading.Event()
        self.log: list[tuple[float, bool]] = []
        self.statuses: dict[int, int] = {}

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(self.url, headers=self.headers)
                    status, valid = r.status_code, r.status_code == 200 and bool(r.json().get("assets"))
                except httpx.HTTPError:
                    status, valid = 0, False
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.log.append((time.monotonic(), valid))
                time.sleep(0.05)

    def longest_gap_s(self, start: float, end: float) -> float:
        """Longest span in [start, end] without a valid answer."""
        last, gap = start, 0.0
        for t, valid in self.log:
            if start <= t <= end and valid:
                gap, last = max(gap, t - last), t
        return max(gap, end - last)


def db_count(engine: sa.Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar() or 0)


def stored_registers(engine: sa.Engine, meter_id: str, start: dt.datetime, end: dt.datetime) -> int:
    """Register readings (1-0:1.8.0) of `meter_id` stored with a time in [start, end)."""
    query = (
        sa.select(sa.func.count(sa.distinct(register_readings.c.ts)))
        .select_from(register_readings.join(sensors, sensors.c.id == register_readings.c.sensor_id))
        .where(
            sensors.c.meter_id == meter_id,
            sensors.c.obis == "1-0:1.8.0",
            register_readings.c.ts >= start,
            register_readings.c.ts < end,
        )
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def case_crash_mid_solve(t: Totals, svc: Service, engine: sa.Engine) -> None:
    running = "SELECT count(*) FROM schedule_runs WHERE site_id = 'big' AND status = 'running'"
    if not until(lambda: db_count(engine, running) > 0):
        t.record("crash_mid_solve", False, "no scheduled run of 'big' seen running")
        return
    time.sleep(1.0)  # into the solve
    workers = svc.descendants()
    svc.kill9()
    died = until(lambda: not any(alive(p) for p in workers), 120)
    svc.start()
    replanned = until(
        lambda: (
            db_count(engine, "SELECT count(*) FROM schedule_runs WHERE site_id = 'big' AND status LIKE 'optimal%'") > 0
        )
    )
    left = db_count(engine, running)
    t.record(
        "crash_mid_solve",
        bool(workers) and died and replanned and left == 0,
        f"{len(workers)} worker processes, all gone after kill -9: {died}; re-planned after restart: {replanned}; "
        f"runs left running: {left}",
    )


def case_db_outage(t: Totals, svc: Service, pg: PrivatePostgres, tokens: dict[str, str], outage_s: float) -> None:
    poller = Poller(svc.base, tokens["operator"])
    poller.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    pg.stop("immediate")
    time.sleep(min(outage_s, 3.0))
    other = httpx.get(f"{svc.base}/api/v1/sites/demo/plans", headers={"X-API-Key": tokens["operator"]}, timeout=30)
    stale = httpx.get(
        f"{svc.base}/api/v1/sites/demo/setpoints", headers={"X-API-Key": tokens["operator"]}, timeout=30
    ).json()
    time.sleep(max(0.0, outage_s - (time.monotonic() - t0)))
    t1 = time.monotonic()
    pg.start()
    fresh = until(
        lambda: (
            httpx.get(f"{svc.base}/api/v1/sites/demo/setpoints", headers={"X-API-Key": tokens["operator"]}, timeout=30)
            .json()
            .get("stale")
            is False
        ),
        120,
    )
    poller.stop.set()
    poller.join()
    gap = poller.longest_gap_s(t0, t1)
    t.gaps_s.append(gap)
    errors = sum(n for s, n in poller.statuses.items() if s >= 500 or s == 0)
    ok = (
        errors == 0
        and other.status_code == 503
        and "Retry-After" in other.headers
        and str(stale.get("stale_reason", "")).startswith("database unavailable")
        and fresh
    )
    t.record(
        "db_outage",
        ok,
        f"{outage_s:.0f} s outage: set-point answers {poller.statuses}, longest gap {gap:.2f} s; "
        f"GET plans {other.status_code} Retry-After {other.headers.get('Retry-After')}; "
        f"stale_reason {stale.get('stale_reason')!r}; fresh again: {fresh}",
    )


def case_broker_stall(t: Totals, svc: Service, broker: PrivateMosquitto, tokens: dict[str, str]) -> None:
    headers = {"X-API-Key": tokens["admin"]}
    poller = Poller(svc.base, tokens["operator"])
    poller.start()
    t0 = time.monotonic()
    broker.signal(signal.SIGSTOP)
    try:
        with httpx.Client(timeout=60) as client:
            job_url = replan(client, svc.base, "demo", headers)
            finished = until(
                lambda: client.get(svc.base + job_url, headers=headers).json()["status"] not in ("queued", "running"),
                120,
            )
            seconds = time.monotonic() - t0
            stalled = until(lambda: client.get(f"{svc.base}/healthz").json().get("mqtt_stalled") is True, 60)
    finally:
        broker.signal(signal.SIGCONT)
    t1 = time.monotonic()
    poller.stop.set()
    poller.join()
    gap = poller.longest_gap_s(t0, t1)
    t.gaps_s.append(gap)
    t.record(
        "broker_stall",
        finished and stalled,
        f"re-plan with the broker stopped finished: {finished} ({seconds:.1f} s); /healthz stalled: {stalled}; "
        f"set-point gap {gap:.2f} s",
    )


def retained(port: int, pattern: str, wait_s: float = 10.0) -> dict[str, dict[str, Any]]:
    got: dict[str, dict[str, Any]] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: got.__setitem__(m.topic, json.loads(m.payload)) if m.retain else None
    client.connect("127.0.0.1", port)
    client.subscribe(pattern, qos=1)
    client.loop_start()
    time.sleep(wait_s)  # retained messages arrive right after the subscription
    client.loop_stop()
    client.disconnect()
    return got


def case_broker_kill(t: Totals, svc: Service, broker: PrivateMosquitto) -> None:
    before = retained(broker.port, "quartier/demo/setpoints/#")
    broker.signal(signal.SIGKILL)
    broker.start()
    after: dict[str, dict[str, Any]] = {}

    def back() -> bool:
        after.update(retained(broker.port, "quartier/demo/setpoints/#", 3.0))
        return len(after) >= len(before) > 0

    ok = until(back, 90)
    t.record("broker_kill", ok, f"retained set-points before kill -9: {len(before)}, after restart: {len(after)}")


def case_mqtt_poison(t: Totals, env: dict[str, str], broker: PrivateMosquitto, engine: sa.Engine) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from grid.cli import app; app()",
            "mqtt-ingest",
            "--site",
            "demo",
            "--port",
            str(broker.port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        day = dt.datetime(2026, 1, 2, tzinfo=dt.UTC) + dt.timedelta(days=int(uuid.uuid4().int % 5))
        topic = "quartier/demo/meters/MTR-H001/1-0:1.8.0"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        # Subscribed once a reading of another meter, sent every 2 s, is stored (a fixed sleep lost
        # every message when the subscriber took longer than it to start on a loaded machine).
        probe_ts = day + dt.timedelta(hours=20)
        probe = json.dumps({"ts": probe_ts.isoformat(), "value": 500.0, "unit": "kWh"})

        probe_end = probe_ts + dt.timedelta(minutes=15)

        def listening() -> bool:
            client.publish("quartier/demo/meters/MTR-H005/1-0:1.8.0", probe, qos=1).wait_for_publish(10)
            return until(lambda: stored_registers(engine, "MTR-H005", probe_ts, probe_end) > 0, 2.0)

        until(listening, 120)
        poison = json.dumps({"ts": "9999-12-31T23:45:00+00:00", "value": 1, "unit": "kWh"}).encode()
        infos = [client.publish(topic, poison, qos=1)]
        for k in range(50):
            ts = (day + dt.timedelta(minutes=15 * k)).isoformat()
            infos.append(client.publish(topic, json.dumps({"ts": ts, "value": 1000.0 + k, "unit": "kWh"}), qos=1))
        for info in infos:
            info.wait_for_publish(30)
        client.loop_stop()
        client.disconnect()
        end = day + dt.timedelta(hours=13)
        until(lambda: stored_registers(engine, "MTR-H001", day, end) >= 50 or proc.poll() is not None, 60)
        stored = stored_registers(engine, "MTR-H001", day, end)
        living = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    t.readings_lost += 50 - stored
    t.record(
        "mqtt_poison", living and stored == 50, f"mqtt-ingest alive: {living}; good messages stored {stored} of 50"
    )


def case_api_nul_row(t: Totals, svc: Service, tokens: dict[str, str]) -> None:
    rows = [
        {"meter_id": "MTR-H002", "obis": "1-0:1.8.0", "ts": "2026-01-03T00:15:00+00:00", "value": 5.0, "unit": "kWh"},
        {
            "meter_id": "MTR-H002",
            "obis": "1-0:1.8.0",
            "ts": "2026-01-03T00:30:00+00:00",
            "value": 6.0,
            "unit": "kW\u0000h",
        },
    ]
    r = httpx.post(
        f"{svc.base}/api/v1/sites/demo/readings",
        json={"readings": rows},
        headers={"X-API-Key": tokens["ingest"]},
        timeout=60,
    )
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    kept = int(body.get("accepted", 0)) + int(body.get("duplicates", 0)) + int(body.get("revised", 0))
    t.readings_lost += 0 if kept >= 1 else 1
    t.record("api_nul_row", r.status_code == 200 and kept >= 1, f"status {r.status_code}, good rows kept {kept} of 1")


def case_csv_stray_quote(t: Totals, svc: Service, tokens: dict[str, str]) -> None:
    start = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)
    lines = ["meter_id,timestamp,obis,value,unit"]
    for k in range(100):
        ts = (start + dt.timedelta(minutes=15 * k)).isoformat()
        value = f'"{1000.5 + k:.3f}' if k == 10 else f"{1000.5 + k:.3f}"  # data line 11 = file line 12
        lines.append(f"MTR-H003,{ts},1-0:1.8.0,{value},kWh")
    r = httpx.post(
        f"{svc.base}/api/v1/sites/demo/readings/csv",
        files={"file": ("quote.csv", ("\n".join(lines) + "\n").encode(), "text/csv")},
        headers={"X-API-Key": tokens["ingest"]},
        timeout=60,
    )
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    counted = sum(int(body.get(k, 0)) for k in ("accepted", "duplicates", "revised")) + len(body.get("rejected", []))
    read = int(body.get("rows_read", 0))
    t.readings_lost += max(0, 99 - (counted - len(body.get("rejected", []))))
    t.record(
        "csv_stray_quote",
        read == 100 and counted == 100,
        f"status {r.status_code}, rows_read {read}, accounted {counted} of 100",
    )


def rss_mb(pid: int) -> float:
    """The resident memory of `pid` now (VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """The highest VmRSS of `pid` seen while running (sampled every 20 ms), MB."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb = pid, rss_mb(pid)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))


def case_big_body_no_key(t: Totals, svc: Service) -> None:
    assert svc.proc is not None
    before_mb = rss_mb(svc.proc.pid)
    sampler = RssSampler(svc.proc.pid)
    sampler.start()
    chunk = b" " * (1 << 20)

    def body() -> Any:
        yield b'{"readings": ['
        for _ in range(100):
            yield chunk
        yield b"]}"

    try:
        r = httpx.post(
            f"{svc.base}/api/v1/sites/demo/readings",
            content=body(),
            headers={"Content-Type": "application/json", "Content-Length": str(100 * (1 << 20) + 16)},
            timeout=120,
        )
        status = r.status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        status = 401  # the server answered (and closed) before reading it all: what it should do
        note = f"closed early ({type(exc).__name__})"
    else:
        note = f"status {status}"
    healthy = httpx.get(f"{svc.base}/healthz", timeout=30).status_code == 200
    sampler.stop.set()
    sampler.join()
    grown = sampler.peak_mb - before_mb
    t.record(
        "big_body_no_key",
        status in (401, 413) and healthy and grown < 50,
        f"{note}; service healthy after: {healthy}; peak memory grew by {grown:.0f} MB",
    )


def case_duplicate_api_key(t: Totals, svc: Service, tokens: dict[str, str]) -> None:
    url = f"{svc.base}/api/v1/sites/demo/setpoints"
    statuses = []
    with httpx.Client(timeout=30) as client:
        client.get(url, headers={"X-API-Key": tokens["operator"]})  # warm the fast path's caches
        for pair in ((tokens["operator"], "wrong"), ("wrong", tokens["operator"])):
            r = client.get(url, headers=[("X-API-Key", pair[0]), ("X-API-Key", pair[1])])
            statuses.append(r.status_code)
    t.record(
        "duplicate_api_key", all(400 <= s < 500 for s in statuses), f"statuses {statuses} (valid+wrong, wrong+valid)"
    )


def case_wrong_key_flood(t: Totals, svc: Service, tokens: dict[str, str], seconds: float) -> None:
    url = f"{svc.base}/api/v1/sites/demo/setpoints"
    quiet = asyncio.run(_latencies(url, {"X-API-Key": tokens["operator"]}, seconds / 2))
    flood_statuses: dict[int, int] = {}

    async def flood(stop: float) -> None:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def one() -> None:
                while time.monotonic() < stop:
                    r = await client.get(url, headers={"X-API-Key": f"wrong-{uuid.uuid4().hex}"})
                    flood_statuses[r.status_code] = flood_statuses.get(r.status_code, 0) + 1

            await asyncio.gather(*(one() for _ in range(100)))

    stop = time.monotonic() + seconds
    flooder = threading.Thread(target=lambda: asyncio.run(flood(stop)), daemon=True)
    flooder.start()
    loaded = asyncio.run(_latencies(url, {"X-API-Key": tokens["operator"]}, seconds * 0.8))
    flooder.join()
    p_quiet, p_flood = np.percentile(quiet, 99) * 1000, np.percentile(loaded, 99) * 1000
    ok = set(flood_statuses) <= {401, 429} and p_flood < 100.0
    t.record(
        "wrong_key_flood",
        ok,
        f"wrong-key answers {flood_statuses}; real poller p99 {p_flood:.1f} ms under the flood, {p_quiet:.1f} ms quiet "
        f"(ratio {p_flood / max(p_quiet, 1e-9):.1f})",
    )


async def _latencies(url: str, headers: dict[str, str], seconds: float) -> list[float]:
    out = []
    async with httpx.AsyncClient(timeout=30) as client:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            await client.get(url, headers=headers)
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)
    return out


def case_poll_200c_replan(t: Totals, svc: Service, tokens: dict[str, str], seconds: float) -> None:
    headers = {"X-API-Key": tokens["admin"]}
    try:
        (rps, p99), done = while_replanning(svc.base, headers, seconds, 200, etag=False)
    except SystemExit as exc:  # an error status during the phase
        t.record("poll_200c_replan", False, str(exc))
        return
    t.p99_200c_ms = p99
    t.record("poll_200c_replan", p99 < 100.0, f"{rps:.0f} req/s, p99 {p99:.1f} ms, {done} re-plans finished")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=30.0, help="Length of the database outage, seconds.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each load phase, seconds.")
    args = parser.parse_args()
    print(os.popen("uptime").read().strip())
    totals = Totals()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pg = PrivatePostgres()
        (tmp / "mqtt").mkdir()
        broker = PrivateMosquitto(tmp / "mqtt")
        svc: Service | None = None
        try:
            pg.start()
            broker.start()
            sites = make_sites(tmp)
            port = free_port()
            env = {
                **os.environ,
                "GRID_DATABASE_URL": pg.url,
                "GRID_SITES": json.dumps(sites),
                "GRID_CLOCK_START": CLOCK_START,
                "GRID_HORIZON_HOURS": "24",
                "GRID_MQTT_PORT": str(broker.port),
                "GRID_MQTT_PUBLISH_DEADLINE_S": "5",
                "GRID_PORT": str(port),
            }
            svc = Service(env, port)
            svc.start()
            engine = make_engine(pg.url)
            tokens = {r: create_key(engine, r, ["*"])[1] for r in ("operator", "admin", "ingest")}
            case_crash_mid_solve(totals, svc, engine)
            with httpx.Client(timeout=600) as client:
                wait_job(
                    client,
                    svc.base,
                    replan(client, svc.base, "demo", {"X-API-Key": tokens["admin"]}),
                    {"X-API-Key": tokens["admin"]},
                )
            case_db_outage(totals, svc, pg, tokens, args.outage_s)
            case_broker_stall(totals, svc, broker, tokens)
            case_broker_kill(totals, svc, broker)
            case_mqtt_poison(totals, env, broker, engine)
            case_api_nul_row(totals, svc, tokens)
            case_csv_stray_quote(totals, svc, tokens)
            case_big_body_no_key(totals, svc)
            case_duplicate_api_key(totals, svc, tokens)
            case_wrong_key_flood(totals, svc, tokens, args.seconds)
            case_poll_200c_replan(totals, svc, tokens, args.seconds)
            engine.dispose()
        finally:
            if svc is not None:
                svc.stop()
            broker.stop()
            pg.close()
    print(os.popen("uptime").read().strip())
    passed = sum(c.passed for c in totals.cases)
    gap = max(totals.gaps_s) if totals.gaps_s else float("nan")
    print(
        f"chaos_cases {len(totals.cases)} passed {passed} readings_lost {totals.readings_lost} "
        f"setpoint_gap_s {gap:.2f} poll_p99_200c_ms {totals.p99_200c_ms:.1f}"
    )


if __name__ == "__main__":
    main()
