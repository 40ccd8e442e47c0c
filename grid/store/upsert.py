"""Idempotent upsert, decided in memory: which incoming values are new, duplicates or revisions.

Incoming rows are applied as if one by one, in their order (`pos`): a row whose key
(sensor, timestamp) is unknown is *accepted*; a row equal to the current value (within
:data:`RTOL`/:data:`ATOL`) is a *duplicate*; a row with a different value is *revised*: it becomes
the current value and the value it replaces goes to the revisions table. This holds for repeats of
a key inside one batch as well as against the store.

Quality of the current value after a revision: ``revised`` when a measured value replaced a
measured or revised one; otherwise the incoming quality (a measured value that fills an estimated
interval is ``measured``). A duplicate that confirms an estimated value with a measured one
upgrades its quality to ``measured`` (still counted as a duplicate).

The caller must hold the site's write lock while it classifies and writes (see
:func:`grid.store.bulk.lock_site`), so that the stored rows cannot change in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grid.store.schema import QUALITY_CODES, Quality

ACCEPTED, DUPLICATE, REVISED = 0, 1, 2
RTOL = 1e-10
ATOL = 1e-9
KEYS = ["sensor_id", "ts_s"]
MEASURED = QUALITY_CODES[Quality.MEASURED]
ESTIMATED = QUALITY_CODES[Quality.ESTIMATED]
REVISED_Q = QUALITY_CODES[Quality.REVISED]
THIS_BATCH = -1  # old_batch_id placeholder for a value replaced within the same batch

INCOMING_COLUMNS = ["pos", "sensor_id", "ts_s", "value", "quality"]
EXISTING_COLUMNS = ["sensor_id", "ts_s", "value", "quality", "batch_id"]
WRITE_COLUMNS = ["sensor_id", "ts_s", "value", "quality", "is_new"]
REVISION_COLUMNS = ["sensor_id", "ts_s", "old_value", "old_quality", "old_batch_id", "new_value"]


@dataclass
class UpsertPlan:
    """What to do with one batch of values for one table.

    outcome:   ACCEPTED/DUPLICATE/REVISED per incoming row, indexed by the incoming `pos`
    writes:    rows to write (:data:`WRITE_COLUMNS`); ``is_new`` rows are inserted (the key is
               not stored yet), the others overwrite the stored row
    revisions: replaced values (:data:`REVISION_COLUMNS`); old_batch_id is THIS_BATCH for a value
               replaced inside the batch
    """

    outcome: pd.Series
    writes: pd.DataFrame
    revisions: pd.DataFrame

    def counts(self) -> tuple[int, int, int]:
        """(accepted, duplicates, revised)."""
        values = self.outcome.to_numpy()
        return (
            int((values == ACCEPTED).sum()),
            int((values == DUPLICATE).sum()),
            int((values == REVISED).sum()),
        )


def same_value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality within the store's tolerance (NaN never equals)."""
    return np.abs(a - b) <= ATOL + RTOL * np.abs(b)


def empty_existing() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else "int64") for c in EXISTING_COLUMNS})


def _revised_quality(incoming: np.ndarray, old: np.ndarray) -> np.ndarray:
    replaces_measured = (incoming == MEASURED) & ((old == MEASURED) | (old == REVISED_Q))
    return np.where(replaces_measured, REVISED_Q, incoming)


def classify(incoming: pd.DataFrame, existing: pd.DataFrame) -> UpsertPlan:
    """Plan the upsert of `incoming` (:data:`INCOMING_COLUMNS`) over `existing` (the stored rows
    with the same keys, :data:`EXISTING_COLUMNS`)."""
    inc = incoming[INCOMING_COLUMNS]
    keys = inc["sensor_id"].to_numpy(dtype=np.int64), inc["ts_s"].to_numpy(dtype=np.int64)
    if not _is_sorted(*keys):
        inc = inc.sort_values([*KEYS, "pos"], kind="stable")
    repeated = inc.duplicated(KEYS, keep=False).to_numpy()
    if not repeated.any():
        return _classify_single(inc, existing)
    plan_single = _classify_single(inc[~repeated], existing)
    plan_chain = _classify_chains(inc[repeated], existing)
    return UpsertPlan(
        outcome=pd.concat([plan_single.outcome, plan_chain.outcome]),
        writes=pd.concat([plan_single.writes, plan_chain.writes], ignore_index=True),
        revisions=pd.concat([plan_single.revisions, plan_chain.revisions], ignore_index=True),
    )


def _is_sorted(sensor_id: np.ndarray, ts_s: np.ndarray) -> bool:
    if len(sensor_id) < 2:
        return True
    ds, dt = np.diff(sensor_id), np.diff(ts_s)
    return bool(((ds > 0) | ((ds == 0) & (dt > 0))).all())


