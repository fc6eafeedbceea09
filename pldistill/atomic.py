"""Atomic file replacement: write beside the target, fsync, rename over it.

A crash, a full disk or Ctrl-C leaves either the old file or the new one,
never half of one, and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path`` durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_durably(finished: Path, path: Path) -> None:
    """Rename a finished file over ``path`` so that a crash leaves the old file or the new one, whole."""
    _fsync(finished)
    os.replace(finished, path)
    _fsync(Path(path).parent)  # make the rename itself durable
