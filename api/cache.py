"""Serialized responses per plan version, so that polling never re-reads or re-encodes a plan."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from api.outage import PROBE_S, DatabaseOutage, is_unavailable


class ResponseCache:
    """A small thread-safe LRU of (key -> bytes)."""

    def __init__(self, size: int = 512, outage: DatabaseOutage | None = None) -> None:
        self.size = size
        self.outage = outage
        self._known: dict[str, Any] = {}  # site -> the latest-plan row last read from the database
        self._probing: set[str] = set()
        self._data: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bodies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._latest: dict[str, tuple[float, Any]] = {}
        self._generation: dict[str, int] = {}  # site -> invalidations so far
        self._loads: dict[str, asyncio.Future[Any]] = {}  # site -> the load of its latest row running now
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The cached bytes of `key`, built (outside the lock) on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
        value = build()
        with self._lock:
            self.misses += 1
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def body(self, plan_id: str, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The parsed plan body of `plan_id` (a plan never changes once stored; only 8 kept)."""
        with self._lock:
            if plan_id in self._bodies:
                self._bodies.move_to_end(plan_id)
                return self._bodies[plan_id]
        value = load()
        with self._lock:
            self._bodies[plan_id] = value
            while len(self._bodies) > 8:
                self._bodies.popitem(last=False)
        return value

    def latest(self, site_id: str, load: Callable[[], Any], ttl_s: float) -> Any:
        """The latest-plan row of a site, re-read at most every `ttl_s` seconds.

        When the database is unavailable (see :mod:`api.outage`) the last row read is served
        instead, marked stale with the outage's reason, and re-read at most every ``PROBE_S``."""
        now = time.monotonic()
        hit = self._latest.get(site_id)
        if hit is not None and now < hit[0]:
            return hit[1]
        generation = self._generation.get(site_id, 0)
        known = self._known.get(site_id)
        if known is not None and self.outage is not None and self.outage.since is not None:
            if site_id in self._probing:  # one probe at a time; the others get the memory at once
                return _stale(known, self.outage.reason)
            self._probing.add(site_id)
        try:
            value = load()
        except SQLAlchemyError as exc:
            if known is None or self.outage is None or not is_unavailable(exc):
                raise
            self.outage.down()
            value = _stale(known, self.outage.reason)
            self._latest[site_id] = (time.monotonic() + PROBE_S, value)
            return value
        finally:
            self._probing.discard(site_id)
        if self.outage is not None:
            self.outage.up()
        if value is not None:
            self._known[site_id] = value
        if self._generation.get(site_id, 0) == generation:  # else a plan was saved meanwhile: read it next time
            self._latest[site_id] = (now + ttl_s, value)
        return value

    async def load_latest(self, site_id: str, load: Callable[[], Any], ttl_s: float) -> Any:
        """:meth:`latest` in the thread pool, one load per site at a time: callers that come while
        it runs wait for the same load instead of each reading the database."""
        task = self._loads.get(site_id)
        if task is None:
            task = asyncio.ensure_future(run_in_threadpool(self.latest, site_id, load, ttl_s))
            self._loads[site_id] = task
            task.add_done_callback(lambda done: self._loaded(site_id, done))
        return await asyncio.shield(task)

    def _loaded(self, site_id: str, done: asyncio.Future[Any]) -> None:
        self._loads.pop(site_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here: a load nobody waited for must not log "never retrieved"

    def refresh_soon(self, site_id: str, load: Callable[[], Any], ttl_s: float) -> None:
        """Start :meth:`load_latest` in the background unless a load of the site is running."""
        if site_id not in self._loads:
            asyncio.ensure_future(self.load_latest(site_id, load, ttl_s)).add_done_callback(_ignore)

    def fresh(self, site_id: str) -> bool:
        """True when the latest-plan row of `site_id` is cached and not expired."""
        hit = self._latest.get(site_id)
        return hit is not None and time.monotonic() < hit[0]

    def peek_latest(self, site_id: str, grace_s: float = 0.0) -> tuple[Any, bool]:
        """(the cached latest-plan row of a site, whether it is past its time to live); the row is
        None when there is none cached, it is None, or it expired more than `grace_s` ago."""
        hit = self._latest.get(site_id)
        if hit is None:
            return None, True
        late_s = time.monotonic() - hit[0]
        return (hit[1] if late_s < grace_s else None), late_s >= 0

    def peek_body(self, plan_id: str) -> dict[str, Any] | None:
        """The cached body of `plan_id`, or None (no LRU bookkeeping: the fast path's read)."""
        return self._bodies.get(plan_id)

    def has_body(self, plan_id: str) -> bool:
        return plan_id in self._bodies

    def invalidate(self, site_id: str) -> None:
        """Forget the latest-plan row of a site (a plan was just saved)."""
        self._generation[site_id] = self._generation.get(site_id, 0) + 1
        self._latest.pop(site_id, None)


def _ignore(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()


def _stale(row: Any, reason: str) -> Any:
    """`row` (a :class:`grid.store.plans.PlanRow`) marked stale with `reason` first."""
    return replace(row, stale=True, stale_reason=f"{reason}; {row.stale_reason}" if row.stale else reason)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names `etag` (weak or strong) or is ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
