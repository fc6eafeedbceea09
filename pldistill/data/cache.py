"""Where pldistill keeps what it derives from data (renders, unpacked archives, spectrograms)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$PLDISTILL_CACHE``, else ``.cache/pldistill`` (git-ignored) in the working directory."""
    return Path(os.environ.get("PLDISTILL_CACHE", ".cache/pldistill"))