def _classify_single(inc: pd.DataFrame, existing: pd.DataFrame) -> UpsertPlan:
    """Vectorised path: every key occurs once in `inc`."""
    value = inc["value"].to_numpy(dtype=float)
    quality = inc["quality"].to_numpy(dtype=np.int64)
    n = len(inc)
    if existing.empty:
        writes = pd.DataFrame(
            {
                "sensor_id": inc["sensor_id"].to_numpy(),
                "ts_s": inc["ts_s"].to_numpy(),
                "value": value,
                "quality": quality,
                "is_new": np.ones(n, dtype=bool),
            }
        )
        outcome = pd.Series(np.full(n, ACCEPTED), index=inc["pos"].to_numpy())
        return UpsertPlan(outcome, writes, pd.DataFrame(columns=REVISION_COLUMNS))
    merged = inc.merge(existing, on=KEYS, how="left", suffixes=("", "_old"), validate="one_to_one")
    value = merged["value"].to_numpy(dtype=float)
    quality = merged["quality"].to_numpy(dtype=np.int64)
    old_value = merged["value_old"].to_numpy(dtype=float)
    has_old = ~np.isnan(old_value)
    old_quality = merged["quality_old"].fillna(MEASURED).to_numpy(dtype=np.int64)
    same = has_old & same_value(value, old_value)
    result = np.where(~has_old, ACCEPTED, np.where(same, DUPLICATE, REVISED))
    upgrade = same & (old_quality == ESTIMATED) & (quality == MEASURED)
    changed = result == REVISED
    new_quality = np.where(changed, _revised_quality(quality, old_quality), quality)
    write = ~has_old | changed | upgrade
    writes = pd.DataFrame(
        {
            "sensor_id": merged["sensor_id"].to_numpy()[write],
            "ts_s": merged["ts_s"].to_numpy()[write],
            "value": np.where(upgrade, old_value, value)[write],
            "quality": new_quality[write],
            "is_new": ~has_old[write],
        }
    )
    rev = merged[changed]
    revisions = pd.DataFrame(
        {
            "sensor_id": rev["sensor_id"].to_numpy(),
            "ts_s": rev["ts_s"].to_numpy(),
            "old_value": rev["value_old"].to_numpy(dtype=float),
            "old_quality": rev["quality_old"].to_numpy(dtype=np.int64),
            "old_batch_id": rev["batch_id"].to_numpy(dtype=np.int64),
            "new_value": rev["value"].to_numpy(dtype=float),
        },
        columns=REVISION_COLUMNS,
    )
    return UpsertPlan(pd.Series(result, index=merged["pos"].to_numpy()), writes, revisions)


def _classify_chains(inc: pd.DataFrame, existing: pd.DataFrame) -> UpsertPlan:
    """Keys repeated inside the batch: apply their rows one by one (rare, so plain Python)."""
    old = {
        (int(s), int(t)): (float(v), int(q), int(b))
        for s, t, v, q, b in existing[EXISTING_COLUMNS].itertuples(index=False, name=None)
    }
    outcome: dict[int, int] = {}
    writes: list[tuple[int, int, float, int, bool]] = []
    revisions: list[tuple[int, int, float, int, int, float]] = []
    for group_key, rows in inc.groupby(KEYS, sort=False):
        sensor_id, ts_s = np.asarray(group_key, dtype=np.int64).tolist()
        key = (int(sensor_id), int(ts_s))
        stored = old.get(key)
        state = stored  # (value, quality, batch)
        for pos, value, quality in zip(rows["pos"], rows["value"], rows["quality"], strict=True):
            if state is None:
                outcome[int(pos)] = ACCEPTED
                state = (float(value), int(quality), THIS_BATCH)
            elif same_value(np.array(value), np.array(state[0])):
                outcome[int(pos)] = DUPLICATE
                if state[1] == ESTIMATED and quality == MEASURED:
                    state = (state[0], MEASURED, THIS_BATCH)
            else:
                outcome[int(pos)] = REVISED
                revisions.append((*key, state[0], state[1], state[2], float(value)))
                new_q = int(_revised_quality(np.array([quality]), np.array([state[1]]))[0])
                state = (float(value), new_q, THIS_BATCH)
        if state is not None and (stored is None or stored[:2] != state[:2]):
            writes.append((*key, state[0], state[1], stored is None))
    return UpsertPlan(
        outcome=pd.Series(outcome, dtype="int64"),
        writes=pd.DataFrame(writes, columns=WRITE_COLUMNS),
        revisions=pd.DataFrame(revisions, columns=REVISION_COLUMNS),
    )
