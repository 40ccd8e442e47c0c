"""The simulated clock: interval starts on the site's grid, advanced by the simulator, never slept on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd


@dataclass
class SimClock:
    """``now`` starts at `start` (UTC) and moves one interval per :meth:`tick`; calling the clock
    returns ``now`` (the signature of the API factory's ``clock``)."""

    start: pd.Timestamp
    resolution_min: int = 15
    step: int = 0

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.resolution_min)

    @property
    def now(self) -> pd.Timestamp:
        return self.start + self.step * self.interval

    def tick(self) -> pd.Timestamp:
        self.step += 1
        return self.now

    def __call__(self) -> dt.datetime:
        return self.now.to_pydatetime()
