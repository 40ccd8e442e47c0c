"""JSON inputs -> record frames: bulk payloads (the API) and single MQTT messages.

Bulk payload::

    {"readings": [{"meter_id": "hh-001", "obis": "1-0:1.8.0", "ts": "2026-01-15T00:15:00+01:00",
                   "value": 1234.567, "unit": "kWh", "quality": "measured"}, ...]}

(``sensor`` may replace meter_id + obis; ``timestamp`` is accepted for ``ts``; quality is
optional). An item that is not an object, has unknown or missing keys, a list or object where a
scalar belongs, or text that cannot be stored (a NUL character, which PostgreSQL refuses, or a
lone surrogate, which is not Unicode) is rejected here with its path (``readings[3]``) and field;
everything else is checked by :mod:`grid.ingest.validate`.

MQTT message: topic ``quartier/<site>/meters/<meter_id>/<obis>``, payload
``{"ts": ISO 8601, "value": number, "unit": str}`` (optional ``quality``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from grid.errors import InputError
from grid.ingest.records import records_frame
from grid.ingest.report import Rejected

ITEM_KEYS = {"meter_id", "obis", "sensor", "ts", "timestamp", "value", "unit", "quality"}
MESSAGE_KEYS = {"ts", "value", "unit", "quality"}
REQUIRED = ("ts", "value", "unit")
TOPIC_PREFIX = "quartier"


def _value(value: Any) -> Any:
    """Numbers stay numbers; NaN/inf become text so the validator names them; bools and other
    types become text so they are refused as 'not a number'."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value if value is None or isinstance(value, str) else json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


_JSON_TYPES = {dict: "an object", list: "an array"}


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as is (NUL character, lone surrogate); None when it can."""
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    return None


def _check_scalars(item: dict[str, Any], where: str, raw: str) -> Rejected | None:
    """Every field holds a scalar (an array or object is refused: `value` must be a number, the
    others text); no text with a NUL character or a lone surrogate."""
    for key in sorted(item):
        v = item[key]
        if isinstance(v, str):
            why = unstorable(v)
            if why is not None:
                return Rejected(where, key, v, f"{key} {why}", raw)
        elif isinstance(v, list | dict):
            wanted = "a number" if key == "value" else "a string"
            return Rejected(where, key, _raw(v)[:200], f"{key} must be {wanted}, got {_JSON_TYPES[type(v)]}", raw)
    return None


def _check_item(item: Any, where: str, allowed: set[str], raw: str) -> Rejected | None:
    if not isinstance(item, dict):
        return Rejected(where, "payload", raw[:200], f"must be a JSON object, got {type(item).__name__}", raw)
    unknown = sorted(set(item) - allowed)
    if unknown:
        return Rejected(
            where,
            unknown[0],
            None,
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            raw,
        )
    for key in REQUIRED:
        if key == "ts" and ("ts" in item or "timestamp" in item):
            continue
        if key not in item:
            return Rejected(where, key, None, f"field {key!r} is missing", raw)
    return _check_scalars(item, where, raw)


def parse_payload(data: bytes | str | dict[str, Any], name: str = "payload") -> tuple[pd.DataFrame, list[Rejected]]:
    """A bulk payload -> (record frame, items rejected for their shape).

    Raises :class:`InputError` when the document itself is not JSON or has no ``readings`` list.
    """
    if isinstance(data, dict):
        doc: Any = data
    else:
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(name, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("readings"), list):
        raise InputError(name, "must be a JSON object with a 'readings' list")
    records: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(doc["readings"]):
        where = f"{name} readings[{i}]"
        raw = _raw(item)
        problem = _check_item(item, where, ITEM_KEYS, raw)
        if problem is not None:
            rejected.append(problem)
            continue
        records.append(
            {
                "where": where,
                "meter_id": item.get("meter_id"),
                "obis": item.get("obis"),
                "sensor": item.get("sensor"),
                "timestamp": item.get("ts", item.get("timestamp")),
                "value": _value(item.get("value")),
                "unit": item.get("unit"),
                "quality": item.get("quality"),
                "raw": raw,
            }
        )
    return records_frame(records), rejected


def _raw(item: Any) -> str:
    """The item as JSON text (for the rejected record); never fails (1e400 parses as inf, which
    JSON cannot say: written as Infinity)."""
    try:
        return json.dumps(item, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(item)[:10_000]


def parse_message(topic: str, payload: bytes, site_id: str, prefix: str = TOPIC_PREFIX) -> dict[str, Any] | Rejected:
    """One MQTT message -> a record (dict for :func:`grid.ingest.records.records_frame`) or the
    reason it was rejected (bad topic, not JSON, not an object, missing/unknown keys)."""
    raw = payload.decode("utf-8", errors="replace")
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[2] != "meters" or not parts[3] or not parts[4]:
        return Rejected(topic, "topic", topic, f"topic must be {prefix}/<site>/meters/<meter_id>/<obis>", raw)
    if parts[1] != site_id:
        return Rejected(
            topic,
            "topic",
            parts[1],
            f"message for site {parts[1]!r}, this subscriber ingests {site_id!r}",
            raw,
        )
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Rejected(
            topic,
            "payload",
            raw[:200],
            f"payload is not valid JSON ({exc.__class__.__name__}: {exc})",
            raw,
        )
    problem = _check_item(doc, topic, MESSAGE_KEYS, raw)
    if problem is not None:
        return problem
    return {
        "where": topic,
        "meter_id": parts[3],
        "obis": parts[4],
        "timestamp": doc["ts"],
        "value": _value(doc["value"]),
        "unit": doc["unit"],
        "quality": doc.get("quality"),
        "raw": raw,
    }


def messages_frame(messages: Sequence[tuple[str, bytes]], site_id: str) -> tuple[pd.DataFrame, list[Rejected]]:
    """Many (topic, payload) messages -> (record frame, rejected messages)."""
    records: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for topic, payload in messages:
        try:
            parsed = parse_message(topic, payload, site_id)
        except Exception as exc:  # one unreadable message must not stop the others
            parsed = Rejected(
                topic,
                "payload",
                None,
                f"message cannot be read ({type(exc).__name__}: {exc})",
                payload.decode("utf-8", errors="replace"),
            )
        if isinstance(parsed, Rejected):
            rejected.append(parsed)
        else:
            records.append(parsed)
    return records_frame(records), rejected
