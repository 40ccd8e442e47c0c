"""Device telemetry (state of charge, heat-store content, measured power) through one path.

Every source turns its input into :class:`Item` objects (the API's bulk JSON, one MQTT message on
``quartier/<site>/devices/<asset_id>/state``, a CSV line of ``grid ingest --format telemetry``);
:func:`ingest_telemetry` validates them against the site's registered assets and stores them as
one batch, the rejected ones as rejected records of that batch (as for meter readings).

An item names the asset (``asset_id``; from the topic over MQTT), the time measured (``ts``, ISO
8601 with UTC offset) and either

* one or more of ``soc_kwh``, ``soc_pct`` (battery), ``store_kwh`` or ``store_temp_degc`` (heat
  store), ``power_kw`` (any device; > 0 drawn from the grid, < 0 fed in), or
* ``quantity`` (``soc``, ``store``, ``power``), ``value`` and ``unit`` (kWh, Wh, % / kWh, Wh,
  degC / kW, W) — the CSV layout.

A store temperature becomes kWh with the store's ``store_empty_degc`` and ``store_full_degc``
(site file): content = capacity x (T - empty) / (full - empty); a temperature outside
[empty, full], or from a store without them, is rejected.

Each quantity is one record: ``accepted + duplicates + revised + rejected == rows_read``. Stored
quantities are ``soc_kwh``, ``store_kwh`` (kWh; a % is converted with the battery's capacity) and
``power_kw``. Rejected: an unknown asset (or one whose kind has no such state), a time without
offset or later than the receiving clock plus :data:`FUTURE_TOLERANCE`, a state outside
[0, capacity], a power above :data:`POWER_LIMIT_FACTOR` x the rating, a unit that does not fit
the quantity, anything that is not a finite number. The same (asset, quantity, time) again is a
duplicate with the same value, else a revision: the later value is stored and the one it
replaces is kept in ``telemetry_revisions``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.ingest import fields
from grid.ingest.report import IngestReport, Rejected, Source
from grid.store import bulk
from grid.store.engine import write_transaction
from grid.store.live import Asset, close_batch, open_batch, site_assets
from grid.store.schema import device_telemetry, telemetry_revisions
from grid.store.sites import POWER_LIMIT_FACTOR, get_site

#: a measurement stamped later than the receiving clock by more than this is refused (clock skew)
FUTURE_TOLERANCE = pd.Timedelta(minutes=5)
#: keyed form: field -> (stored quantity, unit of the field, asset kinds that report it)
KEYED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "soc_kwh": ("soc_kwh", "kWh", ("battery",)),
    "soc_pct": ("soc_kwh", "%", ("battery",)),
    "store_kwh": ("store_kwh", "kWh", ("heat_pump",)),
    "store_temp_degc": ("store_kwh", "degC", ("heat_pump",)),
    "power_kw": ("power_kw", "kW", ("battery", "heat_pump", "ev_charger", "pv")),
}
#: generic form: quantity -> (stored quantity, asset kinds)
GENERIC: dict[str, tuple[str, tuple[str, ...]]] = {
    "soc": ("soc_kwh", ("battery",)),
    "store": ("store_kwh", ("heat_pump",)),
    "power": ("power_kw", ("battery", "heat_pump", "ev_charger", "pv")),
}
#: accepted units per stored quantity (case-insensitive) -> factor to kWh / kW; "%" is special
UNITS: dict[str, dict[str, float]] = {
    "soc_kwh": {"kwh": 1.0, "wh": 1e-3, "%": float("nan")},
    "store_kwh": {"kwh": 1.0, "wh": 1e-3, "degc": float("nan"), "°c": float("nan")},
    "power_kw": {"kw": 1.0, "w": 1e-3},
}
CANONICAL = {"soc_kwh": "kWh", "store_kwh": "kWh", "power_kw": "kW"}
ITEM_KEYS = {"asset_id", "ts", "quantity", "value", "unit", *KEYED}
CSV_HEADER = ["asset_id", "timestamp", "quantity", "value", "unit"]
Key = tuple[str, str, pd.Timestamp]  # asset_id, quantity, measured_at
Stored = tuple[float, pd.Timestamp, int]  # value, received_at, batch_id


@dataclass(frozen=True)
class Item:
    """One input object as read: where it was (payload path, topic, file line) and its fields."""

    where: str
    data: Any
    raw: str
    line: int | None = None


@dataclass(frozen=True)
class Value:
    """One validated measurement, in the stored quantity's unit."""

    asset_id: str
    quantity: str
    measured_at: pd.Timestamp
    value: float
    unit: str


