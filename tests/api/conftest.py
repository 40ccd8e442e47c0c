"""Fixtures of the API tests: the real app on SQLite and PostgreSQL (the `store` fixture of
tests/conftest.py), two small sites, a controllable clock and keys per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.store.apikeys import create_key
from tests.api.kit import Clock, clock, make_app, sites

__all__ = ["clock", "sites"]  # shared with tests/schedule


@pytest.fixture
def app(store: Engine, sites: dict[str, Path], clock: Clock) -> FastAPI:
    return make_app(store, sites, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key(store: Engine) -> dict[str, str]:
    """A key per role scoped to site ``demo`` (``admin_all``: every site)."""
    keys = {
        role: create_key(store, role, ["demo"])[1] for role in ("operator", "manager", "planner", "ingest", "admin")
    }
    keys["admin_all"] = create_key(store, "admin", ["*"])[1]
    return keys
