"""A database that goes away: a PRIVATE PostgreSQL (initdb/pg_ctl into a temp directory on a free
port) is stopped under the running app and started again; the shared server is never touched.

While it is down, set-point polls keep getting the last plan from memory (200, marked stale with
"database unavailable since ...") for keys verified before; every other route answers 503 with
Retry-After, never 500; after it is back the pool (pre-ping) reconnects and the plan is fresh again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.private_services import PrivatePostgres, pg_bin
from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.schema import metadata
from tests.api.kit import Clock, make_app, reading, service

pytestmark = pytest.mark.postgres
BOUND_S = 60.0  # a bound on waiting for a condition, not a timing


def until(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.1)  # poll interval


@pytest.fixture
def private_pg() -> Iterator[tuple[PrivatePostgres, Engine]]:
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    pg = PrivatePostgres()
    try:
        pg.start()
        engine = make_engine(pg.url)
        metadata.create_all(engine)
        yield pg, engine
        engine.dispose()
    finally:
        pg.close()


def test_setpoints_served_from_memory_while_the_database_is_down(
    private_pg: tuple[PrivatePostgres, Engine], sites: dict[str, Path], clock: Clock
) -> None:
    pg, engine = private_pg
    operator = create_key(engine, "operator", ["demo"])[1]
    ingest_key = create_key(engine, "ingest", ["demo"])[1]
    never_seen = create_key(engine, "operator", ["demo"])[1]  # valid, but never used before the outage
    app = make_app(engine, sites, clock, auth_cache_s=0.5)
    head = {"X-API-Key": operator}
    with TestClient(app) as client:
        assert service(app).run("demo", clock()).status.startswith("optimal")
        before = client.get("/api/v1/sites/demo/setpoints", headers=head)
        assert before.status_code == 200 and before.json()["stale"] is False
        assert (
            client.post(
                "/api/v1/sites/demo/readings", json={"readings": [reading()]}, headers={"X-API-Key": ingest_key}
            ).status_code
            == 200
        )

        pg.stop("immediate")  # every connection dropped, new ones refused
        statuses: list[int] = []

        def served_stale() -> bool:
            # the auth cache (0.5 s) and the latest-plan cache (1 s) run out while we poll: from
            # then on each poll needs the database, which is gone
            r = client.get("/api/v1/sites/demo/setpoints", headers=head)
            statuses.append(r.status_code)
            return r.status_code == 200 and r.json()["stale"] is True

        until(served_stale, "a stale answer")
        time.sleep(1.5)  # both caches expired for sure; the answers keep coming from memory
        for _ in range(20):
            served_stale()
        assert set(statuses) == {200}, statuses
        during = client.get("/api/v1/sites/demo/setpoints", headers=head).json()
        assert during["stale_reason"].startswith("database unavailable since ")
        assert during["plan_id"] == before.json()["plan_id"] and during["assets"] == before.json()["assets"]

        for method, path, key, body in (
            ("GET", "/api/v1/sites/demo/plans", operator, None),
            ("GET", "/api/v1/sites/demo/plans/latest", operator, None),
            ("POST", "/api/v1/sites/demo/readings", ingest_key, {"readings": [reading(value=101.0)]}),
            ("GET", "/api/v1/sites/demo/setpoints", never_seen, None),  # cannot be verified: 503, not 401
        ):
            r = client.request(method, path, headers={"X-API-Key": key}, json=body)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert int(r.headers["Retry-After"]) > 0 and "database unavailable" in r.json()["detail"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["database"] is False
        assert health.json()["status"] == "degraded" and health.json()["problems"]

        pg.start()  # the pool's dead connections are replaced (pre-ping)

        def fresh_again() -> bool:
            r = client.get("/api/v1/sites/demo/setpoints", headers=head)
            return r.status_code == 200 and r.json()["stale"] is False

        until(fresh_again, "a fresh answer after the database came back")
        assert client.get("/api/v1/sites/demo/plans", headers=head).status_code == 200
        assert client.get("/api/v1/sites/demo/setpoints", headers={"X-API-Key": never_seen}).status_code == 200
        assert client.get("/healthz").json()["status"] == "ok"
