"""Benchmark: the dashboard of the 300-household demo as a person opens it, in Debian's Chromium
(Playwright), and how long `grid --help` takes.

Without ``--url``, starts ``grid demo`` on a fresh output folder and SQLite store (as on a fresh
clone: history written and ingested, forecasts, the 48 h plan, then served) and reports the time
until ``/dashboard`` answers (``demo_ready_s``); ``--out`` reuses a folder (its cached history).
With ``--url`` and ``--key`` it measures a service already running.

Also prints ``demo_peak_rss_gb`` (the peak memory of ``grid demo``, after it stopped).

Per page (``/dashboard#<page>`` in a browser with nothing cached, signed in by its cookie): the
time until the page's charts are drawn (from navigation to the page marking itself loaded, plus
two animation frames), the bytes received (compressed, headers included, the Plotly bundle
included), and the slowest server time of its JSON requests (request sent to first byte). Ends
with one line:

    dashboard_max_ms <ms> max_kb <kb> cli_help_s <s>

(the slowest page, the heaviest page, the median of 3 runs of ``grid --help``).

Run: flock /tmp/bench.lock .venv/bin/python bench/dashboard.py [--url URL --key KEY] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
PAGES = ("overview", "grid", "assets", "forecasts", "performance", "scenarios")
GRID = Path(sys.executable).parent / "grid"
KEY = re.compile(r"^qk_[A-Za-z0-9_-]+$")
READY_POLL_S = 0.25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def demo(out: Path | None) -> Iterator[tuple[str, str, float]]:
    """`grid demo` on a free port: (url, admin key, seconds until /dashboard answered)."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        folder = out or Path(tmp) / "out"
        port = free_port()
        cmd = [str(GRID), "demo", "--out", str(folder), "--db", f"sqlite:///{tmp}/store.sqlite", "--port", str(port)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"},
        )
        key: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(f"  demo {time.perf_counter() - t0:6.1f} s | {line.rstrip()}", flush=True)
                if KEY.match(line.strip()):
                    key.append(line.strip())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        url = f"http://127.0.0.1:{port}"
        try:
            while True:  # until the service answers, or `grid demo` ends
                if proc.poll() is not None:
                    raise SystemExit(f"grid demo ended with {proc.returncode}")
                try:
                    if key and httpx.get(f"{url}/dashboard", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(READY_POLL_S)
            yield url, key[0], time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait()
            # the largest waited-for child (grid demo) at its peak, KiB on Linux
            print(f"demo_peak_rss_gb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20:.1f}", flush=True)


def frames(page: Any) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def measure_pages(url: str, key: str) -> list[tuple[str, float, int, float]]:
    """(page, ms until drawn, bytes received, slowest JSON server ms) per page, each in a fresh
    browser context that holds only the session cookie."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            signed = browser.new_context()
            r = signed.request.post(f"{url}/dashboard/session", data={"key": key})
            if not r.ok:
                raise SystemExit(f"sign-in refused: {r.status} {r.text()}")
            session = signed.storage_state()
            allowed = r.json()["pages"]
            signed.close()
            for name in PAGES:
                if name not in allowed:
                    continue
                context = browser.new_context(viewport={"width": 1280, "height": 800}, storage_state=session)
                page = context.new_page()
                received: list[int] = []
                server_ms: list[float] = []

                def finished(request: Any, received: list[int] = received, server_ms: list[float] = server_ms) -> None:
                    sizes = request.sizes()
                    received.append(sizes["responseBodySize"] + sizes["responseHeadersSize"])
                    if "/dashboard/api/" in request.url:
                        timing = request.timing
                        server_ms.append(timing["responseStart"] - timing["requestStart"])

                page.on("requestfinished", finished)
                t0 = time.perf_counter()
                page.goto(f"{url}/dashboard#{name}")
                page.wait_for_selector(f"body[data-loaded^={name}]", timeout=0)
                frames(page)
                drawn_ms = 1000 * (time.perf_counter() - t0)
                state = page.get_attribute("body", "data-loaded")
                page.wait_for_load_state("networkidle")
                if state != name:
                    print(f"  {name}: {state}: {page.inner_text('#error')}", flush=True)
                out.append((name, drawn_ms, sum(received), max(server_ms, default=0.0)))
                context.close()
        finally:
            browser.close()
    return out


def cli_help_s() -> float:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([str(GRID), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running service (else `grid demo` is started)")
    ap.add_argument("--key", help="an API key of the running service (with --url)")
    ap.add_argument("--out", type=Path, help="grid demo's output folder (default: a fresh one)")
    args = ap.parse_args()
    help_s = cli_help_s()
    if args.url:
        if not args.key:
            ap.error("--url needs --key")
        results = measure_pages(args.url.rstrip("/"), args.key)
    else:
        with demo(args.out) as (url, key, ready_s):
            print(f"demo_ready_s {ready_s:.1f}", flush=True)
            results = measure_pages(url, key)
    print(f"{'page':<12} {'drawn ms':>9} {'KB':>7} {'server ms':>10}")
    for name, ms, size, server in results:
        print(f"{name:<12} {ms:9.0f} {size / 1000:7.0f} {server:10.0f}")
    worst_ms = max(ms for _, ms, _, _ in results)
    worst_kb = max(size for _, _, size, _ in results) / 1000
    print(f"dashboard_max_ms {worst_ms:.0f} max_kb {worst_kb:.0f} cli_help_s {help_s:.2f}")


if __name__ == "__main__":
    main()
