"""The set-point fast path (api.fastpath) answers exactly what the route answers, and leaves
everything it cannot answer from memory (errors included) to the route."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from grid.store.apikeys import create_key
from tests.api.kit import Clock, make_app, service

URL = "/api/v1/sites/demo/setpoints"


def fast_answers() -> float:
    return REGISTRY.get_sample_value("quartiere_setpoints_fast_answers_total") or 0.0


@pytest.fixture
def cached_app(store: Engine, sites: dict[str, Path], clock: Clock) -> FastAPI:
    """Keys trusted for a minute and the latest plan cached for a minute, as when polling."""
    app = make_app(store, sites, clock, auth_cache_s=60.0)
    app.state.ctx.settings.latest_cache_s = 60.0
    return app


def test_fast_answer_is_the_route_answer(cached_app: FastAPI, store: Engine, clock: Clock) -> None:
    token = create_key(store, "operator", ["demo"])[1]
    service(cached_app).run("demo", clock())
    with TestClient(cached_app) as client:
        for headers in ({"X-API-Key": token}, {"Authorization": f"Bearer {token}"}):
            for query in ("", "?horizon=8"):
                before = fast_answers()
                first = client.get(URL + query, headers=headers)  # the route: fills the caches
                second = client.get(URL + query, headers=headers)
                assert first.status_code == second.status_code == 200
                assert second.content == first.content
                for name in ("etag", "content-type", "cache-control", "content-length"):
                    assert second.headers[name] == first.headers[name], name
                assert fast_answers() >= before + 1
                tag = first.headers["etag"]
                before = fast_answers()
                cond = client.get(URL + query, headers={**headers, "If-None-Match": tag})
                assert cond.status_code == 304 and cond.content == b"" and cond.headers["etag"] == tag
                assert fast_answers() == before + 1
        assert len(client.get(URL + "?horizon=8", headers={"X-API-Key": token}).json()["intervals"]) == 8
        # the next interval: a new version, same fast answer as the route gives
        clock.advance(15)
        moved = client.get(URL, headers={"X-API-Key": token})
        assert moved.status_code == 200 and moved.headers["etag"] != tag


def test_what_the_fast_path_cannot_answer_goes_to_the_route(cached_app: FastAPI, store: Engine, clock: Clock) -> None:
    token = create_key(store, "operator", ["demo"])[1]
    manager = create_key(store, "manager", ["demo"])[1]
    service(cached_app).run("demo", clock())
    with TestClient(cached_app) as client:
        assert client.get(URL, headers={"X-API-Key": token}).status_code == 200
        before = fast_answers()
        assert client.get(URL, headers={"X-API-Key": "qk_0000_wrong"}).status_code == 401
        assert client.get(URL).status_code == 401
        assert client.get(URL, headers={"X-API-Key": manager}).status_code == 403
        assert client.get(URL, headers={"X-API-Key": manager}).status_code == 403  # now cached: still 403
        assert client.get("/api/v1/sites/north/setpoints", headers={"X-API-Key": token}).status_code == 403
        for bad in ("?horizon=0", "?horizon=97", "?horizon=x", "?horizon=4&x=1"):
            got = client.get(URL + bad, headers={"X-API-Key": token})
            assert got.status_code == (200 if bad.endswith("x=1") else 422), bad
        assert fast_answers() == before
