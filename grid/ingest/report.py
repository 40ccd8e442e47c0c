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


def storable_text(text: str) -> str:
    """`text` as it can be stored and sent: a NUL (which PostgreSQL refuses in text columns)
    becomes ``\\x00`` and a lone surrogate (not Unicode, so not UTF-8) ``\\udXXX``; other text
    is returned as is."""
    if text.isascii():
        return text.replace("\x00", "\\x00") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


@dataclass(frozen=True)
class Rejected:
    """One rejected record: `where` it was (file line, topic, payload path), the `field` at fault,
    the `value` seen there, the `reason`, and the `raw` record as read.

    Text fields are made storable on construction (:func:`storable_text`): a rejection can always
    be written to the store and to a JSON answer, whatever bytes the input held."""

    where: str
    field: str
    value: str | None
    reason: str
    raw: str
    line: int | None = None

    def __post_init__(self) -> None:
        for name in ("where", "field", "value", "reason", "raw"):
            text = getattr(self, name)
            if text is not None:
                safe = storable_text(str(text))
                if safe is not text:
                    object.__setattr__(self, name, safe)

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
