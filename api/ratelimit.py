"""Wrong API keys per client address, limited (see :mod:`api.edge`)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from api.outage import RETRY_AFTER_S


class WrongKeyLimiter:
    """Wrong keys per client address: a bucket of `burst` attempts refilled at `per_s`.

    Only requests with a key not verified before are held back, so a client's real keys keep
    working (from memory) while a flood of wrong ones from the same address answers 429."""

    def __init__(self, per_s: float, burst: int, max_clients: int = 10_000) -> None:
        self.per_s, self.burst, self.max_clients = per_s, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.per_s)

    def retry_after_s(self, client: str) -> int:
        """0 when `client` may try a key now, else the seconds until it may."""
        if client not in self._buckets:
            return 0
        tokens = self._tokens(client, time.monotonic())
        if tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - tokens) / self.per_s)) if self.per_s > 0 else RETRY_AFTER_S

    def failed(self, client: str, n: float = 1.0) -> None:
        """Count `n` wrong keys of `client` (an attempt is counted when it starts, see
        :meth:`refund`, so that many attempts at once cannot all pass before the first fails)."""
        now = time.monotonic()
        self._buckets[client] = (max(0.0, self._tokens(client, now) - n), now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def refund(self, client: str) -> None:
        """Give back the attempt counted for a key that was right."""
        if client in self._buckets:
            self.failed(client, -1.0)