def _raw(item: Any) -> str:
    try:
        return json.dumps(item, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(item)[:10_000]


def _kind_error(asset: Asset, field: str, quantity: str) -> InputError:
    return InputError(field, f"asset {asset.asset_id!r} is a {asset.kind}, which reports no {quantity}")


def _check_value(asset: Asset, quantity: str, value: float, field: str) -> float:
    if quantity in ("soc_kwh", "store_kwh"):
        capacity = asset.capacity_kwh or 0.0
        if not 0.0 <= value <= capacity:
            raise InputError(field, f"must lie in [0, {capacity:g}] kWh (the capacity of {asset.asset_id})", value)
    elif asset.max_power_kw is not None:
        limit = asset.max_power_kw * POWER_LIMIT_FACTOR
        if abs(value) > limit:
            raise InputError(field, f"|power| must be <= {limit:g} kW ({POWER_LIMIT_FACTOR:g} x the rating)", value)
    return value


def store_content_kwh(asset: Asset, temp_degc: float, field: str) -> float:
    """A heat store's content (kWh) at `temp_degc`, linear between its empty and full temperatures."""
    empty, full = asset.temp_empty_degc, asset.temp_full_degc
    if empty is None or full is None:
        raise InputError(
            field,
            f"heat store {asset.asset_id!r} has no store_empty_degc/store_full_degc in its site file: send store_kwh",
            temp_degc,
        )
    if not empty <= temp_degc <= full:
        raise InputError(
            field, f"must lie in [{empty:g}, {full:g}] degC (store {asset.asset_id} empty..full)", temp_degc
        )
    return (asset.capacity_kwh or 0.0) * (temp_degc - empty) / (full - empty)


def _generic(data: dict[str, Any], asset: Asset) -> list[tuple[str, float, str]]:
    for key in ("value", "unit"):
        if key not in data:
            raise InputError(key, "is missing (with 'quantity', give 'value' and 'unit')")
    quantity = data["quantity"]
    if quantity not in GENERIC:
        raise InputError("quantity", f"must be one of {', '.join(GENERIC)}", quantity)
    stored, kinds = GENERIC[quantity]
    if asset.kind not in kinds:
        raise _kind_error(asset, "quantity", quantity)
    unit = fields.text(data["unit"], "unit", 8)
    factors = UNITS[stored]
    factor = factors.get(unit.strip().lower())
    if factor is None:
        raise InputError("unit", f"does not fit {quantity} (use {', '.join(sorted(factors))})", unit)
    value = fields.number(data["value"], "value")
    if unit.strip() == "%":
        value = fields.number(value, "value", 0.0, 100.0) / 100.0 * (asset.capacity_kwh or 0.0)
    elif unit.strip().lower() in ("degc", "°c"):
        value = store_content_kwh(asset, value, "value")
    else:
        value *= factor
    return [(stored, _check_value(asset, stored, value, "value"), "value")]


def _keyed(data: dict[str, Any], asset: Asset) -> list[tuple[str, float, str]]:
    found = [k for k in KEYED if k in data]
    if not found:
        raise InputError("payload", f"needs one of {', '.join(KEYED)} (or quantity, value and unit)")
    if "soc_kwh" in found and "soc_pct" in found:
        raise InputError("soc_pct", "give soc_kwh or soc_pct, not both")
    out = []
    for key in found:
        stored, _unit, kinds = KEYED[key]
        if asset.kind not in kinds:
            raise _kind_error(asset, key, stored)
        value = fields.number(data[key], key)
        if key == "soc_pct":
            value = fields.number(value, key, 0.0, 100.0) / 100.0 * (asset.capacity_kwh or 0.0)
        elif key == "store_temp_degc":
            value = store_content_kwh(asset, value, key)
        out.append((stored, _check_value(asset, stored, value, key), key))
    return out


def validate_item(
    item: Item, assets: dict[str, Asset], site_id: str, now: pd.Timestamp
) -> tuple[list[Value], list[Rejected]]:
    """The values of one item, or its rejection (an item is refused whole when any field is bad:
    its quantities count as one rejected record each)."""
    data = item.data
    try:
        data = fields.check_keys(data, ITEM_KEYS, ("asset_id", "ts"))
        if "quantity" in data and any(k in data for k in KEYED):
            raise InputError("quantity", f"give either quantity/value/unit or {', '.join(KEYED)}")
        asset_id = fields.text(data["asset_id"], "asset_id", 64)
        asset = assets.get(asset_id)
        if asset is None or asset.kind == "transformer":
            raise InputError("asset_id", f"unknown asset of site {site_id!r}", asset_id)
        measured = fields.instant(data["ts"], "ts")
        if measured > now + FUTURE_TOLERANCE:
            raise InputError("ts", f"is in the future (received at {now.isoformat()})", data["ts"])
        parts = _generic(data, asset) if "quantity" in data else _keyed(data, asset)
    except InputError as err:
        n = max(1, sum(1 for k in KEYED if isinstance(data, dict) and k in data))
        value = None if not err.has_value else str(err.value)[:200]
        rejected = Rejected(item.where, err.where, value, err.what, item.raw, item.line)
        return [], [rejected] * n
    return [Value(asset_id, q, measured, v, CANONICAL[q]) for q, v, _ in parts], []


def payload_items(doc: Any, name: str = "payload") -> list[Item]:
    """Items of a bulk document ``{"telemetry": [...]}``; raises InputError for another shape."""
    if not isinstance(doc, dict) or not isinstance(doc.get("telemetry"), list):
        raise InputError(name, "must be a JSON object with a 'telemetry' list")
    return [Item(f"{name} telemetry[{i}]", item, _raw(item)) for i, item in enumerate(doc["telemetry"])]


def message_item(topic: str, asset_id: str, payload: bytes) -> Item:
    """One MQTT state message (payload ``{ts, soc_kwh | soc_pct | store_kwh | store_temp_degc | power_kw}``)."""
    raw = payload.decode("utf-8", errors="replace")
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Item(topic, f"payload is not valid JSON ({type(exc).__name__})", raw)
    if isinstance(doc, dict):
        if "asset_id" in doc:
            return Item(topic, "asset_id must not be in the payload (the topic names the asset)", raw)
        doc = {**doc, "asset_id": asset_id}
    return Item(topic, doc, raw)


def csv_items(path: Path, name: str | None = None) -> list[Item]:
    """Items of a CSV with header ``asset_id,timestamp,quantity,value,unit`` (lines numbered as in
    the file, header = 1); a line with the wrong number of fields is an item that is refused."""
    label = name or path.name
    text = path.read_bytes().decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != CSV_HEADER:
        raise InputError(f"{label} line 1", f"header must be {','.join(CSV_HEADER)}", ",".join(header or []))
    items = []
    for row in reader:
        line = reader.line_num
        if not row or all(not f.strip() for f in row):
            continue
        raw = ",".join(row)
        if len(row) != len(CSV_HEADER):
            bad = f"has {len(row)} fields, the header {len(CSV_HEADER)}"
            items.append(Item(f"{label} line {line}", bad, raw, line))
            continue
        asset_id, ts, quantity, value, unit = (f.strip() for f in row)
        number: Any = value
        with contextlib.suppress(ValueError):
            number = float(value)
        data = {"asset_id": asset_id, "ts": ts, "quantity": quantity, "value": number, "unit": unit}
        items.append(Item(f"{label} line {line}", data, raw, line))
    return items


def _checksum(items: Sequence[Item]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.where}\0{item.raw}\0".encode("utf-8", "backslashreplace"))
    return digest.hexdigest()


def ingest_telemetry(
    engine: Engine, site_id: str, items: Iterable[Item], source: Source, now: pd.Timestamp | None = None
) -> IngestReport:
    """Validate `items` and store them as one batch (values, rejected records, counts) in one
    transaction; `now` is the receiving time (default: the wall clock)."""
    received = (pd.Timestamp.now("UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")).floor("s")
    items = list(items)
    get_site(engine, site_id)
    assets = site_assets(engine, site_id)
    if not source.checksum:
        source = Source(source.kind, source.name, _checksum(items))
    report = IngestReport(source)
    values: list[Value] = []
    for item in items:
        if isinstance(item.data, str):  # the reader refused it already
            report.rows_read += 1
            report.rejected.append(Rejected(item.where, "payload", None, item.data, item.raw, item.line))
            continue
        good, bad = validate_item(item, assets, site_id, received)
        report.rows_read += len(good) + len(bad)
        values.extend(good)
        report.rejected.extend(bad)
    with write_transaction(engine) as conn:
        bulk.lock_site(conn, site_id)
        batch_id = open_batch(conn, site_id, source, received.to_pydatetime())
        stored = _stored(conn, site_id, values)
        inserts: dict[Key, float] = {}
        updates: dict[Key, float] = {}
        replaced: list[tuple[Key, Stored, float]] = []  # the old value of each revision is kept
        accepted = duplicates = revised = 0
        for v in values:
            key = (v.asset_id, v.quantity, v.measured_at)
            old = stored.get(key)
            if old is None:
                accepted += 1
                inserts[key] = v.value
            elif old[0] == v.value:
                duplicates += 1
                continue
            else:
                revised += 1
                replaced.append((key, old, v.value))
                (inserts if key in inserts else updates)[key] = v.value
            stored[key] = (v.value, received, batch_id)
        common = {"site_id": site_id, "received_at": received.to_pydatetime(), "source": source.kind}
        if inserts:
            conn.execute(
                device_telemetry.insert(),
                [
                    {
                        **common,
                        "asset_id": a,
                        "quantity": q,
                        "measured_at": t.to_pydatetime(),
                        "value": value,
                        "unit": CANONICAL[q],
                        "batch_id": batch_id,
                    }
                    for (a, q, t), value in inserts.items()
                ],
            )
        c = device_telemetry.c
        for (a, q, t), value in updates.items():
            conn.execute(
                device_telemetry.update()
                .where(c.site_id == site_id, c.asset_id == a, c.quantity == q, c.measured_at == t.to_pydatetime())
                .values(value=value, batch_id=batch_id, **common)
            )
        if replaced:
            conn.execute(
                telemetry_revisions.insert(),
                [
                    {
                        "site_id": site_id,
                        "asset_id": a,
                        "quantity": q,
                        "measured_at": t.to_pydatetime(),
                        "old_value": value,
                        "old_received_at": when.to_pydatetime(),
                        "old_batch_id": old_batch,
                        "new_value": new,
                        "batch_id": batch_id,
                        "revised_at": received.to_pydatetime(),
                    }
                    for (a, q, t), (value, when, old_batch), new in replaced
                ],
            )
        report.accepted, report.duplicates, report.revised = accepted, duplicates, revised
        close_batch(conn, site_id, batch_id, report, received.to_pydatetime())
    return report


def _stored(conn: sa.Connection, site_id: str, values: list[Value]) -> dict[Key, Stored]:
    """The stored (value, received_at, batch_id) at the keys of `values` (by asset and time span)."""
    if not values:
        return {}
    c = device_telemetry.c
    lo = min(v.measured_at for v in values).to_pydatetime()
    hi = max(v.measured_at for v in values).to_pydatetime()
    # every key column constrained (site, asset, quantity, time: the table's key in its order), so
    # that the store seeks the span of each asset's quantity instead of reading its whole history
    query = sa.select(c.asset_id, c.quantity, c.measured_at, c.value, c.received_at, c.batch_id).where(
        c.site_id == site_id,
        c.asset_id.in_(sorted({v.asset_id for v in values})),
        c.quantity.in_(sorted({v.quantity for v in values})),
        c.measured_at >= lo,
        c.measured_at <= hi,
    )
    return {(a, q, pd.Timestamp(t)): (float(x), pd.Timestamp(r), int(b)) for a, q, t, x, r, b in conn.execute(query)}
