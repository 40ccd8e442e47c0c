"""Timestamps: offsets, naive wall times with a declared zone, and both DST changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grid.ingest.stamps import NS, parse_stamps, resolve_repeated_hour


def utc(text: str) -> int:
    return int(pd.Timestamp(text).timestamp()) * NS


def test_offsets_are_converted_and_naive_is_refused_without_zone() -> None:
    got = parse_stamps(pd.Series(["2026-01-15T01:00:00+01:00", "2026-01-15T00:15Z", "2026-01-15 00:30", ""]), None)
    assert got.ns[:2].tolist() == [utc("2026-01-15T00:00Z"), utc("2026-01-15T00:15Z")]
    assert "no UTC offset" in got.reason[2]
    assert got.reason[3] == "timestamp is empty"


def test_unparsable_text_says_so() -> None:
    got = parse_stamps(pd.Series(["yesterday", "2026-13-45T00:00:00+00:00"]), "Europe/Berlin")
    assert all("ISO 8601" in r for r in got.reason)


def test_spring_gap_is_refused_and_autumn_hour_is_flagged_ambiguous() -> None:
    got = parse_stamps(
        pd.Series(["2026-03-29T02:30:00", "2026-10-25T02:15:00", "2026-10-25T03:15:00"]),
        "Europe/Berlin",
    )
    assert "does not exist in Europe/Berlin" in got.reason[0]
    assert got.ambiguous.tolist() == [False, True, False]
    assert got.dst_ns[1] == utc("2026-10-25T00:15Z") and got.std_ns[1] == utc("2026-10-25T01:15Z")
    assert got.ns[2] == utc("2026-10-25T02:15Z")


def test_repeated_hour_resolved_by_order() -> None:
    wall = np.array([0, 15, 30, 45, 0, 15, 30, 45]) * 60 * NS
    assert resolve_repeated_hour(wall).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    # a repeated equal wall time is a duplicate, not the second pass
    assert resolve_repeated_hour(wall[[0, 0, 1, 2, 0]]).tolist() == [1, 1, 1, 1, 0]
    # a third pass does not exist
    assert resolve_repeated_hour(wall[[0, 1, 0, 1, 0]]).tolist() == [1, 1, 0, 0, -1]
    # no step back: the order cannot tell which pass these are
    assert resolve_repeated_hour(wall[:3]).tolist() == [-1, -1, -1]
