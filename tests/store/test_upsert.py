"""The in-memory upsert plan: accepted, duplicate or revised, applied in record order."""

from __future__ import annotations

import pandas as pd

from grid.store.upsert import ACCEPTED, DUPLICATE, REVISED, THIS_BATCH, classify, empty_existing

MEAS, EST, REV = 0, 1, 2


def incoming(*rows: tuple[int, int, float, int]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["sensor_id", "ts_s", "value", "quality"])
    return frame.assign(pos=range(len(frame)))


def existing(*rows: tuple[int, int, float, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sensor_id", "ts_s", "value", "quality", "batch_id"])


def test_new_values_are_accepted_and_inserted() -> None:
    plan = classify(incoming((1, 0, 1.0, MEAS), (1, 900, 2.0, MEAS)), empty_existing())
    assert plan.counts() == (2, 0, 0)
    assert plan.writes["is_new"].all()
    assert plan.revisions.empty


def test_same_value_is_duplicate_other_value_is_revision() -> None:
    stored = existing((1, 0, 1.0, MEAS, 7), (1, 900, 2.0, MEAS, 7))
    plan = classify(incoming((1, 0, 1.0 + 1e-12, MEAS), (1, 900, 2.5, MEAS)), stored)
    assert plan.counts() == (0, 1, 1)
    assert plan.writes[["ts_s", "value", "quality", "is_new"]].values.tolist() == [[900, 2.5, REV, False]]
    rev = plan.revisions.iloc[0]
    assert (rev["old_value"], rev["new_value"], rev["old_batch_id"]) == (2.0, 2.5, 7)


def test_repeats_inside_a_batch_apply_in_order() -> None:
    # 1.0 is new, then 1.0 again (duplicate), then 3.0 (revises 1.0), then 3.0 (duplicate)
    plan = classify(
        incoming((1, 0, 1.0, MEAS), (1, 0, 1.0, MEAS), (1, 0, 3.0, MEAS), (1, 0, 3.0, MEAS)),
        empty_existing(),
    )
    assert plan.outcome.sort_index().tolist() == [ACCEPTED, DUPLICATE, REVISED, DUPLICATE]
    assert plan.writes[["value", "quality", "is_new"]].values.tolist() == [[3.0, REV, True]]
    assert plan.revisions[["old_value", "new_value", "old_batch_id"]].values.tolist() == [[1.0, 3.0, THIS_BATCH]]


def test_measured_fills_an_estimate_and_estimate_is_upgraded_by_equal_measurement() -> None:
    stored = existing((1, 0, 1.0, EST, 3), (1, 900, 2.0, EST, 3))
    plan = classify(incoming((1, 0, 1.5, MEAS), (1, 900, 2.0, MEAS)), stored)
    assert plan.counts() == (0, 1, 1)
    writes = plan.writes.sort_values("ts_s")[["ts_s", "value", "quality"]].values.tolist()
    assert writes == [[0, 1.5, MEAS], [900, 2.0, MEAS]]  # not "revised": it replaced an estimate
