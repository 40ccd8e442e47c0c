"""The demo job's history step is idempotent: the second run finds the batch and skips it."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from grid.demo import generate_demo
from grid.demo_job import DemoPaths, already_ingested, prepare_history
from grid.ingest.csvfile import file_checksum


def test_history_is_ingested_once(tmp_path: Path) -> None:
    site = generate_demo(tmp_path / "site", n_households=5)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    paths = DemoPaths(site=site, out=tmp_path / "out", history_start="2026-01-06T00:00:00+01:00")
    console = Console(record=True, width=200)
    prepare_history(paths, url, console)
    assert already_ingested(url, "demo", file_checksum(paths.history))
    prepare_history(paths, url, console)
    text = console.export_text()
    assert text.count("history ingested: accepted") == 1
    assert "rejected 0" in text
    assert "already in the store, not ingested again" in text
