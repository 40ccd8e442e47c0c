"""The bad-input corpus (tests/data/bad/expected.yaml): each file is rejected exactly where, in
the field and for the reason the manifest says, and nothing else is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from grid.ingest.csvfile import read_csv
from grid.ingest.options import IngestOptions
from grid.ingest.payload import messages_frame, parse_payload
from grid.ingest.pipeline import ingest
from grid.ingest.report import IngestReport, Source

BAD = Path(__file__).parents[1] / "data" / "bad"
MANIFEST = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]


def test_the_corpus_is_complete() -> None:
    files = {p.name for p in BAD.iterdir() if p.name != "expected.yaml"}
    assert files == {c["file"] for c in CASES}
    assert len(files) >= 25
    assert {c["kind"] for c in CASES} == {"csv", "csv-wide", "payload", "mqtt"}


def _ingest(store: Engine, case: dict[str, Any]) -> IngestReport:
    path = BAD / case["file"]
    options = IngestOptions(tz=case.get("tz"), now=pd.Timestamp(MANIFEST["now"]))
    if case["kind"] in ("csv", "csv-wide"):
        records, rejected, source = read_csv(path, "long" if case["kind"] == "csv" else "wide")
    elif case["kind"] == "payload":
        records, rejected = parse_payload(path.read_bytes(), name=path.name)
        source = Source("api", path.name)
    else:
        records, rejected = messages_frame([(case["topic"], path.read_bytes())], "s1")
        source = Source("mqtt", case["topic"])
    return ingest(store, "s1", records, source, options, rejected)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_file(sqlite_store: Engine, case: dict[str, Any]) -> None:
    report = _ingest(sqlite_store, case)
    got = [(r.where, r.field, r.value) for r in report.rejected]
    want = [(r["where"], r["field"], r["value"]) for r in case["rejected"]]
    assert got == want
    for rejection, expected in zip(report.rejected, case["rejected"], strict=True):
        assert expected["reason"] in rejection.reason
        assert rejection.raw
    assert report.accepted == case["accepted"]
    assert report.balanced
    with sqlite_store.connect() as conn:
        stored = conn.execute(sa.text("SELECT location, field, reason FROM rejected_records ORDER BY id")).all()
    assert [(w, f) for w, f, _ in stored] == [(w, f) for w, f, _ in want]
