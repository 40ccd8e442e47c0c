"""`grid keys create|list|revoke` (api/cli.py) on an SQLite file; the key is printed once."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.cli import keys_app
from grid.store.apikeys import authenticate
from grid.store.engine import make_engine


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keys.sqlite'}"
    runner = CliRunner()
    created = runner.invoke(keys_app, ["create", "--role", "operator", "--site", "demo", "--db", db])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("qk_")
    engine = make_engine(db)
    key = authenticate(engine, token)
    assert key is not None and key.role == "operator" and key.sites == ("demo",)
    listed = runner.invoke(keys_app, ["list", "--db", db])
    assert listed.exit_code == 0 and key.key_id in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    assert runner.invoke(keys_app, ["revoke", key.key_id, "--db", db]).exit_code == 0
    assert authenticate(engine, token) is None
    assert runner.invoke(keys_app, ["revoke", key.key_id, "--db", db]).exit_code == 1
    bad = runner.invoke(keys_app, ["create", "--role", "boss", "--site", "demo", "--db", db])
    assert bad.exit_code == 2 and "role" in bad.output


def test_wiring_into_the_grid_app(tmp_path: Path) -> None:
    """The two lines that wire these commands into grid/cli.py work on a Typer app."""
    import typer

    from api.cli import serve_command

    app = typer.Typer()
    app.command("serve")(serve_command)
    app.add_typer(keys_app, name="keys")
    runner = CliRunner()
    help_text = runner.invoke(app, ["serve", "--help"])
    assert help_text.exit_code == 0 and "--no-scheduler" in help_text.stdout
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    created = runner.invoke(app, ["keys", "create", "--role", "admin", "--site", "*", "--db", db])
    assert created.exit_code == 0 and created.stdout.strip().splitlines()[-1].startswith("qk_")


def test_serve_names_a_bad_setting_instead_of_a_traceback(tmp_path: Path) -> None:
    """A GRID_* variable that does not parse: exit 2, the variable, what is wrong and the value."""
    from grid.cli import app

    env_file = tmp_path / "grid.env"
    env_file.write_text("GRID_REPLAN_EVERY_MIN=often\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["serve", "--env-file", str(env_file)], env={"GRID_DASK_WORKERS": "abc", "COLUMNS": "80"}
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "settings: 2 problem(s)" in text
    assert f"GRID_DASK_WORKERS (environment or {env_file}): Input should be a valid integer" in text
    assert "got 'abc'" in text and "got 'often'" in text
