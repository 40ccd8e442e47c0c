"""Sites as data over the API, on SQLite and PostgreSQL: PUT -> GET -> versions, the same refusals
as the command line, the role matrix, no version for an unchanged site, retirement keeping the
data, and the planning service taking a new version at its next run without a restart."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from grid.domain import site_from_dict
from grid.errors import InputErrors
from grid.schedule import scheduler as sched
from grid.store import plans as plan_store
from grid.store import site_versions
from grid.store.site_versions import document_from_file
from tests.api.kit import Clock, service

URL = "/api/v1/sites"


def east(sites: dict[str, Path]) -> dict[str, Any]:
    """Site ``east``: the demo site's document (series inline) under another id; in no settings."""
    doc = document_from_file(sites["demo"])
    doc["site"]["id"] = "east"
    return doc


def put(client: TestClient, site: str, doc: dict[str, Any], token: str) -> Any:
    return client.put(f"{URL}/{site}", json=doc, headers={"X-API-Key": token})


def test_put_get_and_the_history(
    client: TestClient, key: dict[str, str], sites: dict[str, Path], store: Engine
) -> None:
    admin = {"X-API-Key": key["admin_all"]}
    doc = east(sites)
    first = put(client, "east", doc, key["admin_all"])
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["site"], body["version"], body["created"], body["retired"]) == ("east", 1, True, False)
    assert body["changes"].startswith("created: 2 connections, 20 households")
    assert body["created_by"].endswith("(admin)")
    got = client.get(f"{URL}/east", headers=admin).json()
    assert got["version"] == 1 and got["description"]["site"]["id"] == "east"
    assert got["inputs"]["base_load"]["rows"] == 48 and got["inputs"]["base_load"]["columns"] == 20
    assert got["series"] is None
    with_series = client.get(f"{URL}/east", params={"series": "true"}, headers=admin).json()
    assert with_series["series"]["base_load"] == (sites["demo"].parent / "base_load.csv").read_text()

    # the same site again, as JSON or as YAML: no new version
    again = put(client, "east", doc, key["admin_all"])
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["version"] == 1
    as_yaml = client.put(
        f"{URL}/east", content=yaml.safe_dump(doc), headers={**admin, "Content-Type": "application/yaml"}
    )
    assert as_yaml.status_code == 200, as_yaml.text
    assert as_yaml.json()["version"] == 1

    changed = copy.deepcopy(doc)
    changed["batteries"][0]["capacity_kwh"] += 1.0
    changed["households"].append({**changed["households"][0], "id": "H999", "meter_id": "MTR-H999"})
    lines = changed["inputs"]["base_load"].splitlines()
    changed["inputs"]["base_load"] = "\n".join([lines[0] + ",H999", *(line + ",0.5" for line in lines[1:])]) + "\n"
    second = put(client, "east", changed, key["admin_all"])
    assert second.status_code == 201 and second.json()["version"] == 2
    told = second.json()["changes"]
    battery = doc["batteries"][0]["id"]
    assert "households +1 (H999)" in told and f"batteries ~1 ({battery})" in told
    assert "series changed: base_load" in told
    history = client.get(f"{URL}/east/versions", headers=admin).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][1]["changes"] == told
    current = site_versions.current_site(store, "east")
    assert current is not None and current.version == 2 and current.series == changed["inputs"]


def problems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What the domain's validator (the command line's) says about `doc`, in the API's shape."""
    with pytest.raises(InputErrors) as caught:
        site_from_dict(doc)
    out = []
    for err in caught.value.errors:
        item: dict[str, Any] = {"loc": [err.where], "msg": err.what, "type": "input_error"}
        if err.has_value:
            item["input"] = err.value
        out.append(item)
    return out


