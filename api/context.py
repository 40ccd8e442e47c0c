"""What the request handlers share: settings, the store, the planning service, jobs and caches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from api.cache import ResponseCache
from api.jobs import JobManager
from api.outage import DatabaseOutage
from api.ratelimit import WrongKeyLimiter
from api.settings import Settings
from grid.schedule.runner import PlanningService

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReplayClock:
    """A clock that starts at `start` and advances with the wall clock."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock_start needs a UTC offset")
        self.offset = start - wall_clock()

    def __call__(self) -> dt.datetime:
        return wall_clock() + self.offset


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    service: PlanningService
    jobs: JobManager
    cache: ResponseCache
    clock: Clock
    outage: DatabaseOutage = field(default_factory=lambda: DatabaseOutage(wall_clock))
    auth_cache: dict[str, tuple[float, Any]] = field(default_factory=dict)  # sha256(key) -> (expiry, ApiKey)
    auth_checks: dict[str, Any] = field(default_factory=dict)  # sha256(key) -> its background check (a task)
    wrong_keys: WrongKeyLimiter = field(default_factory=lambda: WrongKeyLimiter(5.0, 20))
    started_at: dt.datetime | None = None  # by the service's clock, when the lifespan started
    publisher: Any = None  # grid.schedule.publish.MqttPublisher when MQTT is on
    scheduler: Any = None  # apscheduler BackgroundScheduler when running
