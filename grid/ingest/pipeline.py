"""The one ingestion path: validate -> classify against the store -> write, in one transaction.

``ingest`` (one record frame) and ``ingest_chunks`` / ``ingest_csv`` (a stream of record frames,
in bounded memory) are what every source calls (CSV, JSON payload, MQTT). The batch is atomic:
its accepted values, the revisions they cause, the derived interval energies, register flags and
its rejected records commit together with the batch row, or nothing does.

A stream is stored in two passes inside the one transaction:

1. chunk by chunk: validate, classify against the store (which already holds the earlier chunks,
   so a reading repeated across chunks is a duplicate or a revision exactly as within a chunk),
   write values and revisions; remember per register sensor the span of timestamps it touched;
2. per group of register sensors: difference the registers, now complete in the store, over the
   touched span and its stored neighbours into interval energies and flags.

So a file gives the same tables whether it is read in one chunk or many, in any row order (a
register reading late in the file is differenced with its neighbours from anywhere in the file).
The one exception is the repeated autumn hour given as naive local time: those records are set
aside and validated together after the last chunk (their order tells the passes apart); they are
applied after the rest of the file. A second exception: a register spike
(:func:`grid.ingest.registers.isolated_spikes`) is judged against the neighbours known when its
chunk is written (stored ones and the chunk's own), so a spike whose later neighbour comes only in
a later chunk is stored as measured (its interval flagged implausible), as in one piece it would be
rejected.

On PostgreSQL the writes of a chunk run on a worker thread while the main thread parses and
validates the next chunk (psycopg releases the GIL while the server works); the connection is only
ever used by one thread at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from grid.ingest.csvfile import CsvChunks, Format
from grid.ingest.options import IngestOptions
from grid.ingest.report import IngestReport, Rejected, Source, storable_text
from grid.ingest.validate import reject_rows, validate
from grid.ingest.writer import BatchWriter, ProgressFn, Worker
from grid.store import bulk
from grid.store.catalog import IMPORT_REGISTER
from grid.store.engine import write_transaction
from grid.store.sites import get_site, sensor_frame

#: A stream of (record frame, records the reader refused already).
Chunks = Iterable[tuple[pd.DataFrame, Sequence[Rejected]]]


def ingest(
    engine: Engine,
    site_id: str,
    records: pd.DataFrame,
    source: Source,
    options: IngestOptions | None = None,
    pre_rejected: Sequence[Rejected] = (),
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Validate `records` (a record frame, :mod:`grid.ingest.records`) and store them as one batch.

    `pre_rejected` are records the reader already refused (a CSV line with a wrong number of
    fields, a malformed MQTT message); they are stored and counted with the batch. Returns the
    report; ``report.balanced`` holds by construction.
    """
    if not source.checksum:
        text = records.astype(str)
        try:
            hashed = pd.util.hash_pandas_object(text, index=False)
        except UnicodeEncodeError:  # a lone surrogate somewhere (rejected by the validator)
            hashed = pd.util.hash_pandas_object(text.map(storable_text), index=False)
        source = Source(source.kind, source.name, hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest())
    return ingest_chunks(engine, site_id, [(records, pre_rejected)], source, options, progress)


def ingest_csv(
    engine: Engine,
    site_id: str,
    path: str | Path,
    fmt: Format = "long",
    unit: str | None = None,
    obis: str = IMPORT_REGISTER,
    options: IngestOptions | None = None,
    progress: ProgressFn | None = None,
    source_kind: str = "csv",
    name: str | None = None,
) -> IngestReport:
    """Stream a long or wide CSV file (:class:`grid.ingest.csvfile.CsvChunks`) into one batch, in
    memory bounded by ``options.chunk_rows`` records (not by the size of the file).

    `name` names the file in locations and as the batch source (default: the path's name; an
    upload passes the client's file name, at most 255 characters, else :class:`InputError`).
    """
    options = options or IngestOptions()
    chunks = CsvChunks(path, fmt, unit, obis, options.chunk_rows, name)

    def stream() -> Chunks:
        for frame, bad in chunks:
            yield frame, bad
            if progress:
                progress("read", chunks.bytes_read, chunks.bytes_total)

    def source() -> Source:
        return Source(source_kind, chunks.name, chunks.checksum)

    return ingest_chunks(engine, site_id, stream(), source, options, progress)


def ingest_chunks(
    engine: Engine,
    site_id: str,
    chunks: Chunks,
    source: Source | Callable[[], Source],
    options: IngestOptions | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Validate and store a stream of record frames as one batch (see the module docstring).

    `source` may be a function, called after the last chunk (a file's checksum is known only
    then). Rejections are reported in line order when there is more than one chunk.
    """
    options = options or IngestOptions()
    site = get_site(engine, site_id)
    sensors = sensor_frame(engine, site_id)
    opening = source if isinstance(source, Source) else source()
    one_frame = isinstance(chunks, Sequence) and len(chunks) <= 1
    report = IngestReport(opening)
    writer = BatchWriter(sensors, opening, site.resolution_min * 60, options, progress)
    writer.whole = one_frame
    deferred: list[pd.DataFrame] = []
    deferred_pos: list[np.ndarray] = []
    offset = 0
    with write_transaction(engine) as conn, Worker(engine.dialect.name == "postgresql") as worker:
        bulk.lock_site(conn, site_id)
        batch_id = writer.open(conn, site_id)
        for records, pre_rejected in chunks:
            if progress:
                progress("validate", 0, len(records))
            checked = validate(records, sensors, site_id, site.resolution_min, options, opening.name, not one_frame)
            if progress:
                progress("validate", len(records), len(records))
            report.rows_read += len(records) + len(pre_rejected)
            report.rejected.extend(pre_rejected)
            report.rejected.extend(checked.rejected)
            if len(checked.deferred):
                deferred.append(records.iloc[checked.deferred])
                deferred_pos.append(checked.deferred + offset)
            valid = checked.valid.assign(pos=checked.valid["pos"].to_numpy() + offset)
            spikes, reasons = writer.add(conn, valid, worker)
            report.rejected.extend(reject_rows(records, spikes - offset, "value", reasons, opening.name))
            offset += len(records)
        if deferred:
            late = pd.concat(deferred, ignore_index=True)
            checked = validate(late, sensors, site_id, site.resolution_min, options, opening.name)
            report.rejected.extend(checked.rejected)
            positions = np.concatenate(deferred_pos)
            valid = checked.valid.assign(pos=positions[checked.valid["pos"].to_numpy()])
            spikes, reasons = writer.add(conn, valid, worker)
            at = checked.valid["pos"].to_numpy()[np.isin(valid["pos"].to_numpy(), spikes)]
            report.rejected.extend(reject_rows(late, at, "value", reasons, opening.name))
        report.flags = writer.derive_intervals(conn, worker)
        worker.wait()
        report.accepted, report.duplicates, report.revised = writer.counts
        if not one_frame:
            report.rejected.sort(key=lambda r: r.line if r.line is not None else -1)
        report.source = source if isinstance(source, Source) else source()
        writer.close(conn, site_id, report)
    report.batch_id = batch_id
    return report
