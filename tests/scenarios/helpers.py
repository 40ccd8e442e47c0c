"""Helpers shared by the scenario tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SMALL_START = "2026-01-14T14:00:00+01:00"
EVENING = {"start": "2026-01-14T16:00:00+00:00", "hours": 6}  # 17:00-23:00 local, T2 congested


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
