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
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from grid.errors import InputError
from grid.ingest.payload import unstorable
from grid.ingest.records import FIELDS
from grid.ingest.report import Rejected, Source, storable_text
from grid.store.catalog import IMPORT_REGISTER

Format = Literal["long", "wide"]
REQUIRED = FIELDS
CHUNK_ROWS = 200_000  # records per chunk when streaming
MAX_LINE_BYTES = 1 << 20  #: a longer line is rejected (only its first bytes are ever held)
MAX_COLUMNS = 10_000  #: a header with more columns is refused
MAX_NAME_CHARS = 255  #: longest file name (as on common file systems)
MAX_BLOCK_BYTES = 32 << 20  #: bytes of lines parsed at once, at most
MAX_RAW_BYTES = 4096  #: bytes of a rejected line kept as its raw text
UNBALANCED_QUOTE = (
    "unbalanced quote: a quoted field must close on the same line (one record per line; a record never spans lines)"
)
_OVERLONG = b"\x00overlong\x00"  # stands for a line longer than MAX_LINE_BYTES; followed by its length
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
    chunk, and :attr:`bytes_read` / :attr:`bytes_total` tell the progress on the way. `name` is
    the file name used in locations and as the batch source (default: the path's name; an upload
    keeps the client's name), at most :data:`MAX_NAME_CHARS` characters.

    Lines are cut into blocks at newlines (``\n``, ``\r\n`` and a lone ``\r`` each end a line) and
    a clean block is parsed by Arrow at once. A block with a double quote, a NUL byte, bad UTF-8,
    an over-long line or a line with the wrong number of fields is taken apart line by line
    (:func:`_parse_lines`): the faulty lines are rejected alone, the others parsed as usual.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: Format = "long",
        unit: str | None = None,
        obis: str = IMPORT_REGISTER,
        chunk_rows: int = CHUNK_ROWS,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = check_name(self.path.name if name is None else name)
        if not self.path.is_file():
            raise InputError(self.name, "no such file")
        self.fmt, self.unit, self.obis = fmt, unit, obis
        self.chunk_rows = max(1, chunk_rows)
        self.bytes_total = self.path.stat().st_size
        self.bytes_read = 0
        self.checksum = ""
        self.line = 1  # the last line read so far
        with gzip.open(self.path, "rb") if self.path.suffix == ".gz" else self.path.open("rb") as fh:
            try:
                first = fh.read(MAX_LINE_BYTES + 2)
            except (gzip.BadGzipFile, EOFError, OSError) as exc:
                raise InputError(f"{self.name} line 1", f"cannot read CSV ({exc})") from exc
        _, header = _header(_first_line(first, self.name), self.name)
        self._frame(pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64))  # the columns are right

    @property
    def source(self) -> Source:
        """The batch source; its checksum is empty until the file has been read to the end."""
        return Source("csv", self.name, self.checksum)

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
        with self.path.open("rb") as stored:
            hashing = _HashingReader(stored)
            fh: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=hashing, mode="rb")
                if self.path.suffix == ".gz"
                else io.BufferedReader(hashing, 1 << 20)
            )
            try:
                for chunk in self._chunks(_Newlines(fh)):
                    self.bytes_read = hashing.bytes_read
                    yield chunk
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise InputError(f"{self.name} line {self.line}", f"cannot read CSV after this line ({exc})") from exc
            while hashing.read(1 << 20):
                pass
            self.bytes_read = hashing.bytes_read
            self.checksum = hashing.digest.hexdigest()

    def _chunks(self, fh: _Newlines) -> Iterator[tuple[pd.DataFrame, list[Rejected]]]:
        head, pending = _take_lines(fh, 1, b"", first_only=True)
        head, header = _header(head, self.name)
        width = len(header)
        per_record = 64.0 if self.fmt == "long" else 64.0 * max(width - 1, 1)  # bytes, a first guess
        line = 2
        chunks = 0
        while True:
            want = min(int(self.chunk_rows * per_record), MAX_BLOCK_BYTES)
            block, pending = _take_lines(fh, want, pending)
            if not block:
                if chunks == 0:  # a header alone: one empty chunk, so that the columns are checked
                    yield self._frame(pd.DataFrame(columns=header, dtype=object), np.zeros(0, np.int64)), []
                return
            chunks += 1
            n_lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            self.line = line + n_lines - 1
            raw, lines, rejected = _parse_block(block, header, np.arange(line, line + n_lines), self.name)
            line += n_lines
            frame = self._frame(raw, lines)
            if len(frame):
                per_record = max(len(block) / len(frame), 1.0)
            yield frame, rejected

    def _frame(self, raw: pd.DataFrame, lines: np.ndarray) -> pd.DataFrame:
        if self.fmt == "long":
            return _long(raw, lines, self.name)
        return _wide(raw, lines, self.name, self.unit, self.obis)


