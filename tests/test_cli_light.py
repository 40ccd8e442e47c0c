"""`grid --help` and an input error answer without loading the solver, scikit-learn, pvlib or Dask
(seconds of imports on a small machine): checked on the modules a fresh interpreter loaded, not on
time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pyomo", "highspy", "sklearn", "pvlib", "dask", "distributed", "models", "sqlalchemy", "alembic", "paho")
PROBE = """
import json, sys
from typer.testing import CliRunner
from grid.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"exit": result.exit_code, "heavy": heavy, "out": result.output[-300:]}))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["forecast", "--help"],
        ["scenario", "--help"],
        ["plan", "--site", "no-such-site.yaml"],
        ["scenario", "run", "no-such-scenario.yaml"],
        ["sweep", "run", "no-such-sweep.yaml"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_and_input_errors_load_no_solver(args: list[str], tmp_path: Path) -> None:
    code = PROBE.replace("json.loads(HEAVY)", repr(json.dumps(HEAVY)).join(["json.loads(", ")"]))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, check=True, timeout=600
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["exit"] in (0, 2), answer
    assert answer["heavy"] == [], f"grid {' '.join(args)} loaded {answer['heavy']}"


def test_version() -> None:
    from importlib.metadata import version

    from typer.testing import CliRunner

    from grid.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"quartiere {version('quartiere')}"


def test_the_demo_key_lines_never_wrap_at_80_columns() -> None:
    """The key stands alone on its line and no line (curl example included) is broken, however
    long, when printed at 80 columns."""
    import io

    from rich.console import Console

    from grid.cli import demo_key_lines

    key = "qk_" + "x" * 60
    lines = demo_key_lines(key, "0.0.0.0", 18000)
    out = io.StringIO()
    console = Console(file=out, width=80, soft_wrap=True)
    for line in lines:
        console.print(line, highlight=False, markup=False)
    assert out.getvalue().splitlines() == lines
    assert lines[1] == key and lines[0].startswith("admin key for site demo")
    assert lines[3] == f"try: curl -H 'X-API-Key: {key}' http://127.0.0.1:18000/api/v1/sites/demo/setpoints"


def test_the_cli_keeps_the_catalogs_import_register() -> None:
    """grid.ingest.cli names the import register without loading the store: the same code."""
    from grid.ingest import cli
    from grid.store import catalog

    assert cli.IMPORT_REGISTER == catalog.IMPORT_REGISTER
