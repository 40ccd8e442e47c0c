"""Plan bodies in the store: the JSON text a row keeps (the values ``json.dumps`` wrote) and the
parsed bodies kept per store (grid.store.plans)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy.engine import Engine

from grid.store.plans import kept_plan_body, plan_body, plan_text, save_plan
from grid.store.sites import create_site
from grid.store.testing import scratch_store
from tests.models.sites import household, make_inputs, make_site, run


def test_plan_text_reads_back_as_json_dumps_wrote_it() -> None:
    site = make_site(
        households=[household("h1")],
        batteries=[{"id": "b1", "connection": "T1", "capacity_kwh": 10.0, "charge_kw": 5.0, "discharge_kw": 5.0}],
    )
    inputs = make_inputs(site, 6, load={"h1": [1.0, 2.5, 0.3, 4.0, 1.0, 0.2]}, price=[0.1, 0.3, 0.05, 0.4, 0.2, 0.1])
    body = run(site, inputs).to_dict()
    body["extra"] = {"tiny": 1e-06, "neg": -2.5e-07, "big": 1.7976931348623157e308, "text": "Gr\u00fc\u00dfe \u2603"}
    text = plan_text(body)
    assert orjson.loads(text) == json.loads(json.dumps(body, allow_nan=False))
    assert json.loads(text) == body  # the standard library reads it the same


def test_plan_text_numpy_numbers_and_keys_as_json_dumps_writes_them() -> None:
    body = {"a": np.float64(0.1), "n": np.int64(3), "arr": np.array([0.25, 1.0]), 7: "seven", "flag": True}
    expected = {"a": 0.1, "n": 3, "arr": [0.25, 1.0], "7": "seven", "flag": True}
    assert json.loads(plan_text(body)) == expected


def _body(plan_id: str, objective: float) -> dict[str, object]:
    return {
        "plan_id": plan_id,
        "site": "s1",
        "computed_at": "2026-01-14T00:00:00+00:00",
        "start": "2026-01-14T00:00:00+00:00",
        "end": "2026-01-14T01:00:00+00:00",
        "status": "optimal",
        "objective_eur": objective,
    }


def test_kept_plan_bodies_are_the_stored_ones_of_each_store(store: Engine, tmp_path: Path) -> None:
    create_site(store, "s1")
    save_plan(store, _body("p1", 1.0))
    save_plan(store, _body("p2", 2.0))
    assert kept_plan_body(store, "p1")["objective_eur"] == 1.0
    assert kept_plan_body(store, "p2")["objective_eur"] == 2.0
    assert kept_plan_body(store, "p1") is kept_plan_body(store, "p1")  # parsed once
    assert kept_plan_body(store, "p1") == plan_body(store, "p1")
    # another store holding a plan of the same id gets its own body, not the one kept above
    (tmp_path / "other").mkdir()
    with scratch_store("sqlite", tmp_path / "other") as other:
        create_site(other, "s1")
        save_plan(other, _body("p1", 9.0))
        assert kept_plan_body(other, "p1")["objective_eur"] == 9.0
    assert kept_plan_body(store, "p1")["objective_eur"] == 1.0
    with pytest.raises(KeyError):
        kept_plan_body(store, "absent")