def check_name(name: str) -> str:
    """A file name fit to name a batch: at most :data:`MAX_NAME_CHARS` characters, no control
    characters (it is shown in reports and stored with every rejected line)."""
    if len(name) > MAX_NAME_CHARS:
        raise InputError(
            "file name", f"is {len(name)} characters long; at most {MAX_NAME_CHARS} are allowed", name[:40] + "..."
        )
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name) or unstorable(name):
        raise InputError("file name", "must be non-empty text without control characters", storable_text(name))
    return name


class _Newlines:
    """The bytes of a stream with every line ending (``\r\n``, a lone ``\r``, ``\n``) as ``\n``.

    :meth:`read` returns `size` bytes, fewer only at the end of the stream. A stream without
    ``\r`` passes through untouched (one ``memchr`` per read)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.after_cr = False  # the last byte read was a \r (already given out as \n)

    def read(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            data = self.raw.read(size - len(out))
            if not data:
                break
            if self.after_cr and data.startswith(b"\n"):
                data = data[1:]  # the \n of a \r\n split between two reads
            self.after_cr = False
            if b"\r" in data:
                self.after_cr = data.endswith(b"\r")
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            out = data if not out else out + data
        return out


def _first_line(data: bytes, name: str) -> bytes:
    """The header line among the first bytes of a file (any line ending)."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    if ends:
        return data[: min(ends)]
    if len(data) > MAX_LINE_BYTES:
        raise InputError(f"{name} line 1", f"the header line is longer than {MAX_LINE_BYTES} bytes")
    return data


