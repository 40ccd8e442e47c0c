"""API keys: roles, what each role may do, and how a key's secret is hashed and checked.

A key reads ``qk_<key_id>_<secret>``. Only ``sha256(salt + secret)`` is stored (the secret is 32
random bytes, so a fast salted hash suffices); the check uses a constant-time comparison. The full
key is shown once, when it is created, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

PREFIX = "qk"
ALL_SITES = "*"


class Role(StrEnum):
    """Who holds a key."""

    OPERATOR = "operator"  # plans, set-points, trigger a re-plan
    MANAGER = "manager"  # read readings, forecasts, KPIs
    PLANNER = "planner"  # scenarios
    INGEST = "ingest"  # write readings
    ADMIN = "admin"  # everything


class Right(StrEnum):
    """What an endpoint needs."""

    READ_PLANS = "read_plans"
    READ_SETPOINTS = "read_setpoints"
    TRIGGER_REPLAN = "trigger_replan"
    READ_READINGS = "read_readings"
    READ_FORECASTS = "read_forecasts"
    READ_KPIS = "read_kpis"
    RUN_SCENARIOS = "run_scenarios"
    WRITE_READINGS = "write_readings"
    READ_SITES = "read_sites"
    MANAGE_SITES = "manage_sites"
    READ_FLEET = "read_fleet"  #: the planning status of every site (admin)


RIGHTS: dict[Role, frozenset[Right]] = {
    Role.OPERATOR: frozenset({Right.READ_PLANS, Right.READ_SETPOINTS, Right.TRIGGER_REPLAN, Right.READ_SITES}),
    Role.MANAGER: frozenset({Right.READ_READINGS, Right.READ_FORECASTS, Right.READ_KPIS, Right.READ_SITES}),
    Role.PLANNER: frozenset({Right.RUN_SCENARIOS, Right.READ_SITES}),
    Role.INGEST: frozenset({Right.WRITE_READINGS}),
    Role.ADMIN: frozenset(Right),
}


def has_right(role: Role, right: Right) -> bool:
    """True when `role` may do `right`."""
    return right in RIGHTS[role]


def new_secret() -> tuple[str, str]:
    """A fresh (key_id, secret) pair."""
    return secrets.token_hex(8), secrets.token_urlsafe(32)


def format_key(key_id: str, secret: str) -> str:
    return f"{PREFIX}_{key_id}_{secret}"


def split_key(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a presented key, or None when it is not shaped like one."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def hash_secret(secret: str, salt: str) -> str:
    """sha256(salt + secret) as hex."""
    return hashlib.sha256((salt + secret).encode("utf-8")).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(16)


def check_secret(secret: str, salt: str, stored_hash: str) -> bool:
    """Constant-time comparison of the presented secret's hash with the stored one."""
    return hmac.compare_digest(hash_secret(secret, salt), stored_hash)