def test_a_bad_site_is_refused_with_the_messages_of_the_command_line(
    client: TestClient, key: dict[str, str], sites: dict[str, Path], tmp_path: Path
) -> None:
    from grid.cli import app

    unknown = east(sites)  # a cross-reference, checked once the fields are good
    unknown["batteries"][0]["connection"] = "T9"
    answer = put(client, "east", unknown, key["admin_all"])
    assert answer.status_code == 422 and answer.json()["detail"] == problems(unknown)
    assert answer.json()["detail"][0]["loc"] == ["batteries[0].connection"]
    assert answer.json()["detail"][0]["input"] == "T9"
    bad = east(sites)
    bad["households"][0]["annual_kwh"] = -5.0
    bad["batteries"][1]["charge_efficiency"] = 1.5
    answer = put(client, "east", bad, key["admin_all"])
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail == problems(bad) and len(detail) == 2
    assert {"loc": ["households[0].annual_kwh"], "msg": "must be > 0", "type": "input_error", "input": -5.0} in detail
    # the command line prints the same problems for the same site as a file
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("base_load.csv", "pv_availability.csv", "heat_demand.csv", "weather.csv", "prices.csv"):
        (folder / name).write_text((sites["demo"].parent / name).read_text())
    bad_file = {**bad, "inputs": {k: f"{k}.csv" for k in bad["inputs"]}}
    bad_file["inputs"]["pv_availability"] = "pv_availability.csv"
    (folder / "site.yaml").write_text(yaml.safe_dump(bad_file))
    run = CliRunner().invoke(app, ["sites", "import", str(folder / "site.yaml"), "--db", "sqlite://"])
    assert run.exit_code == 2
    for item in detail:
        assert f"{item['loc'][0]}: {item['msg']}, got {item['input']!r}" in run.output
    assert client.get(f"{URL}/east/versions", headers={"X-API-Key": key["admin_all"]}).status_code == 404


@pytest.mark.parametrize(
    ("edit", "loc", "msg"),
    [
        (lambda d: d["inputs"].update(base_load="base_load.csv"), "inputs.base_load", "must be the series as CSV"),
        (
            lambda d: d["inputs"].update(base_load=d["inputs"]["base_load"].replace(",", ",abc,", 1)),
            "inputs.base_load line 1",
            "",
        ),
        (
            lambda d: d["inputs"].update(weather=d["inputs"]["weather"].replace("\n", "\nnot-a-time,1,2\n", 1)),
            "inputs.weather line 2",
            "",
        ),
        (lambda d: d["site"].update(id="west"), "site.id", "must be 'east'"),
        (lambda d: d.update(connections=[]), "connections", "must not be empty"),
    ],
    ids=["file-name", "bad-header", "bad-stamp", "other-id", "no-connection"],
)
def test_bad_documents_and_series_answer_422_naming_the_place(
    client: TestClient, key: dict[str, str], sites: dict[str, Path], edit: Any, loc: str, msg: str
) -> None:
    doc = east(sites)
    edit(doc)
    answer = put(client, "east", doc, key["admin_all"])
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(d["loc"][0].startswith(loc) and d["msg"].startswith(msg) for d in detail), detail


def test_bodies_that_are_not_a_site_answer_4xx(client: TestClient, key: dict[str, str]) -> None:
    headers = {"X-API-Key": key["admin_all"]}
    cases = [
        ("text/plain", b"site: x", 415),
        ("application/json", b"{not json", 422),
        ("application/json", b"[1, 2]", 422),
        ("application/json", b"", 422),
        ("application/yaml", b"site: [unclosed", 422),
        ("application/yaml", b"a: &x [1]\nb: *x\n", 422),
        ("application/json", b"\xff\xfe", 422),
    ]
    for content_type, body, status in cases:
        answer = client.put(f"{URL}/east", content=body, headers={**headers, "Content-Type": content_type})
        assert answer.status_code == status, (content_type, body, answer.text)
        assert answer.json()["detail"]


ROLES = ("operator", "manager", "planner", "ingest")