def _header(head: bytes, name: str) -> tuple[bytes, list[str]]:
    """The first line without a byte order mark, and its column names (at most MAX_COLUMNS)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.strip():
        raise InputError(f"{name} line 1", "cannot read CSV (no columns: the file or its first line is empty)")
    if len(head) > MAX_LINE_BYTES + 1:
        raise InputError(f"{name} line 1", f"the header line is longer than {MAX_LINE_BYTES} bytes")
    try:
        columns = next(csv.reader([head.decode("utf-8").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{name} line 1", f"cannot read CSV ({exc})") from exc
    if len(columns) > MAX_COLUMNS:
        raise InputError(f"{name} line 1", f"the header has {len(columns)} columns; at most {MAX_COLUMNS} are allowed")
    return head, columns


def _take_lines(fh: _Newlines, size: int, pending: bytes, first_only: bool = False) -> tuple[bytes, bytes]:
    """Whole lines from `pending` + `fh`: the first line, or about `size` bytes of lines (up to the
    end of the line at byte `size`); returns (lines, bytes read after them). At the end of the
    file the last line may lack its newline. A line that runs on beyond `size` and
    MAX_LINE_BYTES is not kept: a marker (:data:`_OVERLONG`) stands for it, which rejects it."""
    size = 1 if first_only else max(size, 1)
    data = pending
    if len(data) < size:
        data += fh.read(size - len(data))  # fewer bytes only at the end of the file
        if len(data) < size:
            return data, b""
    cut = data.find(b"\n", size - 1)
    if cut >= 0:
        return data[: cut + 1], data[cut + 1 :]
    start = data.rfind(b"\n") + 1  # where the unfinished line begins
    line = data[start:]
    length = len(line)
    while True:
        more = fh.read(1 << 16)
        cut = more.find(b"\n")
        part = more if cut < 0 else more[:cut]
        length += len(part)
        if length <= MAX_LINE_BYTES:
            line += part
        if not more or cut >= 0:
            if length > MAX_LINE_BYTES:
                line = _OVERLONG + str(length).encode()
            if cut < 0:
                return data[:start] + line, b""
            return data[:start] + line + b"\n", more[cut + 1 :]


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
    block: bytes, header: list[str], numbers: np.ndarray, name: str
) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]]:
    """One block of whole lines (file line `numbers`) -> (fields, file line numbers, rejected
    lines). Blank lines are no records and are dropped."""
    if b'"' not in block and b"\x00" not in block:
        regular = _parse_regular(block, header)
        if regular is not None:
            return regular, numbers[: len(regular)], []
    return _parse_lines(block, header, numbers, name)


def _parse_regular(block: bytes, header: list[str]) -> pd.DataFrame | None:
    """A block whose every line has the header's number of fields, parsed by Arrow (several times
    faster than pandas); None for any other block (blank lines, wrong field counts, bad UTF-8)."""
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


def _parse_lines(
    block: bytes, header: list[str], numbers: np.ndarray, name: str
) -> tuple[pd.DataFrame, np.ndarray, list[Rejected]]:
    """The slow path of :func:`_parse_block`: each line on its own.

    A record is one line (a quoted field may hold a comma or a doubled quote, never a line
    break). Rejected alone, each with its file line: a line longer than MAX_LINE_BYTES, with a
    NUL byte, with bytes that are not UTF-8, with an unbalanced or malformed quote, or with the
    wrong number of fields. The clean lines are parsed together, as in the fast path."""
    arr = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if len(arr) and arr[-1] != 10:
        ends = np.append(ends, len(arr))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    width = len(header)
    n = len(ends)
    problems: dict[int, tuple[str, str, str]] = {}  # line index -> (field, value, reason)
    for k in _lines_at(ends, np.flatnonzero(arr == 0)):
        if block.startswith(_OVERLONG, starts[k]):
            length = block[starts[k] + len(_OVERLONG) : ends[k]].decode()
            problems[k] = ("line", length, f"line is longer than {MAX_LINE_BYTES} bytes ({length} bytes)")
        else:
            problems[k] = ("line", "NUL", "line contains a NUL byte (0x00)")
    for k in np.flatnonzero(ends - starts > MAX_LINE_BYTES).tolist():
        problems[k] = ("line", str(ends[k] - starts[k]), f"line is longer than {MAX_LINE_BYTES} bytes")
    for k, reason in _bad_utf8(block, starts, ends):
        problems.setdefault(k, ("line", "", reason))
    quoted = [k for k in _lines_at(ends, np.flatnonzero(arr == 34)) if k not in problems]
    rows: list[tuple[int, list[str]]] = []
    for k in quoted:
        fields, why = _quoted_fields(block[starts[k] : ends[k]])
        if fields is None:
            problems[k] = ("line", "", why)
        elif len(fields) != width:
            problems[k] = ("line", str(len(fields)), f"line has {len(fields)} field(s), the header has {width}")
        else:
            rows.append((k, fields))
    counts = (
        np.add.reduceat((arr == 44).astype(np.int32), np.minimum(starts, max(len(arr) - 1, 0)))
        if len(arr)
        else np.zeros(0, np.int32)
    )
    counts = np.where(starts < ends, counts, 0) + 1  # reduceat gives arr[start] for empty ranges
    blank = starts == ends
    special = np.zeros(n, dtype=bool)
    special[list(problems)] = True
    special[[k for k, _ in rows]] = True
    for k in np.flatnonzero(~blank & ~special & (counts != width)).tolist():
        problems[k] = ("line", str(int(counts[k])), f"line has {int(counts[k])} field(s), the header has {width}")
        special[k] = True
    plain = np.flatnonzero(~blank & ~special)
    frame = _plain_lines(block, starts[plain], ends[plain], header)
    lines = numbers[plain]
    if rows:
        extra = pd.DataFrame([f for _, f in rows], columns=header, dtype=object)
        frame = pd.concat([frame.astype(object), extra], ignore_index=True)
        lines = np.concatenate([lines, numbers[[k for k, _ in rows]]])
        order = np.argsort(lines, kind="stable")
        frame, lines = frame.iloc[order].reset_index(drop=True), lines[order]
    rejected = [
        Rejected(
            where=f"{name} line {int(numbers[k])}",
            field=fld,
            value=value,
            reason=reason,
            raw=block[starts[k] : min(ends[k], starts[k] + MAX_RAW_BYTES)].decode("utf-8", errors="replace"),
            line=int(numbers[k]),
        )
        for k, (fld, value, reason) in sorted(problems.items())
    ]
    return frame, lines, rejected


def _lines_at(ends: np.ndarray, positions: np.ndarray) -> list[int]:
    """Indices of the lines (given by their `ends`) that hold the byte `positions`."""
    return np.unique(np.searchsorted(ends, positions)).tolist() if len(positions) else []


def _bad_utf8(block: bytes, starts: np.ndarray, ends: np.ndarray) -> Iterator[tuple[int, str]]:
    """(line index, reason) of the lines that are not valid UTF-8: the block is decoded once; from
    the first bad line on, line by line."""
    try:
        block.decode("utf-8")
        return
    except UnicodeDecodeError as exc:
        first = int(np.searchsorted(ends, exc.start))
    for k in range(first, len(ends)):
        try:
            block[starts[k] : ends[k]].decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = block[starts[k] + exc.start]
            yield k, f"line is not valid UTF-8 (byte 0x{bad:02x} at column {exc.start + 1})"


def _quoted_fields(line: bytes) -> tuple[list[str] | None, str]:
    """The fields of one line with double quotes, or None and why it cannot be read."""
    if line.count(b'"') % 2:
        return None, UNBALANCED_QUOTE
    try:
        return next(csv.reader([line.decode("utf-8")], strict=True)), ""
    except csv.Error as exc:
        return None, f"malformed quoting ({exc}); a field is either wholly quoted or has no quotes"


def _plain_lines(block: bytes, starts: np.ndarray, ends: np.ndarray, header: list[str]) -> pd.DataFrame:
    """Lines known to be clean (no quote, NUL or bad byte; the header's field count): by Arrow,
    or split by hand when the header repeats a name (Arrow cannot name two columns alike)."""
    if len(starts) == 0:
        return pd.DataFrame(columns=header, dtype=object)
    data = b"\n".join(block[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)) + b"\n"
    regular = _parse_regular(data, header)
    if regular is not None:
        return regular
    split = [line.split(",") for line in data.decode("utf-8").split("\n")[:-1]]
    return pd.DataFrame(split, columns=header, dtype=object)


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
