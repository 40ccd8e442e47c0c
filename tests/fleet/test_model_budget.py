"""The worker's kept models under a memory budget (:class:`grid.fleet.worker.ModelLRU`), in this
process: idle models go first, a model that does not fit is not kept, and a site planned after
its model went plans cold and as a fresh build does."""

from __future__ import annotations

import pandas as pd
import pytest

from grid.demo import generate_demo
from grid.domain import Site, load_site
from grid.fleet.worker import ModelLRU, model_mb
from grid.series import SiteInputs, load_inputs
from grid.timeindex import horizon_index
from models.solve import SolveOptions, plan_site

HOURS = 2.0
OPTIONS = SolveOptions(time_limit_s=60)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Site, SiteInputs]]:
    """Three small sites of different sizes (ids a, b, c)."""
    out = []
    for k, (name, homes) in enumerate((("a", 8), ("b", 12), ("c", 16))):
        path = generate_demo(tmp_path_factory.mktemp(name), seed=k, n_households=homes, hours=4)
        path.write_text(path.read_text(encoding="utf-8").replace("\n  id: demo\n", f"\n  id: {name}\n", 1), "utf-8")
        site = load_site(path)
        out.append((site, load_inputs(site)))
    return out


def _index(inputs: SiteInputs) -> pd.DatetimeIndex:
    return horizon_index(inputs.index[0], HOURS, 15)


def _run(models: ModelLRU, site: Site, inputs: SiteInputs) -> bool:
    """Plan `site`; True if it was warm."""
    plan = models(site, inputs, _index(inputs), OPTIONS)
    assert plan.status.startswith("optimal")
    return bool(plan.solver["warm_start"])


def test_sizes_are_estimated_from_the_lp(three: list[tuple[Site, SiteInputs]]) -> None:
    models = ModelLRU(budget_mb=1e6)
    for site, inputs in three:
        _run(models, site, inputs)
    kept = models.kept()
    assert list(kept) == ["a", "b", "c"]  # least recently used first
    for site, _inputs in three:
        columns, rows = models.planner.kept_dimensions(site.id) or (0, 0)
        assert kept[site.id] == pytest.approx(model_mb(columns, rows)) and columns > 0 and rows > 0
    assert kept["a"] < kept["b"] < kept["c"]  # more households, more of everything


def test_a_full_budget_keeps_the_models_it_has(three: list[tuple[Site, SiteInputs]]) -> None:
    sizes = ModelLRU(budget_mb=1e6)
    for site, inputs in three:
        _run(sizes, site, inputs)
    mb = sizes.kept()
    models = ModelLRU(budget_mb=mb["a"] + mb["b"])  # room for a and b, not for c besides
    warm = [[_run(models, site, inputs) for site, inputs in three] for _ in range(3)]
    # every round the same two stay warm; c is planned cold each time (a plain LRU of two models
    # would drop the model of the site that comes next: no warm run at all)
    assert warm == [[False, False, False], [True, True, False], [True, True, False]]
    assert set(models.kept()) == {"a", "b"} and models.evicted == ["c", "c", "c"]


def test_idle_models_go_first_and_the_evicted_site_plans_cold_and_correctly(
    three: list[tuple[Site, SiteInputs]],
) -> None:
    (a, a_in), (b, b_in), _ = three
    models = ModelLRU(budget_mb=1e-3, idle_s=0.0)  # room for one model, every other one idle
    assert [_run(models, a, a_in), _run(models, a, a_in), _run(models, b, b_in)] == [False, True, False]
    assert models.evicted == ["a"] and list(models.kept()) == ["b"]
    index = _index(a_in)
    again = models(a, a_in, index, OPTIONS)
    assert again.solver["warm_start"] is False and models.evicted == ["a", "b"]
    fresh = plan_site(a, a_in, index, OPTIONS)
    assert again.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-9)
    for asset_id, asset in fresh.assets.items():
        if "power_kw" in asset:
            assert list(again.assets[asset_id]["power_kw"]) == pytest.approx(list(asset["power_kw"]), abs=1e-6)


def test_models_idle_for_longer_go_when_room_is_needed(three: list[tuple[Site, SiteInputs]]) -> None:
    (a, a_in), (b, b_in), (c, c_in) = three
    sizes = ModelLRU(budget_mb=1e6)
    for site, inputs in three:
        _run(sizes, site, inputs)
    mb = sizes.kept()
    models = ModelLRU(budget_mb=mb["b"] + mb["c"], idle_s=3600.0)
    _run(models, a, a_in)
    _run(models, b, b_in)
    models._used["a"] -= 7200.0  # a has not been planned here for two hours (moved, retired)
    assert _run(models, c, c_in) is False
    assert list(models.kept()) == ["b", "c"] and models.evicted == ["a"]
