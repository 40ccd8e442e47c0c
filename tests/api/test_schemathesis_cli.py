"""Schemathesis' own CLI against the served app: ``st run <openapi> --checks all`` must find nothing.

``grid serve`` runs as a subprocess on a free loopback port with a fresh SQLite store, two small
demo sites and a stored plan (so plan, set-point and KPI routes answer 200 too); ``st run`` gets
an admin key, a fixed seed and a bounded number of examples per operation. The refusals no
schema can state (the site's content, relations between parameters) are named in
``tests/api/st_hooks.py``; everything else counts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from tests.api.kit import Clock, demo_sites, make_app, service

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 30
SEED = 20260114


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):  # up to ~60 s of attempts: the service starts in a few seconds
        if proc.poll() is not None:
            raise AssertionError(f"grid serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"grid serve did not answer {url}:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a `grid serve` process on a store holding one plan of site demo."""
    tmp = tmp_path_factory.mktemp("st")
    sites = demo_sites(tmp)
    url = f"sqlite:///{tmp / 'store.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    clock = Clock()
    service(make_app(engine, sites, clock)).run("demo", clock())
    token = create_key(engine, "admin", ["*"])[1]
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "GRID_DATABASE_URL": url,
        "GRID_SITES": json.dumps({k: str(v) for k, v in sites.items()}),
        "GRID_MQTT_ENABLED": "false",
        "GRID_SCHEDULER_ENABLED": "false",
        "GRID_CLOCK_START": clock().isoformat(),
        "GRID_SOLVE_IN_SUBPROCESS": "false",
        "GRID_HORIZON_HOURS": "3",
        "GRID_SOLVER_TIME_LIMIT_S": "10",
        "GRID_SCENARIO_MAX_HOURS": "6",
        # st sends thousands of wrong keys from one address: past the burst they answer 429 (as
        # documented; tests/api/test_edges.py tests the limit), which its ST401 check does not expect
        "GRID_WRONG_KEY_BURST": "1000000",
    }
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "grid"), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_schemathesis_cli_finds_nothing(served: tuple[str, str], tmp_path: Path) -> None:
    base, token = served
    command = [
        str(BIN / "st"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"X-API-Key: {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.st_hooks", "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "44 selected / 44 total" in output, output  # every operation of the document was exercised
