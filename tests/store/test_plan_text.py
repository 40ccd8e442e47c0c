"""The JSON text a plan row keeps (grid.store.plans.plan_text): the values ``json.dumps`` wrote."""

from __future__ import annotations

import json

import numpy as np
import orjson

from grid.store.plans import plan_text
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