def test_role_matrix(client: TestClient, key: dict[str, str], sites: dict[str, Path]) -> None:
    """PUT and DELETE: admin only, and only at sites its key is scoped to; GET: every role but
    ingest. Keys are scoped to ``demo``."""
    doc = document_from_file(sites["demo"])
    for role in ROLES:
        assert put(client, "demo", doc, key[role]).status_code == 403, role
        assert client.delete(f"{URL}/demo", headers={"X-API-Key": key[role]}).status_code == 403, role
    assert put(client, "east", east(sites), key["admin"]).status_code == 403  # not scoped to east
    assert put(client, "demo", doc, "qk_nope_nope").status_code == 401
    assert put(client, "demo", doc, key["admin"]).status_code == 201
    for role in ROLES:
        status = client.get(f"{URL}/demo", headers={"X-API-Key": key[role]}).status_code
        assert status == (403 if role == "ingest" else 200), role
        assert client.get(f"{URL}/north", headers={"X-API-Key": key[role]}).status_code == 403
    north = client.get(f"{URL}/north", headers={"X-API-Key": key["admin_all"]})
    assert north.status_code == 404 and "planned from its file" in north.json()["detail"]


def test_retiring_keeps_versions_plans_and_readings_readable(
    app: FastAPI, client: TestClient, key: dict[str, str], sites: dict[str, Path], clock: Clock
) -> None:
    admin = {"X-API-Key": key["admin_all"]}
    assert put(client, "east", east(sites), key["admin_all"]).status_code == 201
    svc = service(app)
    assert "east" in svc.site_ids()
    planned = svc.run("east", clock())
    assert planned.status in ("optimal", "optimal_with_violations"), planned.message
    gone = client.delete(f"{URL}/east", headers=admin)
    assert gone.status_code == 200 and gone.json()["retired"] is True and gone.json()["version"] == 2
    assert client.delete(f"{URL}/east", headers=admin).json()["created"] is False  # once is enough
    assert "east" not in svc.site_ids()
    assert client.get(f"{URL}/east", headers=admin).json()["retired"] is True
    assert [v["retired"] for v in client.get(f"{URL}/east/versions", headers=admin).json()["versions"]] == [
        False,
        True,
    ]
    plans = client.get(f"{URL}/east/plans", headers=admin)
    assert plans.status_code == 200 and planned.plan_id in json.dumps(plans.json())
    readings = client.get(
        f"{URL}/east/readings",
        params={"sensor": "MTR-H001/1-0:1.8.0", "start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z"},
        headers=admin,
    )
    assert readings.status_code == 200, readings.text
    refused = svc.run("east", clock.advance(15))
    assert refused.status == "failed" and "retired" in refused.message
    # the settings' site has no stored version to retire
    assert client.delete(f"{URL}/north", headers=admin).status_code == 404
    back = put(client, "east", east(sites), key["admin_all"])
    assert back.status_code == 201 and back.json()["version"] == 3 and back.json()["changes"].startswith("restored")
    assert "east" in svc.site_ids()


def test_a_new_version_is_planned_at_the_next_run_without_a_restart(
    app: FastAPI, client: TestClient, key: dict[str, str], sites: dict[str, Path], clock: Clock, store: Engine
) -> None:
    svc = service(app)
    first = svc.run("demo", clock())
    assert first.status in ("optimal", "optimal_with_violations")
    assert first.plan_id is not None
    body = plan_store.plan_body(store, first.plan_id)
    assert "BAT-NEW" not in body["assets"] and body["inputs"]["base_load"] == "base_load.csv"

    doc = document_from_file(sites["demo"])  # the file's site, stored as data, with one battery more
    doc["batteries"].append(
        {"id": "BAT-NEW", "connection": "T1", "capacity_kwh": 20.0, "charge_kw": 5.0, "discharge_kw": 5.0}
    )
    assert put(client, "demo", doc, key["admin"]).status_code == 201
    second = svc.run("demo", clock.advance(15))
    assert second.status in ("optimal", "optimal_with_violations"), second.message
    assert second.plan_id is not None
    body = plan_store.plan_body(store, second.plan_id)
    assert "BAT-NEW" in body["assets"]
    assert body["inputs"]["base_load"] == "inputs.base_load (inline)"

    # a site that exists only as data is planned too: a PUT gives it its scheduler jobs at once,
    # a DELETE takes them away (and the periodic sync finds sites stored by another process)
    scheduler = app.state.ctx.scheduler = sched.make_scheduler(svc, run_now=False)
    try:
        assert scheduler.get_job(sched.job_id("east")) is None
        assert put(client, "east", east(sites), key["admin_all"]).status_code == 201
        assert scheduler.get_job(sched.job_id("east")) is not None
        assert scheduler.get_job(sched.evaluation_job_id("east")) is not None
        result = sched.scheduled_run("east")
        assert result is not None and result.site_id == "east" and result.status != "skipped"
        assert client.delete(f"{URL}/east", headers={"X-API-Key": key["admin_all"]}).status_code == 200
        assert scheduler.get_job(sched.job_id("east")) is None
        assert sched.scheduled_run("east") is None
        other = east(sites)
        other["site"]["id"] = "west"
        site_versions.put_site_version(store, "west", other, "another process", clock())
        assert sched.sync_sites() == ["west"]
    finally:
        app.state.ctx.scheduler = None
        sched._scheduler = None


