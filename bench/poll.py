"""Benchmark: set-point polling against the real service (`grid serve`: uvicorn on 127.0.0.1,
SQLite, solves in a worker process), loaded by `wrk` (Debian package ``wrk``) from a second
process, or by an async httpx client in this process when wrk is not installed (much weaker: the
figures then measure the client).

Four phases of `--seconds` each with `--concurrency` connections polling
``GET /api/v1/sites/demo/setpoints``: plain; with If-None-Match (304s); and both again while the
service re-plans a 300-household site (`big`, 24 h) over and over. Then two plain phases with
`--wide` (200) connections, idle and while re-planning: back to back (a throughput test: every
connection sends its next request the moment the last answer arrives, so the load generator, the
service and the solver share the two cores at saturation), then as pollers: each connection polls
about `--poll-rate` (20) times a second (random pauses of mean 1/rate; 200 x 20 = 4,000 polls/s
offered, as many as 48,000 devices polling every 12 s). Ends with one line:

    poll_rps <n> p99_ms <ms> poll_rps_solving <n> p99_ms_solving <ms> p99_ms_200c <ms> p99_ms_200c_solving <ms>
    p99_ms_200c_paced <ms> p99_ms_200c_paced_solving <ms>

(the plain phases; the If-None-Match figures are printed above it).

Run by hand: .venv/bin/python bench/poll.py [--seconds 10] [--concurrency 16] [--port 8771]
(``apt-get install wrk`` first for the real figures)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from grid.demo import generate_demo
from grid.store.apikeys import create_key
from grid.store.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent
CLOCK_START = "2026-01-14T01:00:00+00:00"


def make_sites(tmp: Path) -> dict[str, str]:
    small = generate_demo(tmp / "demo", n_households=20, hours=48)
    big = generate_demo(tmp / "big-src", n_households=300, hours=48)
    big_dir = tmp / "big"
    shutil.copytree(big.parent, big_dir)
    big_yaml = big_dir / big.name
    big_yaml.write_text(big_yaml.read_text(encoding="utf-8").replace("\n  id: demo\n", "\n  id: big\n", 1), "utf-8")
    return {"demo": str(small), "big": str(big_yaml)}


def start_server(tmp: Path, sites: dict[str, str], port: int) -> tuple[subprocess.Popen[bytes], str]:
    db = f"sqlite:///{tmp / 'bench.sqlite'}"
    env = {
        **os.environ,
        "GRID_DATABASE_URL": db,
        "GRID_SITES": json.dumps(sites),
        "GRID_CLOCK_START": CLOCK_START,
        "GRID_HORIZON_HOURS": "24",
        "GRID_SCHEDULER_ENABLED": "false",
        "GRID_MQTT_ENABLED": "false",
    }
    code = f"from api.cli import serve_command; serve_command(host='127.0.0.1', port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return proc, db


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("the server exited")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not come up")


def replan(client: httpx.Client, base: str, site: str, headers: dict[str, str]) -> str:
    """Trigger a re-plan of `site`; returns the job URL."""
    r = client.post(f"{base}/api/v1/sites/{site}/plans/trigger", headers=headers)
    r.raise_for_status()
    return str(r.json()["job_url"])


def wait_job(client: httpx.Client, base: str, url: str, headers: dict[str, str]) -> dict[str, object]:
    while True:
        job: dict[str, object] = client.get(base + url, headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)


async def poll(
    base: str, headers: dict[str, str], seconds: float, concurrency: int, etag: bool, rate: float = 0.0
) -> tuple[float, float]:
    """(requests per second, p99 latency ms) of `concurrency` clients polling for `seconds`, back to
    back or, with `rate` > 0, each about `rate` times a second (random pauses of mean 1/rate)."""
    rng = np.random.default_rng(0)
    latencies: list[float] = []
    url = f"{base}/api/v1/sites/demo/setpoints?horizon=4"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        first = await client.get(url, headers=headers)
        tag = first.headers["ETag"]
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            h = {**headers, "If-None-Match": tag} if etag else headers
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.get(url, headers=h)
                if r.status_code not in (200, 304):
                    raise SystemExit(f"unexpected status {r.status_code}")
                latencies.append(time.perf_counter() - t0)
                if rate > 0:
                    await asyncio.sleep(rng.uniform(0.0, 2.0 / rate))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, float(np.percentile(latencies, 99) * 1000)


def wrk(url: str, headers: dict[str, str], seconds: float, concurrency: int, rate: float = 0.0) -> tuple[float, float]:
    """(requests per second, p99 latency ms) measured by wrk with one thread: back to back or, with
    `rate` > 0, each connection pausing a random 0 to 2/rate s after each answer (wrk's ``delay()``)."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory() as tmp:
        if rate > 0:
            script = Path(tmp) / "paced.lua"
            script.write_text(f"function delay()\n  return math.random(0, {round(2000 / rate)})\nend\n", "utf-8")
            cmd += ["-s", str(script)]
        out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([0-9.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rps, float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def measure(
    base: str, headers: dict[str, str], seconds: float, concurrency: int, etag: bool, rate: float = 0.0
) -> tuple[float, float]:
    """One polling phase, with wrk when installed (`rate`: polls per second per connection, 0:
    back to back)."""
    if shutil.which("wrk") is None:
        return asyncio.run(poll(base, headers, seconds, concurrency, etag, rate))
    url = f"{base}/api/v1/sites/demo/setpoints?horizon=4"
    h = dict(headers)
    if etag:
        h["If-None-Match"] = httpx.get(url, headers=headers).headers["ETag"]
    return wrk(url, h, seconds, concurrency, rate)


SETPOINT_BUCKET = re.compile(
    r'^quartiere_http_request_duration_seconds_bucket\{le="([^"]+)",method="GET",'
    r'route="/api/v1/sites/\{site\}/setpoints",status="(?:200|304)"\} ([0-9.e+]+)$'
)


def server_buckets(base: str) -> dict[float, float]:
    """Cumulative counts of the service's own set-point latency histogram (from /metrics), per bound."""
    counts: dict[float, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        found = SETPOINT_BUCKET.match(line)
        if found:
            bound = float(found.group(1))
            counts[bound] = counts.get(bound, 0.0) + float(found.group(2))
    return counts


def server_p99_bound_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The smallest histogram bound (ms) under which 99 % of the requests between two readings were
    answered, as the service measures them (from the ASGI call to the last byte handed to uvicorn)."""
    delta = {b: after.get(b, 0.0) - before.get(b, 0.0) for b in after}
    total = delta.get(float("inf"), 0.0)
    return min((b * 1000 for b, n in delta.items() if total and n >= 0.99 * total), default=float("nan"))


class Replanner(threading.Thread):
    """Re-plans `site` through the API back to back until stopped; counts finished runs."""

    def __init__(self, base: str, site: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base, self.site, self.headers = base, site, headers
        self.stop = threading.Event()
        self.done = 0

    def run(self) -> None:
        with httpx.Client(timeout=600) as client:
            while not self.stop.is_set():
                url = replan(client, self.base, self.site, self.headers)
                while not self.stop.is_set():
                    if client.get(self.base + url, headers=self.headers).json()["status"] not in ("queued", "running"):
                        self.done += 1
                        break
                    time.sleep(0.2)


def while_replanning(
    base: str, headers: dict[str, str], seconds: float, concurrency: int, etag: bool, rate: float = 0.0
) -> tuple[tuple[float, float], int]:
    """One polling phase while `big` is re-planned back to back; (rps, p99 ms), re-plans finished."""
    replanner = Replanner(base, "big", headers)
    replanner.start()
    time.sleep(0.5)  # let the first solve start
    try:
        return measure(base, headers, seconds, concurrency, etag, rate), replanner.done
    finally:
        replanner.stop.set()
        replanner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--wide", type=int, default=200, help="Connections of the last four phases.")
    parser.add_argument("--poll-rate", type=float, default=20.0, help="Polls per second per paced connection.")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        proc, db = start_server(tmp, make_sites(tmp), args.port)
        try:
            wait_ready(base, proc)
            token = create_key(make_engine(db), "admin", ["*"])[1]
            headers = {"X-API-Key": token}
            with httpx.Client(timeout=600) as client:
                job = wait_job(client, base, replan(client, base, "demo", headers), headers)
                assert job["status"] == "succeeded", job
                t0 = time.perf_counter()
                big = wait_job(client, base, replan(client, base, "big", headers), headers)
                print(
                    f"one re-plan of the 300-household site (24 h): {time.perf_counter() - t0:.2f} s ({big['status']})"
                )
                print(f"load generator: {'wrk' if shutil.which('wrk') else 'httpx (in this process)'}")
                plain = measure(base, headers, args.seconds, args.concurrency, etag=False)
                cond = measure(base, headers, args.seconds, args.concurrency, etag=True)
                print(f"plain:         {plain[0]:8.1f} req/s  p99 {plain[1]:7.1f} ms")
                print(f"If-None-Match: {cond[0]:8.1f} req/s  p99 {cond[1]:7.1f} ms")
                solving: list[tuple[float, float]] = []
                jobs = 0
                for etag in (False, True):
                    phase, done = while_replanning(base, headers, args.seconds, args.concurrency, etag)
                    solving.append(phase)
                    jobs += done
                print(f"solving, plain:         {solving[0][0]:8.1f} req/s  p99 {solving[0][1]:7.1f} ms")
                print(f"solving, If-None-Match: {solving[1][0]:8.1f} req/s  p99 {solving[1][1]:7.1f} ms")
                print(f"re-plans finished during the solving phases: {jobs}")
                b0 = server_buckets(base)
                wide = measure(base, headers, args.seconds, args.wide, etag=False)
                b1 = server_buckets(base)
                wide_solving, done = while_replanning(base, headers, args.seconds, args.wide, False)
                b2 = server_buckets(base)
                print(
                    f"{args.wide} connections:          {wide[0]:8.1f} req/s  p99 {wide[1]:7.1f} ms "
                    f"(in the service: p99 <= {server_p99_bound_ms(b0, b1):.0f} ms)"
                )
                print(
                    f"{args.wide} connections, solving: {wide_solving[0]:8.1f} req/s  p99 {wide_solving[1]:7.1f} ms "
                    f"(in the service: p99 <= {server_p99_bound_ms(b1, b2):.0f} ms; {done} re-plans finished)"
                )
                paced = measure(base, headers, args.seconds, args.wide, False, args.poll_rate)
                paced_solving, done = while_replanning(base, headers, args.seconds, args.wide, False, args.poll_rate)
                print(
                    f"{args.wide} pollers at {args.poll_rate:g}/s each: {paced[0]:8.1f} req/s  p99 {paced[1]:7.1f} ms; "
                    f"solving: {paced_solving[0]:8.1f} req/s  p99 {paced_solving[1]:7.1f} ms ({done} re-plans finished)"
                )
        finally:
            proc.terminate()
            proc.wait(30)
    rps, p99 = plain
    rps_s, p99_s = solving[0]
    print(
        f"poll_rps {rps:.0f} p99_ms {p99:.1f} poll_rps_solving {rps_s:.0f} p99_ms_solving {p99_s:.1f} "
        f"p99_ms_200c {wide[1]:.1f} p99_ms_200c_solving {wide_solving[1]:.1f} "
        f"p99_ms_200c_paced {paced[1]:.1f} p99_ms_200c_paced_solving {paced_solving[1]:.1f}"
    )


if __name__ == "__main__":
    main()
