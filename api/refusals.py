"""Refused live-data requests are kept as rejected records (where meter rejects go), then answered
as usual (422 naming the field)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from grid.errors import InputError, InputErrors
from grid.ingest.report import Source
from grid.store.live import keep_refusal


@contextmanager
def refusals_kept(engine: Engine, site: str, name: str, body: Any, now: pd.Timestamp) -> Iterator[None]:
    """Run the block; an input error it raises is stored (source ``api``, `name`) and raised again."""
    try:
        yield
    except (InputError, InputErrors) as err:
        raw = json.dumps(body, ensure_ascii=False, default=str, sort_keys=True)
        keep_refusal(engine, site, Source("api", name), err, raw, now)
        raise
