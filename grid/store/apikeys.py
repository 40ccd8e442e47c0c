"""API keys in the store: create (returns the key once), list, revoke, and authenticate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.keys import ALL_SITES, Role, check_secret, format_key, hash_secret, new_salt, new_secret, split_key
from grid.store.schema import api_keys


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    key_id: str
    role: Role
    sites: tuple[str, ...]
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def covers(self, site_id: str) -> bool:
        """True when the key is scoped to `site_id`."""
        return ALL_SITES in self.sites or site_id in self.sites


def _row_key(row: sa.Row[Any]) -> ApiKey:
    sites = tuple(s for s in row.sites.split(",") if s)
    return ApiKey(row.key_id, Role(row.role), sites, row.label, row.created_at, row.revoked_at)


def create_key(engine: Engine, role: str, sites: Sequence[str], label: str = "") -> tuple[ApiKey, str]:
    """Store a new key; returns it and the full key text (shown once, not stored)."""
    try:
        role_ = Role(role)
    except ValueError:
        raise InputError("role", f"must be one of {', '.join(r.value for r in Role)}", role) from None
    clean = [s.strip() for s in sites if s.strip()]
    if not clean:
        raise InputError("sites", "a key needs at least one site (or '*')")
    bad = [s for s in clean if "," in s]
    if bad:
        raise InputError("sites", "a site id may not contain ','", bad[0])
    key_id, secret = new_secret()
    salt = new_salt()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                salt=salt,
                key_hash=hash_secret(secret, salt),
                role=role_.value,
                sites=",".join(clean),
                label=label,
                created_at=now,
            )
        )
    return ApiKey(key_id, role_, tuple(clean), label, now, None), format_key(key_id, secret)


def list_keys(engine: Engine) -> list[ApiKey]:
    """Every key, oldest first (revoked ones too)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)).all()
    return [_row_key(r) for r in rows]


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke `key_id`; False when there is no such active key."""
    with engine.begin() as conn:
        result = conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
    return result.rowcount == 1


def authenticate(engine: Engine, token: str) -> ApiKey | None:
    """The active key matching `token`, else None (unknown, revoked or wrong secret)."""
    parts = split_key(token)
    if parts is None:
        return None
    key_id, secret = parts
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not check_secret(secret, row.salt, row.key_hash):
        return None
    return _row_key(row)
