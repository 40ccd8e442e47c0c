"""Monotonicity of the optimal objective under edits (what must hold for an optimal LP).

- Adding storage only adds options (an idle battery that ends where it started costs nothing):
  the optimal objective never increases.
- A higher transformer limit relaxes a bound: the objective never increases.
- Taking a device's flexibility contract away restricts it to its requested profile (dimmed at a
  price at most): the objective never decreases (wallboxes and heat pumps by property test,
  batteries below; batteries without a contract share the same terminal valuation).

On the small demo quarter over the congested evening (17:00-23:00 local, 6 h), solver threads 1.
The tolerance covers HiGHS's optimality tolerances (1e-7 relative) with room to spare.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid.domain import Site
from grid.scenarios.edits import apply_edits
from grid.scenarios.spec import scenario_from_dict
from grid.series import SiteInputs
from grid.timeindex import horizon_index, to_utc
from models.solve import SolveOptions, plan_site
from tests.scenarios.helpers import EVENING

SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REL_TOL = 1e-6


def objective(small: tuple[Site, SiteInputs], *edits: dict[str, Any]) -> float:
    return _objective(small, tuple(repr(sorted(e.items())) for e in edits), edits)


_memo: dict[tuple[int, tuple[str, ...]], float] = {}


def _objective(small: tuple[Site, SiteInputs], key: tuple[str, ...], edits: tuple[dict[str, Any], ...]) -> float:
    memo_key = (id(small), key)
    if memo_key not in _memo:
        site, inputs = small
        spec = scenario_from_dict({"name": "m", "baseline": "x.yaml", "edits": list(edits)})
        new, new_inputs = apply_edits(site, inputs, list(spec.edits))
        index = horizon_index(to_utc(EVENING["start"]), EVENING["hours"], site.site.resolution_min)
        plan = plan_site(new, new_inputs, index, SolveOptions(threads=1))
        assert plan.status != "failed", plan.message
        assert plan.objective_eur is not None
        _memo[memo_key] = plan.objective_eur
    return _memo[memo_key]


def tol(x: float) -> float:
    return REL_TOL * max(1.0, abs(x))


@SETTINGS
@given(
    kwh=st.floats(10.0, 600.0),
    c_rate=st.floats(0.1, 1.0),
    cid=st.sampled_from(["T1", "T2"]),
    soc=st.floats(0.0, 1.0),
)
def test_adding_storage_never_increases_the_objective(
    small: tuple[Site, SiteInputs], kwh: float, c_rate: float, cid: str, soc: float
) -> None:
    base = objective(small)
    more = objective(
        small,
        {
            "kind": "add_battery",
            "connection": cid,
            "capacity_kwh": kwh,
            "charge_kw": kwh * c_rate,
            "initial_soc": max(soc, 0.05),
        },
    )
    assert more <= base + tol(base)


@SETTINGS
@given(low_kva=st.floats(30.0, 120.0), extra_kva=st.floats(0.0, 200.0))
def test_raising_a_transformer_limit_never_increases_the_objective(
    small: tuple[Site, SiteInputs], low_kva: float, extra_kva: float
) -> None:
    low = objective(small, {"kind": "set_transformer", "connection": "T2", "rated_kva": low_kva})
    high = objective(small, {"kind": "set_transformer", "connection": "T2", "rated_kva": low_kva + extra_kva})
    assert high <= low + tol(low)


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(["ev_charger", "heat_pump"]), min_size=1, unique=True),
    cid=st.sampled_from([None, "T1", "T2"]),
    kva=st.sampled_from([None, 45.0]),
)
def test_removing_flexibility_never_decreases_the_objective(
    small: tuple[Site, SiteInputs], kinds: list[str], cid: str | None, kva: float | None
) -> None:
    tight = [{"kind": "set_transformer", "connection": "T2", "rated_kva": kva}] if kva else []
    flexible = objective(small, *tight)
    rigid = objective(small, *tight, {"kind": "set_flex_contract", "value": False, "devices": kinds, "connection": cid})
    assert rigid >= flexible - tol(flexible)


def test_removing_battery_flexibility_never_decreases_the_objective(small: tuple[Site, SiteInputs]) -> None:
    flexible = objective(small)
    rigid = objective(small, {"kind": "set_flex_contract", "value": False, "devices": ["battery"]})
    assert rigid >= flexible - tol(flexible)
