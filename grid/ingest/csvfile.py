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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from grid.errors import InputError
from grid.ingest.records import FIELDS
from grid.ingest.report import Rejected, Source
from grid.store.catalog import IMPORT_REGISTER

Format = Literal["long", "wide"]
REQUIRED = FIELDS
CHUNK_ROWS = 200_000  # records per chunk when streaming
_TEXT = pd.Series([""], dtype=str).dtype  # what pandas reads with dtype=str (object before pandas 3)
_STRING_TYPES = (
    {pa.string(): _TEXT, pa.large_string(): _TEXT} if isinstance(_TEXT, pd.api.extensions.ExtensionDtype) else {}
)


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes (as stored, compressed or not)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _HashingReader(io.RawIOBase):
    """Passes the bytes of `raw` through, hashing them (sha256) and counting them."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.digest.update(memoryview(buffer)[:n])
            self.bytes_read += n
        return n or 0


class CsvChunks:
    """A long or wide CSV file read chunk by chunk, in bounded memory.

    Iterating yields (record frame, lines rejected by the reader) of about `chunk_rows` records
    each, in file order; line numbers are those of the whole file. The file is read once: its
    sha256 (:attr:`checksum`, of the bytes as stored, compressed or not) is known after the last
    chunk, and :attr:`bytes_read` / :attr:`bytes_total` tell the progress on the way.

    Lines are cut into blocks at newlines and each block is parsed by pandas. A file with a double
    quote is read with the csv module from the first block that has one (a quoted field may hold a
    newline); a block with an over-long line is read with the csv module too (slow, but exact).
    """

    def __init__(
        self,
        path: str | Path,
        fmt: Format = "long",
        unit: str | None = None,
        obis: str = IMPORT_REGISTER,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(str(self.path), "no such file")
        self.fmt, self.unit, self.obis = fmt, unit, obis
        self.chunk_rows = max(1, chunk_rows)
        self.bytes_total = self.path.stat().st_size
        self.bytes_read = 0
        self.checksum = ""
        with gzip.open(self.path, "rb") if self.path.suffix == ".gz" else self.path.open("rb") as fh:
            try:
                first = fh.readline()
            except (gzip.BadGzipFile, EOFError) as exc:
                raise InputError(f"{self.path.name} line 1", f"cannot read CSV ({exc})") from exc
        _, header = _header(first, self.path.name)
        self._frame(pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64))  # the columns are right

    @property
    def source(self) -> Source:
        """The batch source; its checksum is empty until the file has been read to the end."""
        return Source("csv", self.path.name, self.checksum)

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
        with self.path.open("rb") as stored:
            hashing = _HashingReader(stored)
            fh: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=hashing, mode="rb")
                if self.path.suffix == ".gz"
                else io.BufferedReader(hashing, 1 << 20)
            )
            try:
                for chunk in self._chunks(fh):
                    self.bytes_read = hashing.bytes_read
                    yield chunk
            except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
                raise InputError(f"{self.path.name} line 1", f"cannot read CSV ({exc})") from exc
            while hashing.read(1 << 20):
                pass
            self.bytes_read = hashing.bytes_read
            self.checksum = hashing.digest.hexdigest()

    def _chunks(self, fh: io.BufferedIOBase) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
        name = self.path.name
        head, pending = _take_lines(fh, 1, b"", first_only=True)
        head, header = _header(head, name)
        width = len(header)
        per_record = 64.0 if self.fmt == "long" else 64.0 * max(width - 1, 1)  # bytes, a first guess
        line = 2
        chunks = 0
        while True:
            want = int(self.chunk_rows * per_record)
            block, pending = _take_lines(fh, want, pending)
            if not block:
                if chunks == 0:  # a header alone: one empty chunk, so that the columns are checked
                    yield self._frame(pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64)), []
                return
            chunks += 1
            if b'"' in block or b'"' in head:
                yield from self._csv_module(block + pending, fh, header, line)
                return
            raw, lines, rejected = _parse_block(head, block, header, line, name)
            line += block.count(b"\n")
            frame = self._frame(raw, lines)
            if len(frame):
                per_record = max(len(block) / len(frame), 1.0)
            yield frame, rejected

    def _frame(self, raw: pd.DataFrame, lines: np.ndarray) -> pd.DataFrame:
        if self.fmt == "long":
            return _long(raw, lines, self.path.name)
        return _wide(raw, lines, self.path.name, self.unit, self.obis)

    def _csv_module(
        self, head: bytes, rest: io.BufferedIOBase, header: list[str], line: int
    ) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
        """The remaining lines (from `line` on) with the csv module, chunk by chunk."""
        text = io.TextIOWrapper(io.BufferedReader(_Joined(head, rest)), encoding="utf-8", newline="")
        for raw, lines, rejected in _read_tolerant(text, header, line, self.path.name, self.chunk_rows):
            yield self._frame(raw, lines), rejected


class _Joined(io.RawIOBase):
    """Bytes already read, then the rest of a stream."""

    def __init__(self, first: bytes, rest: io.BufferedIOBase) -> None:
        self.first = memoryview(first)
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if len(self.first):
            n = min(len(buffer), len(self.first))
            buffer[:n] = self.first[:n]
            self.first = self.first[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _header(head: bytes, name: str) -> tuple[bytes, list[str]]:
    """The first line without a byte order mark, and its column names."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.strip():
        raise InputError(f"{name} line 1", "cannot read CSV (no columns: the file or its first line is empty)")
    try:
        return head, next(csv.reader([head.decode("utf-8").rstrip("\r\n")]))
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} line 1", f"cannot read CSV ({exc})") from exc


