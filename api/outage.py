"""The database as the API sees it: up, or unavailable since a given instant.

While the database is unavailable the set-point route and its fast path keep answering from what
is in memory (the latest plan of each site, marked ``stale`` with "database unavailable since
..."; keys verified before the outage), and every other route answers 503 with ``Retry-After``.
The database is probed again at most every ``PROBE_S`` seconds per site and key, never by every
request; the first successful read ends the outage.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

from grid.timeindex import iso

log = logging.getLogger(__name__)
#: seconds between probes of an unavailable database (per cached site and key)
PROBE_S = 1.0
#: what 503 answers put into ``Retry-After``, seconds
RETRY_AFTER_S = 5
UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached (connection refused, dropped,
    pool exhausted), not that a statement was wrong."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


class DatabaseOutage:
    """Whether (and since when, by the service's clock) the database is unavailable."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self.clock = clock
        self.since: dt.datetime | None = None

    def down(self) -> None:
        if self.since is None:
            self.since = self.clock()
            log.warning("database unavailable; serving set-points from memory")

    def up(self) -> None:
        if self.since is not None:
            log.warning("database available again (unavailable since %s)", iso(self.since))
            self.since = None

    @property
    def reason(self) -> str:
        since = iso(self.since) if self.since is not None else "now"
        return f"database unavailable since {since}"
