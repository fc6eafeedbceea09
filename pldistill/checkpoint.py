"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is first written to a temporary file in the same folder, flushed
and fsynced, then renamed over the target: a crash leaves either the old file
or the new one, never half of one. Loading uses ``weights_only=True``, so a
malicious file cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .errors import PldistillError


class CheckpointError(PldistillError, RuntimeError):
    pass


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via temp file + fsync + rename."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path} ({exc.strerror or exc}); the previous version, if any, is "
            "untouched; free disk space (or move runs_dir) and resume the run"
        ) from None
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load tensors and plain data only; a clear error for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holding code objects
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "it is corrupt or holds objects other than tensors and plain data"
        ) from None
