"""Issue 12 §3, hardened edges (api.edge): each case failed before the change.

* a body without a key was read whole (100 MB -> 705 MB of memory) before the 401; bodies had no
  limit; an upload was read into memory and a small gzip could expand without bound;
* wrong keys cost a request through the framework each, without limit;
* two ``X-API-Key`` headers: the fast path took the last (200), the route the first (401);
* ``POST /scenarios`` answered 422 (body) before 403 (rights);
* /metrics and /docs were public everywhere; the dashboard had no CSP / framing / nosniff headers;
* the SQLite file was created with the umask's mode (0644);
* when a cached key or latest plan expired, every concurrent poll read the database itself.

The app runs on the real store (SQLite and PostgreSQL: the ``store`` fixture). Where a test must
see whether the body was read, it drives the ASGI app directly with a ``receive`` that counts the
chunks taken; database reads are counted with SQLAlchemy's statement events on the real engine.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.edge import request_key
from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.schema import batches
from tests.api.kit import Clock, make_app, reading, service

URL = "/api/v1/sites/demo"
CHUNK = b" " * (1 << 20)


class Counted:
    """An ASGI ``receive`` serving `n` chunks of a JSON body; counts what the app took."""

    def __init__(self, n: int, chunk: bytes = CHUNK) -> None:
        self.parts = [b'{"readings": [', *([chunk] * n), b"]}"]
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        if self.taken < len(self.parts):
            body = self.parts[self.taken]
            self.taken += 1
            return {"type": "http.request", "body": body, "more_body": self.taken < len(self.parts)}
        return {"type": "http.disconnect"}


def call(
    app: FastAPI, method: str, path: str, headers: list[tuple[str, str]], receive: Counted
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request driven straight through the ASGI app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    out: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["headers"], out["body"]


@pytest.fixture
def small_app(store: Engine, sites: dict[str, Path], clock: Clock) -> FastAPI:
    """The app with small limits: 2 MiB bodies, 1 MiB uploads decompressed, 3 wrong keys."""
    return make_app(
        store,
        sites,
        clock,
        auth_cache_s=60.0,
        max_body_bytes=2 << 20,
        max_upload_decompressed_bytes=1 << 20,
        wrong_key_burst=3,
        wrong_key_per_s=0.01,
    )


@pytest.fixture
def small(small_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(small_app) as c:
        yield c


def test_body_without_key_is_not_read(small_app: FastAPI) -> None:
    """100 MB of JSON without a key: 401 before a single chunk of the body is taken."""
    receive = Counted(100)
    declared = [("content-type", "application/json"), ("content-length", str(100 << 20))]
    status, answered, _ = call(small_app, "POST", f"{URL}/readings", declared, receive)
    assert status == 401 and receive.taken == 0
    assert answered["connection"] == "close"  # the connection is closed, not read to the end and dropped
    wrong = Counted(100)
    status, _, _ = call(small_app, "POST", f"{URL}/readings", [("x-api-key", "qk_nope_nope")], wrong)
    assert status == 401 and wrong.taken == 0


def test_body_limits(small_app: FastAPI, key: dict[str, str]) -> None:
    """Above ``max_body_bytes``: 413 from the declared length without reading, and from the
    bytes counted when no length is declared (chunked), reading no further than the limit."""
    h = [("x-api-key", key["ingest"]), ("content-type", "application/json")]
    declared = Counted(100)
    status, _, _ = call(small_app, "POST", f"{URL}/readings", [*h, ("content-length", str(100 << 20))], declared)
    assert status == 413 and declared.taken == 0
    chunked = Counted(100)
    status, _, body = call(small_app, "POST", f"{URL}/readings", h, chunked)
    assert status == 413, body
    assert chunked.taken <= 4  # the opening, two chunks of 1 MiB, and the one past 2 MiB
    fits = Counted(1)
    status, _, body = call(small_app, "POST", f"{URL}/readings", h, fits)
    assert status == 200, body  # an empty list of readings padded with 1 MiB of blanks


def _gzip(text: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as fh:
        fh.write(text)
    return buffer.getvalue()


def test_upload_streams_through_ingest_with_a_decompressed_cap(
    small: TestClient, key: dict[str, str], store: Engine
) -> None:
    """A .gz upload is ingested as ``grid ingest`` does (source kind "api", the client's file
    name, lines of the file); one that decompresses past the cap answers 413 and stores nothing."""
    h = {"X-API-Key": key["ingest"]}
    lines = ["meter_id,timestamp,obis,value,unit"]
    lines += [f"MTR-H004,2026-01-14T00:{m:02d}:00+00:00,1-0:1.8.0,{70 + m / 100:.2f},kWh" for m in (0, 15, 30)]
    lines.append("MTR-H004,2026-01-14T00:45:00+00:00,1-0:1.8.0")
    good = _gzip(("\n".join(lines) + "\n").encode())
    r = small.post(f"{URL}/readings/csv", files={"file": ("day 1.csv.gz", good, "application/gzip")}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3 and [x["line"] for x in r.json()["rejected"]] == [5]
    assert r.json()["rejected"][0]["where"].startswith("day 1.csv.gz line 5")
    with store.connect() as conn:
        kinds = conn.execute(sa.select(batches.c.source_kind, batches.c.source)).all()
    assert ("api", "day 1.csv.gz") in [tuple(k) for k in kinds]
    bomb = _gzip(b"meter_id,timestamp,obis,value,unit\n" + b"A" * (2 << 20))  # 2 MiB of one line, ~2 kB packed
    assert len(bomb) < 10_000
    r = small.post(f"{URL}/readings/csv", files={"file": ("bomb.csv.gz", bomb, "application/gzip")}, headers=h)
    assert r.status_code == 413 and "bomb.csv.gz" in r.json()["detail"]
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar() == len(kinds)


def test_request_key_refuses_duplicates() -> None:
    assert request_key([(b"x-api-key", b"k")]) == "k"
    assert request_key([(b"authorization", b"Bearer k")]) == "k"
    assert request_key([(b"authorization", b"Basic abc")]) is None
    assert request_key([]) is None
    assert request_key([(b"authorization", b"Bearer b"), (b"x-api-key", b"a")]) == "a"  # as documented
    for headers in (
        [(b"x-api-key", b"a"), (b"x-api-key", b"b")],
        [(b"x-api-key", b"a"), (b"x-api-key", b"a")],
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    ):
        with pytest.raises(Exception, match="more than one API key header"):
            request_key(headers)


def test_duplicate_keys_refused_by_fast_path_and_route(
    small: TestClient, small_app: FastAPI, key: dict[str, str], clock: Clock
) -> None:
    """With the fast path's caches warm, a valid and a wrong key in either order answer 400, as
    on a route without a fast path."""
    service(small_app).run("demo", clock())
    url = f"{URL}/setpoints"
    assert small.get(url, headers={"X-API-Key": key["operator"]}).status_code == 200
    assert small.get(url, headers={"X-API-Key": key["operator"]}).status_code == 200  # from the fast path
    for pair in ((key["operator"], "wrong"), ("wrong", key["operator"]), (key["operator"], key["operator"])):
        r = small.get(url, headers=[("X-API-Key", pair[0]), ("X-API-Key", pair[1])])
        assert r.status_code == 400, (pair, r.text)
    bearers = [("Authorization", f"Bearer {key['operator']}"), ("Authorization", "Bearer wrong")]
    assert small.get(url, headers=bearers).status_code == 400
    post = small.post(
        f"{URL}/readings",
        json={"readings": [reading()]},
        headers=[("X-API-Key", key["ingest"]), ("X-API-Key", key["ingest"])],
    )
    assert post.status_code == 400


def test_wrong_keys_are_limited_without_the_database(small: TestClient, key: dict[str, str], store: Engine) -> None:
    """Past ``wrong_key_burst`` wrong keys, a client's unknown keys answer 429 + Retry-After with
    no statement sent to the database; its verified keys go on working."""
    url = f"{URL}/plans"
    assert small.get(url, headers={"X-API-Key": key["operator"]}).status_code == 200  # verified, cached
    statuses = [small.get(url, headers={"X-API-Key": f"qk_wrong{n}_secret"}).status_code for n in range(3)]
    assert statuses == [401, 401, 401]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(store, "before_cursor_execute", count)
    try:
        limited = small.get(url, headers={"X-API-Key": "qk_wrong9_secret"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert small.get(url, headers={"X-API-Key": "not-even-shaped"}).status_code == 429
    finally:
        sa.event.remove(store, "before_cursor_execute", count)
    assert statements == []
    assert small.get(url, headers={"X-API-Key": key["operator"]}).status_code == 200
    assert small.get(url).status_code == 401  # no key at all: nothing to limit


def test_scenarios_rights_before_body(small: TestClient, key: dict[str, str]) -> None:
    """``POST /scenarios`` with a body that does not validate: 403 for a key without the right
    (or for a site outside its scope) before the body's 422."""
    bad = {"site": "demo", "name": "x", "period": {"hours": -1}, "edits": [{"kind": "nonsense"}]}
    assert small.post("/api/v1/scenarios", json=bad, headers={"X-API-Key": key["operator"]}).status_code == 403
    other = {**bad, "site": "north"}
    assert small.post("/api/v1/scenarios", json=other, headers={"X-API-Key": key["planner"]}).status_code == 403
    assert small.post("/api/v1/scenarios", json=bad, headers={"X-API-Key": key["planner"]}).status_code == 422
    assert small.post(f"{URL}/scenarios", json=bad, headers={"X-API-Key": key["operator"]}).status_code == 403


