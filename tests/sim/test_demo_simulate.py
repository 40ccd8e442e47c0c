"""`grid demo --simulate-days`, run as a person runs it: the served API moves with the simulator's
clock (plans computed at simulated quarter-hours, set-points served, performance measured)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd

from grid.domain import load_site
from grid.series import load_inputs

ROOT = Path(__file__).resolve().parents[2]
KEY_LINE = re.compile(r"^admin key for site demo \(shown once\): (\S+)$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, what: str, proc: subprocess.Popen[str], attempts: int = 1200) -> object:
    """Poll `check()` (every 0.25 s) until it returns something truthy; fail if the process ends."""
    for _ in range(attempts):
        if proc.poll() is not None:
            raise AssertionError(f"grid demo exited ({proc.returncode}) while waiting for {what}")
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def test_demo_serves_the_simulation_on_its_clock(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "COLUMNS": "80", "GRID_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite'}"}
    cmd = [sys.executable, "-m", "grid.cli", "demo", "--simulate-days", "0.25", "--no-history", "--pace-s", "0"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    try:

        def key() -> str | None:
            found = [m.group(1) for m in map(KEY_LINE.match, (s.strip() for s in lines)) if m]
            return found[0] if found else None

        token = str(_wait(key, "the admin key line", proc))
        base, h = f"http://127.0.0.1:{port}/api/v1/sites/demo", {"X-API-Key": token}
        start = pd.Timestamp(load_inputs(load_site(ROOT / "data" / "demo" / "site.yaml")).index[0]).tz_convert("UTC")

        def plan_times() -> set[pd.Timestamp]:
            try:
                r = httpx.get(f"{base}/plans/latest", headers=h, timeout=10)
            except httpx.HTTPError:
                return set()
            if r.status_code != 200:
                return set()
            seen.add(pd.Timestamp(r.json()["computed_at"]))
            return seen if len(seen) >= 3 else set()

        seen: set[pd.Timestamp] = set()
        times = sorted(_wait(plan_times, "three plans", proc))  # type: ignore[arg-type]
        # computed on the simulated clock: inside the simulated quarter day, not today's wall clock
        assert all(start <= t <= start + pd.Timedelta(hours=6) for t in times), (start, times)
        points = httpx.get(f"{base}/setpoints", headers=h, timeout=10)
        assert points.status_code == 200 and points.json()["assets"], points.text[:300]

        def realised() -> dict[str, object] | None:
            end = (start + pd.Timedelta(hours=6)).isoformat()
            r = httpx.get(f"{base}/performance", params={"start": start.isoformat(), "end": end}, headers=h, timeout=30)
            body = r.json() if r.status_code == 200 else {}
            return body if body.get("evaluated_intervals", 0) > 0 else None

        perf = _wait(realised, "realised intervals in /performance", proc)
        assert perf
    finally:
        proc.terminate()
        proc.wait(60)
    assert "Traceback" not in "".join(lines), "".join(lines)[-3000:]
