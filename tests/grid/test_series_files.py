"""Input files parsed once and kept (grid.series.read_series_csv): a changed file is read anew."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import grid.series as series
from grid.series import read_series_csv


def write(path: Path, values: list[str]) -> None:
    rows = [f"2026-01-14T{h:02d}:00:00+00:00,{v}" for h, v in enumerate(values)]
    path.write_text("timestamp,price_eur_per_kwh\n" + "\n".join(rows) + "\n", encoding="utf-8")


def read(path: Path) -> list[float]:
    return read_series_csv(path, "Europe/Berlin", 60, ["price_eur_per_kwh"])["price_eur_per_kwh"].tolist()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files actually parsed (not taken from the kept ones)."""
    seen: list[Path] = []
    parse = series._parse_series_csv

    def counting(path: Path, *args: object) -> object:
        seen.append(path)
        return parse(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(series, "_parse_series_csv", counting)
    return seen


def test_an_unchanged_file_is_parsed_once(tmp_path: Path, parses: list[Path]) -> None:
    path = tmp_path / "prices.csv"
    write(path, ["0.1", "0.2", "0.3"])
    assert read(path) == read(path) == [0.1, 0.2, 0.3]
    assert len(parses) == 1


def test_a_rewritten_file_of_the_same_size_is_read_anew(tmp_path: Path, parses: list[Path]) -> None:
    path = tmp_path / "prices.csv"
    write(path, ["0.1", "0.2", "0.3"])
    assert read(path) == [0.1, 0.2, 0.3]
    before = os.stat(path)
    write(path, ["0.4", "0.5", "0.6"])  # same length
    # the same size; a later modification time even on a file system that counts whole seconds
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert os.stat(path).st_size == before.st_size
    assert read(path) == [0.4, 0.5, 0.6]
    assert len(parses) == 2


def test_a_file_replaced_with_the_same_time_and_size_is_read_anew(tmp_path: Path) -> None:
    path, other = tmp_path / "prices.csv", tmp_path / "other.csv"
    write(path, ["0.1", "0.2", "0.3"])
    assert read(path) == [0.1, 0.2, 0.3]
    before = os.stat(path)
    write(other, ["0.7", "0.8", "0.9"])
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, path)  # another inode
    assert read(path) == [0.7, 0.8, 0.9]


def test_changing_a_returned_frame_does_not_change_the_kept_one(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    write(path, ["0.1", "0.2", "0.3"])
    frame = read_series_csv(path, "Europe/Berlin", 60, ["price_eur_per_kwh"])
    frame.iloc[0, 0] = 99.0
    assert read(path) == [0.1, 0.2, 0.3]


def test_other_required_columns_are_checked_again(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    write(path, ["0.1", "0.2", "0.3"])
    read(path)
    with pytest.raises(series.InputError, match="missing column"):
        read_series_csv(path, "Europe/Berlin", 60, ["co2_g_per_kwh"])
