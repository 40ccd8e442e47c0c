"""CSV files of meter readings -> record frames (then :func:`grid.ingest.pipeline.ingest`).

Long format (one reading per line; column order free, header required)::

    meter_id,timestamp,obis,value,unit[,quality]
    hh-001,2026-01-15T00:15:00+01:00,1-0:1.8.0,1234.567,kWh

Wide format (one line per timestamp, one column per meter)::

    timestamp,hh-001,hh-002/1-0:2.8.0,temp_degc
    2026-01-15T00:15:00+01:00,1234.567,88.1,3.5

A wide column names a sensor (``temp_degc``), a meter and OBIS code (``hh-002/1-0:2.8.0``) or a
meter alone (OBIS from ``obis``, default 1-0:1.8.0). Values are in ``unit`` when given, else in
each sensor's own unit; an empty cell is no reading. Files may be gzip-compressed (``.gz``).

Line numbers are those of the file (header = line 1). A line with the wrong number of fields is
rejected here (field ``line``); everything else is checked by :mod:`grid.ingest.validate`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.ingest.records import FIELDS
from grid.ingest.report import Rejected, Source
from grid.store.catalog import IMPORT_REGISTER

Format = Literal["long", "wide"]
REQUIRED = FIELDS


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes (as stored, compressed or not)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_csv(
    path: str | Path, fmt: Format = "long", unit: str | None = None, obis: str = IMPORT_REGISTER
) -> tuple[pd.DataFrame, list[Rejected], Source]:
    """Read a long or wide CSV into (record frame, rejected lines, source)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    source = Source("csv", path.name, file_checksum(path))
    try:
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            compression="infer",
            encoding="utf-8",
        )
        lines = np.arange(len(raw), dtype=np.int64) + 2
        checked = _drop_short_rows(path, raw, lines)
        raw, lines, rejected = checked if checked is not None else _read_tolerant(path)
    except pd.errors.ParserError:
        raw, lines, rejected = _read_tolerant(path)
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name} line 1", f"cannot read CSV ({exc})") from exc
    if fmt == "long":
        return _long(raw, lines, path.name), rejected, source
    return _wide(raw, lines, path.name, unit, obis), rejected, source


def _drop_short_rows(
    path: Path, raw: pd.DataFrame, lines: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]] | None:
    """pandas fills a short line (and a blank one) with '' like an empty field: count the fields
    of the suspect lines (those whose last field is empty) in the bytes. Drops blank lines,
    rejects short ones. None when the file has quotes (then the csv module must read it)."""
    if raw.shape[1] == 0:
        return raw, lines, []
    suspect = np.flatnonzero(raw.iloc[:, -1].to_numpy(dtype=object) == "")
    if len(suspect) == 0:
        return raw, lines, []
    data = _read_bytes(path)
    if b'"' in data:
        return None
    counts, empty = _fields_per_line(data)
    width = raw.shape[1]
    drop = np.zeros(len(raw), dtype=bool)
    rejected = []
    for i in suspect:
        k = int(lines[i]) - 1  # 0-based line index
        if empty[k]:
            drop[i] = True
        elif counts[k] < width:
            drop[i] = True
            text = data.splitlines()[k].decode("utf-8", errors="replace") if len(suspect) < 1000 else ""
            rejected.append(_bad_line(path.name, int(lines[i]), int(counts[k]), width, text))
    keep = np.flatnonzero(~drop)
    return raw.iloc[keep].reset_index(drop=True), lines[keep], rejected


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def _fields_per_line(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Fields per line (commas + 1) and whether each line is blank, for a file without quotes."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if len(arr) and arr[-1] != 10:
        ends = np.append(ends, len(arr))
    starts = np.concatenate([[0], ends[:-1] + 1])
    commas = np.add.reduceat((arr == 44).astype(np.int32), starts) if len(arr) else np.zeros(0, np.int32)
    commas = np.where(starts < ends, commas, 0)  # reduceat gives arr[start] for empty ranges
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13))
    return commas + 1, blank


def _bad_line(name: str, line: int, got: int, want: int, raw: str) -> Rejected:
    return Rejected(
        where=f"{name} line {line}",
        field="line",
        value=str(got),
        reason=f"line has {got} field(s), the header has {want}",
        raw=raw,
        line=line,
    )


def _read_tolerant(path: Path) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]]:
    """Slow path for files with over-long lines: the csv module, line by line."""
    rows: list[list[str]] = []
    lines: list[int] = []
    rejected: list[Rejected] = []
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path.name} line 1", "file is empty")
        start = reader.line_num + 1
        for fields in reader:
            line = start
            start = reader.line_num + 1
            if not fields:
                continue
            if len(fields) != len(header):
                rejected.append(_bad_line(path.name, line, len(fields), len(header), ",".join(fields)))
                continue
            rows.append(fields)
            lines.append(line)
    return (
        pd.DataFrame(rows, columns=header, dtype=object),
        np.asarray(lines, dtype=np.int64),
        rejected,
    )


def _long(raw: pd.DataFrame, lines: np.ndarray, name: str) -> pd.DataFrame:
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(f"{name} line 1", f"missing column(s) {', '.join(missing)}", list(raw.columns))
    frame = raw[[c for c in [*REQUIRED, "quality"] if c in raw.columns]].copy()
    frame.insert(0, "line", lines)
    return frame


def _wide(raw: pd.DataFrame, lines: np.ndarray, name: str, unit: str | None, obis: str) -> pd.DataFrame:
    raw.columns = [str(c).strip() for c in raw.columns]
    if "timestamp" not in raw.columns:
        raise InputError(f"{name} line 1", "has no 'timestamp' column", list(raw.columns))
    columns = [c for c in raw.columns if c != "timestamp"]
    if not columns:
        raise InputError(f"{name} line 1", "has no meter columns")
    n = len(raw)
    cells = raw[columns].to_numpy(dtype=object).ravel()  # row-major: line by line
    col_idx = np.tile(np.arange(len(columns)), n)
    row_idx = np.repeat(np.arange(n), len(columns))
    present = np.array([isinstance(v, str) and v.strip() != "" for v in cells], dtype=bool)
    cells, col_idx, row_idx = cells[present], col_idx[present], row_idx[present]
    meter, code, sensor = [], [], []
    for c in columns:
        if "/" in c:
            m, o = c.split("/", 1)
            meter.append(m)
            code.append(o)
            sensor.append("")
        else:
            meter.append(c)
            code.append(obis)
            sensor.append(c)
    stamps = raw["timestamp"].to_numpy(dtype=object)
    col_names = np.asarray(columns, dtype=object)
    frame = pd.DataFrame(
        {
            "line": lines[row_idx],
            "where": [f"{name} line {ln} column {c}" for ln, c in zip(lines[row_idx], col_names[col_idx], strict=True)],
            "meter_id": np.asarray(meter, dtype=object)[col_idx],
            "obis": np.asarray(code, dtype=object)[col_idx],
            "sensor_hint": np.asarray(sensor, dtype=object)[col_idx],
            "timestamp": stamps[row_idx],
            "value": cells,
        }
    )
    if unit is not None:
        frame["unit"] = unit
    frame["raw"] = [f"{t},{c}={v}" for t, c, v in zip(frame["timestamp"], col_names[col_idx], cells, strict=True)]
    return frame