@pytest.mark.parametrize(
    ("host", "docs_public", "metrics_public", "open_docs", "open_metrics"),
    [
        ("127.0.0.1", None, None, True, True),
        ("0.0.0.0", None, None, False, False),
        ("0.0.0.0", True, None, True, False),
        ("127.0.0.1", None, False, True, False),
    ],
)
def test_docs_and_metrics_behind_settings(
    store: Engine,
    sites: dict[str, Path],
    clock: Clock,
    key: dict[str, str],
    host: str,
    docs_public: bool | None,
    metrics_public: bool | None,
    open_docs: bool,
    open_metrics: bool,
) -> None:
    app = make_app(store, sites, clock, host=host, docs_public=docs_public, metrics_public=metrics_public)
    with TestClient(app) as c:
        for path, is_open in (("/docs", open_docs), ("/openapi.json", open_docs), ("/metrics", open_metrics)):
            assert c.get(path).status_code == (200 if is_open else 401), path
            assert c.get(path, headers={"X-API-Key": key["operator"]}).status_code == 200, path
        assert c.get("/healthz").status_code in (200, 503)  # never behind a key


def test_dashboard_security_headers(client: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"):
        r = client.get(path)
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_sqlite_file_created_private(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        create_key(engine, "admin", ["*"])
        engine.dispose()
    finally:
        os.umask(old)
    for file in tmp_path.iterdir():
        assert file.stat().st_mode & 0o777 == 0o600, file


def test_expired_caches_read_the_database_once(
    store: Engine, sites: dict[str, Path], clock: Clock, key: dict[str, str]
) -> None:
    """50 concurrent polls after the latest plan's and the key's time to live: one read of the
    latest plan and one of the key, not one each."""
    app = make_app(store, sites, clock, auth_cache_s=60.0, latest_cache_s=60.0)
    service(app).run("demo", clock())
    url = f"{URL}/setpoints"
    h = {"X-API-Key": key["operator"]}
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def polls() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert (await c.get(url, headers=h)).status_code == 200  # caches filled
            ctx = app.state.ctx
            for site, (_expiry, row) in list(ctx.cache._latest.items()):
                ctx.cache._latest[site] = (0.0, row)  # long expired: past the grace too
            for digest, (_expiry, api_key) in list(ctx.auth_cache.items()):
                ctx.auth_cache[digest] = (0.0, api_key)
            sa.event.listen(store, "before_cursor_execute", count)
            try:
                answers = await asyncio.gather(*(c.get(url, headers=h) for _ in range(50)))
            finally:
                sa.event.remove(store, "before_cursor_execute", count)
            return [a.status_code for a in answers]

    assert asyncio.run(polls()) == [200] * 50
    key_reads = [s for s in statements if "api_keys" in s]
    plan_reads = [s for s in statements if "FROM plans" in s]
    assert len(plan_reads) == 1 and len(key_reads) == 1, statements


def test_wrong_keys_at_once_are_limited_too(small_app: FastAPI, key: dict[str, str]) -> None:
    """Ten wrong keys from one address at the same moment: an attempt counts when it starts, so
    no more than the burst (3) reach the database; the others answer 429. A right key's attempt
    is given back."""

    async def attempts() -> list[int]:
        transport = httpx.ASGITransport(app=small_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            ok = await c.get(f"{URL}/plans", headers={"X-API-Key": key["operator"]})  # counted, then given back
            assert ok.status_code == 200
            answers = await asyncio.gather(
                *(c.get(f"{URL}/plans", headers={"X-API-Key": f"qk_wrong{n}_secret"}) for n in range(10))
            )
            return sorted(a.status_code for a in answers)

    assert asyncio.run(attempts()) == [401] * 3 + [429] * 7
