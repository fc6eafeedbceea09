"""``data_split.json``: the record of every split pldistill chose itself (seeded splits, subsets, pairings).

Adapters that choose samples (DTD's seeded 40/40/40, ``limit_per_class``
subsets, class pairing, SUN RGB-D's hold-out) return what they chose from
``split_record()``; a run writes the union of its train and test records
into its folder, so the exact files behind a result can be recovered later.
Adapters whose splits come with the data return nothing, and no file is
written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path
from .protocol import PairedDataset

FILE = "data_split.json"


def split_record(*datasets: PairedDataset) -> dict:
    record: dict = {}
    for ds in datasets:
        record.update(getattr(ds, "split_record", dict)())
    return record


def write_split_record(run_dir: str | Path, *datasets: PairedDataset) -> Path | None:
    """Write ``run_dir/data_split.json`` when any of ``datasets`` chose its samples; its path, or None."""
    record = split_record(*datasets)
    if not record:
        return None
    path = Path(run_dir) / FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return path
