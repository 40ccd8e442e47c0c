"""Settings of one ingestion (all optional, with defaults)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class IngestOptions:
    """How to read and check records.

    tz:                  time zone of naive (offset-less) timestamps; None refuses them
    now:                 reference time for the future check (default: the wall clock)
    future_tolerance_s:  how far beyond `now` a timestamp may lie (clock skew), seconds
    interpolate:         spread a register advance over a gap as ``estimated`` values (the gap is
                         flagged either way)
    chunk_rows:          rows per bulk write (progress is reported after each chunk), and records
                         per chunk when a file is streamed (:func:`grid.ingest.pipeline.ingest_csv`):
                         memory grows with this, not with the file
    """

    tz: str | None = None
    now: pd.Timestamp | None = None
    future_tolerance_s: int = 3600
    interpolate: bool = False
    chunk_rows: int = 200_000

    def now_s(self) -> int:
        stamp = self.now if self.now is not None else pd.Timestamp.now("UTC")
        return int(pd.Timestamp(stamp).timestamp())
