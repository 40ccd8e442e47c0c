"""EV charging sessions as events: arrival (create), change (departure, energy), plug-out.

The same rules for every source (the API, MQTT ``quartier/<site>/chargers/<charger_id>/session``,
the site YAML that seeds the demo). A session names its ``charger`` (an EV charger of the site),
``arrival`` and expected ``departure`` (ISO 8601 with offset, departure after arrival and not yet
past), and what the car needs: ``energy_needed_kwh``, or ``target_soc`` (0..1) with the car's
``capacity_kwh`` (and optionally its ``initial_soc``: the need is (target - initial) x capacity).
``v2g_consent`` (default false) allows discharging when the charger has a flexibility contract.

A charger holds one car at a time: a session that overlaps another one on the same charger that
is not plugged out is refused (:class:`SessionConflictError`). Every accepted event is stored
(``ev_session_events``) next to the session's new state; an event that changes nothing (the same
arrival, change or plug-out delivered again) is a duplicate and stores nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.errors import GridError, InputError
from grid.ingest import fields
from grid.ingest.report import IngestReport, Rejected, Source
from grid.store import bulk
from grid.store.engine import write_transaction
from grid.store.live import StoredSession, get_session, save_session, site_assets, store_rejections
from grid.store.schema import ev_sessions

#: the largest car battery (and energy need) accepted, kWh
MAX_CAR_KWH = 300.0
#: a plug-out stamped later than the receiving clock by more than this is refused
FUTURE_TOLERANCE = pd.Timedelta(minutes=5)
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
CREATE_KEYS = {
    "session_id",
    "charger",
    "arrival",
    "departure",
    "energy_needed_kwh",
    "target_soc",
    "capacity_kwh",
    "initial_soc",
    "v2g_consent",
}
CHANGE_KEYS = {"departure", "energy_needed_kwh", "target_soc", "capacity_kwh", "initial_soc", "v2g_consent"}
PLUG_OUT_KEYS = {"at"}
#: MQTT: the ``event`` field of a session message -> what it does
MQTT_EVENTS = ("arrival", "change", "plug_out")


class UnknownSessionError(GridError):
    """No session with this id at this site."""

    def __init__(self, site: str, session_id: str) -> None:
        super().__init__(f"no EV session {session_id!r} at site {site!r}")


class SessionConflictError(GridError):
    """The event contradicts the stored state (another car on the charger, a session that
    exists with other fields, a change after plug-out)."""


def _session_id(value: Any) -> str:
    text = fields.text(value, "session_id", 64)
    if not re.match(ID_PATTERN, text):
        raise InputError("session_id", "may hold only letters, digits and _ . : - (at most 64)", text)
    return text


def _need(data: dict[str, Any], base: StoredSession | None) -> dict[str, Any]:
    """energy_needed_kwh, target_soc, capacity_kwh, initial_soc from `data` (over `base`)."""
    if "energy_needed_kwh" in data and "target_soc" in data:
        raise InputError("target_soc", "give energy_needed_kwh or target_soc with capacity_kwh, not both")
    capacity = base.capacity_kwh if base is not None else None
    if "capacity_kwh" in data:
        capacity = fields.number(data["capacity_kwh"], "capacity_kwh", 0.0, MAX_CAR_KWH)
        if capacity <= 0:
            raise InputError("capacity_kwh", "must be > 0", data["capacity_kwh"])
    initial = base.initial_soc if base is not None else None
    if "initial_soc" in data:
        initial = fields.number(data["initial_soc"], "initial_soc", 0.0, 1.0)
    if "target_soc" in data:
        target = fields.number(data["target_soc"], "target_soc", 0.0, 1.0)
        if capacity is None:
            raise InputError("capacity_kwh", "is needed with target_soc (the car's battery, kWh)")
        energy = max(0.0, target - (initial or 0.0)) * capacity
        return {"energy_needed_kwh": energy, "target_soc": target, "capacity_kwh": capacity, "initial_soc": initial}
    if "energy_needed_kwh" in data:
        energy = fields.number(data["energy_needed_kwh"], "energy_needed_kwh", 0.0, MAX_CAR_KWH)
    elif base is not None:
        energy = base.energy_needed_kwh
        if base.target_soc is not None and capacity is not None:  # a new capacity or initial SoC
            energy = max(0.0, base.target_soc - (initial or 0.0)) * capacity
    else:
        raise InputError("energy_needed_kwh", "is missing (or give target_soc and capacity_kwh)")
    if capacity is not None and energy > capacity:
        raise InputError("energy_needed_kwh", f"must be <= capacity_kwh ({capacity:g})", energy)
    kept = base.target_soc if base is not None and "energy_needed_kwh" not in data else None
    return {"energy_needed_kwh": energy, "target_soc": kept, "capacity_kwh": capacity, "initial_soc": initial}


def _check_times(arrival: pd.Timestamp, departure: pd.Timestamp, now: pd.Timestamp) -> None:
    if departure <= arrival:
        raise InputError("departure", f"must be after arrival ({arrival.isoformat()})", departure.isoformat())
    if departure <= now:
        raise InputError("departure", f"is already past (now {now.isoformat()})", departure.isoformat())


def _check_charger(conn: Connection, site: str, charger: str) -> None:
    asset = site_assets(conn, site).get(charger)
    if asset is None or asset.kind != "ev_charger":
        raise InputError("charger", f"unknown EV charger of site {site!r}", charger)


def _check_free(conn: Connection, site: str, session: StoredSession) -> None:
    s = ev_sessions.c
    other = conn.execute(
        sa.select(s.session_id, s.arrival, s.departure).where(
            s.site_id == site,
            s.charger == session.charger,
            s.session_id != session.session_id,
            s.plugged_out_at.is_(None),
            s.arrival < session.departure.to_pydatetime(),
            s.departure > session.arrival.to_pydatetime(),
        )
    ).first()
    if other is not None:
        raise SessionConflictError(
            f"charger {session.charger!r} holds session {other.session_id!r} "
            f"({pd.Timestamp(other.arrival).isoformat()} to {pd.Timestamp(other.departure).isoformat()})"
        )


def _body(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in sorted(data)}


def create_session(engine: Engine, site: str, data: Any, source: str, now: pd.Timestamp) -> tuple[StoredSession, bool]:
    """Store a new session from `data` (see the module docstring); (session, created).

    A session id that exists with the same fields is returned as it is (created False: a request
    sent again); with other fields it is a :class:`SessionConflictError` (change it with
    :func:`change_session`). Without ``session_id`` a new id is made.
    """
    data = fields.check_keys(data, CREATE_KEYS, ("charger", "arrival", "departure"))
    session_id = _session_id(data["session_id"]) if "session_id" in data else uuid.uuid4().hex
    charger = fields.text(data["charger"], "charger", 64)
    arrival = fields.instant(data["arrival"], "arrival")
    departure = fields.instant(data["departure"], "departure")
    _check_times(arrival, departure, now)
    need = _need(data, None)
    v2g = fields.boolean(data["v2g_consent"], "v2g_consent") if "v2g_consent" in data else False
    session = StoredSession(session_id, charger, arrival, departure, v2g_consent=v2g, **need)
    with write_transaction(engine) as conn:
        bulk.lock_site(conn, site)
        _check_charger(conn, site, charger)
        stored = get_session(conn, site, session_id)
        if stored is not None:
            if stored == session:
                return stored, False
            raise SessionConflictError(f"EV session {session_id!r} exists with other fields (change it with PATCH)")
        _check_free(conn, site, session)
        save_session(conn, site, session, "created", now, now, source, _body({**data, "session_id": session_id}))
    return session, True


def change_session(
    engine: Engine, site: str, session_id: str, data: Any, source: str, now: pd.Timestamp
) -> tuple[StoredSession, bool]:
    """Change the departure, the energy need or the V2G consent of a session not plugged out;
    (session, changed): a change to the state it has already is no event."""
    data = fields.check_keys(data, CHANGE_KEYS)
    if not data:
        raise InputError("payload", f"give at least one of {', '.join(sorted(CHANGE_KEYS))}")
    with write_transaction(engine) as conn:
        bulk.lock_site(conn, site)
        stored = get_session(conn, site, session_id)
        if stored is None:
            raise UnknownSessionError(site, session_id)
        if stored.plugged_out_at is not None:
            raise SessionConflictError(
                f"EV session {session_id!r} was plugged out at {stored.plugged_out_at.isoformat()}"
            )
        departure = fields.instant(data["departure"], "departure") if "departure" in data else stored.departure
        if "departure" in data:
            _check_times(stored.arrival, departure, now)
        need = _need(data, stored)
        v2g = fields.boolean(data["v2g_consent"], "v2g_consent") if "v2g_consent" in data else stored.v2g_consent
        session = replace(stored, departure=departure, v2g_consent=v2g, **need)
        if session == stored:
            return stored, False
        _check_free(conn, site, session)
        save_session(conn, site, session, "changed", now, now, source, _body(data))
    return session, True


def plug_out(
    engine: Engine, site: str, session_id: str, data: Any, source: str, now: pd.Timestamp
) -> tuple[StoredSession, bool]:
    """The car left (``at``, default now); (session, changed): a session plugged out already
    keeps its first time."""
    data = fields.check_keys(data if data is not None else {}, PLUG_OUT_KEYS)
    at = fields.instant(data["at"], "at") if "at" in data else now.floor("s")
    if at > now + FUTURE_TOLERANCE:
        raise InputError("at", f"is in the future (now {now.isoformat()})", data.get("at"))
    with write_transaction(engine) as conn:
        bulk.lock_site(conn, site)
        stored = get_session(conn, site, session_id)
        if stored is None:
            raise UnknownSessionError(site, session_id)
        if stored.plugged_out_at is not None:
            return stored, False
        if at < stored.arrival:
            raise InputError("at", f"is before the arrival ({stored.arrival.isoformat()})", at.isoformat())
        session = replace(stored, plugged_out_at=at)
        save_session(conn, site, session, "plugged_out", at, now, source, _body(data))
    return session, True


def session_message(
    engine: Engine, site: str, topic: str, charger: str, payload: bytes, now: pd.Timestamp
) -> IngestReport:
    """One MQTT session message (``{"event": arrival | change | plug_out, "session_id", ...}``);
    a refused one is stored as a rejected record. Never raises for what the message holds."""
    raw = payload.decode("utf-8", errors="replace")
    report = IngestReport(Source("mqtt", topic))
    report.rows_read = 1
    try:
        try:
            doc = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError("payload", f"is not valid JSON ({type(exc).__name__})") from None
        if not isinstance(doc, dict):
            raise InputError("payload", "must be a JSON object", type(doc).__name__)
        event = doc.get("event")
        if event not in MQTT_EVENTS:
            raise InputError("event", f"must be one of {', '.join(MQTT_EVENTS)}", event)
        body = {k: v for k, v in doc.items() if k != "event"}
        if event == "arrival":
            if "charger" in body:
                raise InputError("charger", "must not be in the payload (the topic names the charger)")
            if "session_id" not in body:  # a message delivered again must name the same session
                raise InputError("session_id", "is missing (needed over MQTT)")
            created = create_session(engine, site, {**body, "charger": charger}, "mqtt", now)[1]
            report.accepted, report.duplicates = int(created), int(not created)
        else:
            session_id = _session_id(body.pop("session_id", None))
            stored = get_session(engine, site, session_id)
            if stored is not None and stored.charger != charger:
                raise InputError("session_id", f"is a session of charger {stored.charger!r}", session_id)
            act = change_session if event == "change" else plug_out
            changed = act(engine, site, session_id, body, "mqtt", now)[1]
            report.accepted, report.duplicates = int(changed), int(not changed)
    except (InputError, UnknownSessionError, SessionConflictError) as err:
        if isinstance(err, InputError):
            field, value, reason = err.where, (str(err.value)[:200] if err.has_value else None), err.what
        else:
            field, value, reason = "session_id", None, str(err)
        report.rejected.append(Rejected(topic, field, value, reason, raw))
        store_rejections(engine, site, report, now.to_pydatetime())
    return report
