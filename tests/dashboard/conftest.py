"""One served app per test module: the real app (tests/api/kit.py make_app) on a SQLite store with
the two small demo sites, planned once, behind uvicorn on a free loopback port; Debian's Chromium
driven by Playwright. Screenshots go to test-artifacts/dashboard/ (gitignored)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from grid.store.apikeys import create_key
from grid.store.testing import scratch_store
from tests.api.kit import Clock, demo_sites, make_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@dataclass
class Served:
    url: str
    app: FastAPI
    keys: dict[str, str]

    def api(self, path: str, role: str = "admin", **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", headers={"X-API-Key": self.keys[role]}, params=params, timeout=30)
        r.raise_for_status()
        return r.json() if "json" in r.headers["content-type"] else r.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("dashboard")
    sites = demo_sites(directory)
    with scratch_store("sqlite", directory) as engine:
        app = make_app(engine, sites, Clock())
        keys = {role: create_key(engine, role, ["demo"])[1] for role in ("operator", "manager", "planner", "admin")}
        keys["north"] = create_key(engine, "admin", ["north"])[1]
        keys["north_manager"] = create_key(engine, "manager", ["north"])[1]
        ctx = app.state.ctx
        for site in ("demo", "north"):
            ctx.service.run(site, ctx.clock())
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:  # bounded by the thread: it ends when uvicorn fails to start
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        try:
            yield Served(f"http://127.0.0.1:{port}", app, keys)
        finally:
            server.should_exit = True
            thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():  # scripts/test.sh installs it; never skip
        raise RuntimeError(f"{CHROMIUM} missing: apt-get install -y chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
