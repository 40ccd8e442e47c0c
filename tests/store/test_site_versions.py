"""The versioned site store on SQLite and PostgreSQL: what the planning service and a fleet runner
read (the current version as data: a site and inputs equal to those read from its files), the
history, retirement, and a change summary checked by hand."""

from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.errors import InputErrors
from grid.fleet.generate import generate_fleet
from grid.store import site_versions as versions

T = dt.datetime(2026, 1, 14, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def fleet_docs() -> list[dict]:
    """Two generated sites as documents with inline series."""
    return [fs.document() for fs in generate_fleet(2, 7)]


def test_the_current_version_is_the_site_and_inputs_as_data(store: Engine, fleet_docs: list[dict]) -> None:
    engine = store
    fs = generate_fleet(1, 7)[0]
    doc = fleet_docs[0]
    row, created = versions.put_site_version(engine, fs.site_id, doc, "test", T)
    assert created and row.version == 1
    current = versions.current_site(engine, fs.site_id)
    assert current is not None and current.series == doc["inputs"] and current.created_at == T
    site = current.site()
    assert site.model_dump(exclude={"inputs"}) == fs.site().model_dump(exclude={"inputs"})
    inputs, expected = current.inputs(site), fs.inputs()
    pd.testing.assert_frame_equal(inputs.base_load_kw, expected.base_load_kw, check_freq=False)
    pd.testing.assert_frame_equal(inputs.pv_kw_per_kwp, expected.pv_kw_per_kwp, check_freq=False)
    assert inputs.sources["base_load"] == "inputs.base_load (inline)"
    assert versions.current_site(engine, "nosuch") is None


def test_history_listing_and_retirement(store: Engine, fleet_docs: list[dict]) -> None:
    engine = store
    a, b = fleet_docs
    sid_a, sid_b = a["site"]["id"], b["site"]["id"]
    versions.put_site_version(engine, sid_a, a, "alice (admin)", T)
    versions.put_site_version(engine, sid_b, b, "bob (admin)", T)
    assert versions.put_site_version(engine, sid_a, copy.deepcopy(a), "alice (admin)", T)[1] is False
    changed = copy.deepcopy(a)
    changed["site"]["name"] = "Renamed"
    changed["ev_sessions"] = changed["ev_sessions"][1:]
    row, created = versions.put_site_version(engine, sid_a, changed, "carol (admin)", T + dt.timedelta(hours=1))
    # by hand: the name changed and the first session is gone, nothing else
    first_session = a["ev_sessions"][0]["id"]
    assert created and row.changes == (
        f"site.name: {a['site']['name']!r} -> 'Renamed'; ev_sessions -1 ({first_session})"
    )
    assert [v.version for v in versions.site_versions(engine, sid_a)] == [1, 2]
    assert [v.created_by for v in versions.site_versions(engine, sid_a)] == ["alice (admin)", "carol (admin)"]
    assert versions.version_numbers(engine) == {sid_a: (2, False), sid_b: (1, False)}
    retired = versions.retire_site(engine, sid_b, "dave (admin)", T)
    assert retired is not None and retired[1] and retired[0].retired and retired[0].version == 2
    assert versions.current_site(engine, sid_b) is None
    assert [s.site_id for s in versions.list_sites(engine)] == [sid_a]
    assert [s.site_id for s in versions.list_sites(engine, include_retired=True)] == [sid_a, sid_b]
    assert versions.version_numbers(engine)[sid_b] == (2, True)
    assert versions.retire_site(engine, "nosuch", "dave", T) is None


def test_a_bad_document_stores_nothing(store: Engine, fleet_docs: list[dict]) -> None:
    bad = copy.deepcopy(fleet_docs[0])
    bad["inputs"]["prices"] = bad["inputs"]["prices"].replace("\n", "\n2026-01-13T23:00:00+00:00,0.3,300\n", 1)
    with pytest.raises(InputErrors, match="duplicate timestamp"):
        versions.put_site_version(store, bad["site"]["id"], bad, "test", T)
    assert versions.version_numbers(store) == {}
