"""Fixtures of the scheduler tests: the small sites and a controllable clock (see tests/api/kit.py)."""

from __future__ import annotations

from tests.api.kit import clock, sites

__all__ = ["clock", "sites"]