def _take_lines(fh: io.BufferedIOBase, size: int, pending: bytes, first_only: bool = False) -> tuple[bytes, bytes]:
    """Whole lines from `pending` + `fh`: the first line, or about `size` bytes of lines (up to the
    end of the line at byte `size`); returns (lines, bytes read after them). At the end of the
    file the last line may lack its newline."""
    size = 1 if first_only else max(size, 1)
    data = pending
    if len(data) < size:
        data += fh.read(size - len(data))  # buffered: fewer bytes only at the end of the file
        if len(data) < size:
            return data, b""
    cut = data.find(b"\n", size - 1)
    while cut < 0:
        more = fh.read(1 << 16)
        if not more:
            return data, b""
        cut = more.find(b"\n")
        if cut >= 0:
            cut += len(data)
        data += more
    return data[: cut + 1], data[cut + 1 :]


def read_csv(
    path: str | Path, fmt: Format = "long", unit: str | None = None, obis: str = IMPORT_REGISTER
) -> tuple[pd.DataFrame, list[Rejected], Source]:
    """Read a whole long or wide CSV into (record frame, rejected lines, source).

    Holds the whole file in memory; :func:`grid.ingest.pipeline.ingest_csv` streams it instead.
    """
    chunks = CsvChunks(path, fmt, unit, obis)
    frames: list[pd.DataFrame] = []
    rejected: list[Rejected] = []
    for frame, bad in chunks:
        frames.append(frame)
        rejected.extend(bad)
    records = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return records, rejected, chunks.source


def _parse_block(
    head: bytes, block: bytes, header: list[str], first_line: int, name: str
) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]]:
    """One block of whole lines (no quotes in it) -> (fields, file line numbers, rejected lines)."""
    regular = _parse_regular(block, header)
    if regular is not None:
        return regular, np.arange(len(regular), dtype=np.int64) + first_line, []
    try:
        raw = pd.read_csv(
            io.BytesIO(head + block),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except pd.errors.ParserError:
        text = io.StringIO(block.decode("utf-8"), newline="")
        parts = list(_read_tolerant(text, header, first_line, name, None))
        return parts[0] if parts else (pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64), [])
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64), []
    lines = np.arange(len(raw), dtype=np.int64) + first_line
    return _drop_short_rows(block, first_line, raw, lines, name)


def _parse_regular(block: bytes, header: list[str]) -> pd.DataFrame | None:
    """A block whose every line has the header's number of fields, parsed by Arrow (several times
    faster than pandas); None for any other block (blank or short lines, bad UTF-8: pandas and
    :func:`_drop_short_rows` then say what is wrong where)."""
    if len(set(header)) != len(header):
        return None
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=header),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows != lines:  # Arrow skips blank lines
        return None
    return table.to_pandas(types_mapper=_STRING_TYPES.get)


def _drop_short_rows(
    block: bytes, first_line: int, raw: pd.DataFrame, lines: np.ndarray, name: str
) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]]:
    """pandas fills a short line (and a blank one) with '' like an empty field: count the fields
    of the suspect lines (those whose last field is empty) in the block's bytes (which hold no
    quotes). Drops blank lines, rejects short ones."""
    if raw.shape[1] == 0:
        return raw, lines, []
    suspect = np.flatnonzero(raw.iloc[:, -1].to_numpy(dtype=object) == "")
    if len(suspect) == 0:
        return raw, lines, []
    counts, empty = _fields_per_line(block)
    width = raw.shape[1]
    drop = np.zeros(len(raw), dtype=bool)
    rejected = []
    texts = block.split(b"\n") if len(suspect) < 1000 else []
    for i in suspect:
        k = int(lines[i]) - first_line  # 0-based line index in the block
        if empty[k]:
            drop[i] = True
        elif counts[k] < width:
            drop[i] = True
            text = texts[k].rstrip(b"\r").decode("utf-8", errors="replace") if texts else ""
            rejected.append(_bad_line(name, int(lines[i]), int(counts[k]), width, text))
    keep = np.flatnonzero(~drop)
    return raw.iloc[keep].reset_index(drop=True), lines[keep], rejected


def _fields_per_line(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Fields per line (commas + 1) and whether each line is blank, for bytes without quotes."""
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


def _read_tolerant(
    text: IO[str], header: list[str], first_line: int, name: str, chunk_rows: int | None
) -> Iterator[tuple[pd.DataFrame, np.ndarray, list[Rejected]]]:
    """Slow path (quoted fields, over-long lines): the csv module, line by line, from file line
    `first_line` on; chunks of `chunk_rows` rows (None: one)."""
    rows: list[list[str]] = []
    lines: list[int] = []
    rejected: list[Rejected] = []
    reader = csv.reader(text)
    start = first_line
    for fields in reader:
        line = start
        start = first_line + reader.line_num
        if not fields:
            continue
        if len(fields) != len(header):
            rejected.append(_bad_line(name, line, len(fields), len(header), ",".join(fields)))
            continue
        rows.append(fields)
        lines.append(line)
        if chunk_rows is not None and len(rows) >= chunk_rows:
            yield pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines, dtype=np.int64), rejected
            rows, lines, rejected = [], [], []
    yield pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines, dtype=np.int64), rejected


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