def test_a_stored_only_site_is_known_to_the_other_routes(
    client: TestClient, key: dict[str, str], sites: dict[str, Path]
) -> None:
    """Its plans list answers (empty), a scenario over the API runs on its current version."""
    headers = {"X-API-Key": key["admin_all"]}
    assert client.get(f"{URL}/east/plans", headers=headers).status_code == 404
    assert put(client, "east", east(sites), key["admin_all"]).status_code == 201
    assert client.get(f"{URL}/east/plans", headers=headers).status_code == 200
    status = client.get("/api/v1/fleet/status", headers=headers)
    assert status.status_code == 200 and '"site":"east"' in status.text.replace(" ", "")
    scenario = {"name": "pv", "period": {"hours": 1}, "edits": [{"kind": "scale_pv", "scale": 1.5}]}
    answer = client.post(f"{URL}/east/scenarios", json=scenario, headers=headers)
    assert answer.status_code == 202, answer.text
    client.app.state.scenario_runner.wait(answer.json()["run_id"], 300)  # type: ignore[attr-defined]
    done = client.get(answer.json()["run_url"], headers=headers).json()
    assert done["status"] == "succeeded", done["message"]
    assert done["site"] == "east" and done["result"]["comparison"]
    retired = client.delete(f"{URL}/east", headers=headers)
    assert retired.status_code in (200, 204), retired.text
    refused = client.post(f"{URL}/east/scenarios", json=scenario, headers=headers)
    assert refused.status_code == 409 and "retired" in refused.json()["detail"]


def test_grid_sites_import_and_list_at_80_columns(sites: dict[str, Path], tmp_path: Path) -> None:
    """Imported once (a second import stores nothing); the list keeps every id whole on one line
    at 80 columns and cuts only the change summary."""
    import io

    from rich.console import Console

    from grid.cli import app
    from grid.sites_cli import sites_table
    from grid.store.engine import make_engine

    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    runner = CliRunner()
    first = runner.invoke(app, ["sites", "import", str(sites["demo"]), "--db", db])
    assert first.exit_code == 0 and "site demo: version 1 stored (created: 2 connections" in first.output
    again = runner.invoke(app, ["sites", "import", str(sites["demo"]), "--db", db])
    assert again.exit_code == 0 and "unchanged, version 1" in again.output
    several = runner.invoke(app, ["sites", "import", str(tmp_path / "nosuch.yaml"), str(sites["north"]), "--db", db])
    assert several.exit_code == 2  # the missing file is reported, the good one stored all the same
    assert "nosuch.yaml: cannot read site file" in several.output and "site north: version 1 stored" in several.output
    engine = make_engine(db)
    long_id = "quartier-nord-ost-erweiterung2"
    doc = document_from_file(sites["demo"])
    doc["site"]["id"] = long_id
    site_versions.put_site_version(engine, long_id, doc, "test", dt.datetime(2026, 1, 14, tzinfo=dt.UTC))
    out = io.StringIO()
    Console(file=out, width=80).print(sites_table(site_versions.list_sites(engine), 80))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["site", "v", "homes", "stored", "(UTC)", "changes"]
    assert any(line.startswith(long_id + " ") for line in lines) and any(line.startswith("demo ") for line in lines)
    assert any(line.rstrip().endswith("…") for line in lines)  # the summary is cut, not wrapped
    listed = runner.invoke(app, ["sites", "list", "--db", db])
    assert listed.exit_code == 0 and "demo" in listed.output
