"""Temporary directories of uploads, cleaned also after a crash.

An upload is written to ``<tmp>/quartiere-upload-<pid>-<random>/`` while it is ingested and the
directory is removed afterwards. A process killed meanwhile (kill -9, OOM) cannot remove it, so at
start the service removes every such directory whose process is gone (never one of a live process:
another service or test may be using it).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
PREFIX = "quartiere-upload-"


@contextmanager
def upload_dir() -> Iterator[Path]:
    """A fresh directory for one upload, removed on exit."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as tmp:
        yield Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_uploads(root: Path | None = None) -> list[Path]:
    """Remove the upload directories under `root` (default: the system's temp directory) left by
    processes that no longer run; returns them."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid_text = path.name[len(PREFIX) :].split("-", 1)[0]
        if not path.is_dir() or not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.warning("removed %d upload directories left by stopped processes", len(removed))
    return removed
