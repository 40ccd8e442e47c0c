"""Benchmark: set-point polling against the real service (uvicorn on 127.0.0.1, SQLite), from an
async httpx client in this (second) process.

Four phases of `--seconds` each with `--concurrency` clients polling
``GET /api/v1/sites/demo/setpoints``: plain; with If-None-Match (304s); and both again while the
service re-plans a 300-household site (`big`, 24 h) over and over in its background thread. Ends
with one line:

    poll_rps <n> p99_ms <ms> poll_rps_solving <n> p99_ms_solving <ms>

(the plain phases; the If-None-Match figures are printed above it).

Run by hand: .venv/bin/python bench/poll.py [--seconds 10] [--concurrency 16] [--port 8771]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


async def poll(base: str, headers: dict[str, str], seconds: float, concurrency: int, etag: bool) -> tuple[float, float]:
    """(requests per second, p99 latency ms) of `concurrency` clients polling for `seconds`."""
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

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, float(np.percentile(latencies, 99) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8771)
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
                plain = asyncio.run(poll(base, headers, args.seconds, args.concurrency, etag=False))
                cond = asyncio.run(poll(base, headers, args.seconds, args.concurrency, etag=True))
                print(f"plain:         {plain[0]:8.1f} req/s  p99 {plain[1]:7.1f} ms")
                print(f"If-None-Match: {cond[0]:8.1f} req/s  p99 {cond[1]:7.1f} ms")
                solving: list[tuple[float, float]] = []
                jobs = 0
                for etag in (False, True):
                    done = asyncio.Event()

                    async def solver_loop(done: asyncio.Event = done) -> int:
                        n = 0
                        async with httpx.AsyncClient(timeout=600) as ac:
                            while not done.is_set():
                                r = await ac.post(f"{base}/api/v1/sites/big/plans/trigger", headers=headers)
                                url = r.json()["job_url"]
                                while not done.is_set():
                                    status = (await ac.get(base + url, headers=headers)).json()["status"]
                                    if status not in ("queued", "running"):
                                        n += 1
                                        break
                                    await asyncio.sleep(0.2)
                        return n

                    async def phase(etag: bool = etag, done: asyncio.Event = done) -> tuple[tuple[float, float], int]:
                        task = asyncio.create_task(solver_loop())
                        await asyncio.sleep(0.5)  # let the first solve start
                        result = await poll(base, headers, args.seconds, args.concurrency, etag)
                        done.set()
                        return result, await task

                    result, n = asyncio.run(phase())
                    solving.append(result)
                    jobs += n
                print(f"solving, plain:         {solving[0][0]:8.1f} req/s  p99 {solving[0][1]:7.1f} ms")
                print(f"solving, If-None-Match: {solving[1][0]:8.1f} req/s  p99 {solving[1][1]:7.1f} ms")
                print(f"re-plans finished during the solving phases: {jobs}")
        finally:
            proc.terminate()
            proc.wait(30)
    rps, p99 = plain
    rps_s, p99_s = solving[0]
    print(f"poll_rps {rps:.0f} p99_ms {p99:.1f} poll_rps_solving {rps_s:.0f} p99_ms_solving {p99_s:.1f}")


if __name__ == "__main__":
    main()
