"""What an ingestion did: counts, every rejected record with its reason, and register flags.

Every record read lands in exactly one of accepted, duplicates, revised or rejected, so
``accepted + duplicates + revised + len(rejected) == rows_read``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where a batch comes from: `kind` (csv, mqtt, api), `name` (file, topic, client) and a
    sha256 `checksum` of the input bytes."""

    kind: str
    name: str
    checksum: str = ""


@dataclass(frozen=True)
class Rejected:
    """One rejected record: `where` it was (file line, topic, payload path), the `field` at fault,
    the `value` seen there, the `reason`, and the `raw` record as read."""

    where: str
    field: str
    value: str | None
    reason: str
    raw: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "where": self.where,
            "field": self.field,
            "value": self.value,
            "reason": self.reason,
            "raw": self.raw,
        }


@dataclass(frozen=True)
class Flag:
    """Something found while differencing a register: a `gap`, a `reset` (the register fell: a
    new segment starts), or an `implausible` interval. The span is [start, end) in UTC (ISO 8601);
    `energy_kwh` is the register advance over the span where it is known."""

    sensor: str
    kind: str
    start: str
    end: str
    detail: str
    energy_kwh: float | None = None


@dataclass
class IngestReport:
    """Outcome of one batch (see the module docstring)."""

    source: Source
    batch_id: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    revised: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """True when every record read is counted exactly once."""
        return self.accepted + self.duplicates + self.revised + len(self.rejected) == self.rows_read

    def merge(self, other: IngestReport) -> None:
        """Add the counts, rejections and flags of `other` (e.g. the next MQTT batch)."""
        self.rows_read += other.rows_read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.revised += other.revised
        self.rejected.extend(other.rejected)
        self.flags.extend(other.flags)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": asdict(self.source),
            "batch_id": self.batch_id,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "revised": self.revised,
            "rejected": [r.as_dict() for r in self.rejected],
            "flags": [asdict(f) for f in self.flags],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
