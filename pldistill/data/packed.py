"""Packed splits: any adapter's split as one HDF5 file, read lazily per sample.

``pack`` writes one HDF5 dataset per modality, shaped ``(N, *sample_shape)``
and chunked one sample per chunk, so that reading sample ``i`` of ``rgb``
touches exactly one chunk and never the other modalities (a student's view
never pays for the teacher's depth). ``label`` is ``(N,)`` int64. The file's
attributes carry what ``PackedDataset`` needs to stand in for the adapter:
``schema_version``, ``classes`` and ``modalities`` (JSON), ``source`` and the
writing ``pldistill_version``.

Why lzf by default: training reads random single samples, so what a filter
costs per read matters more than what it saves on disk. Measured on this
machine (bench/results/packed_read.md: 2000 synthetic_shapes samples at
48 px, rgb + depth, one chunk per sample, page cache warm, 2 shared cores),
the median cost of a random rgb + depth sample, against uncompressed (12 µs):
lzf 1.39× (17 µs) for a file 0.53× the size; gzip-1 and gzip-4 3.0×
(35 µs) for 0.48×. Our bar for a compressed default is ≤ 2× the uncompressed
read: only lzf passes, and it halves the file (depth shrinks to 0.18×; noisy
rgb does not compress, and HDF5 then stores those chunks raw, at no read
cost). The ~30× penalty noted for the synthetic_shapes cache most likely
comes from h5py's automatic chunks, which span hundreds of samples (a gzip
rgb array chunked (250, 12, 12, 1) read one random sample at ~60× the
uncompressed cost here); with one chunk per sample, a read decompresses
only that sample.
``"none"`` is the fastest; ``"gzip-N"`` is smallest and, unlike lzf (which
ships with h5py), readable by any HDF5 tool without a plugin.

The file is written to a temporary name in the target folder, fsynced and
renamed: an interrupted pack leaves no file at the target, never half of one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import h5py
import numpy as np
from tqdm.auto import tqdm
from pydantic import Field

from ..atomic import atomic_path
from ..errors import PldistillError
from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .section import DataSection

SCHEMA_VERSION = 1  # bump when the layout changes; readers refuse newer files
DEFAULT_COMPRESSION = "lzf"  # see the module docstring and bench/packed_read.py
_BLOCK_BYTES = 64 << 20  # samples buffered per write: bounds memory at ~64 MB


class PackedDatasetError(PldistillError, ValueError):
    """A packed file that cannot be written or read as this version expects."""


def compression_options(spec: str | None) -> dict:
    """``create_dataset`` keywords for ``"none"``, ``"lzf"``, ``"gzip"`` or ``"gzip-N"`` (0-9)."""
    if spec is None or spec == "none":
        return {}
    if spec == "lzf":
        return {"compression": "lzf"}
    if spec == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    if spec.startswith("gzip-") and spec[5:].isdigit() and 0 <= int(spec[5:]) <= 9:
        return {"compression": "gzip", "compression_opts": int(spec[5:])}
    raise PackedDatasetError(
        f"unknown compression {spec!r}; use 'none', 'lzf', 'gzip' or 'gzip-0' .. 'gzip-9'"
    )


def _describe(dataset: PairedDataset) -> str:
    cls = type(dataset)
    where = f" from {dataset.path}" if getattr(dataset, "path", None) is not None else ""
    return f"{cls.__module__}.{cls.__qualname__}{where}, {len(dataset)} samples"


def _pldistill_version() -> str | None:
    try:
        from pldistill import __version__
    except ImportError:  # pragma: no cover - only when vendored without the package
        return None
    return __version__


def _load(dataset: PairedDataset, index: int, names: list[str]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in dataset.load(index, names).items()}


def _check_sample(index: int, arrays: dict[str, np.ndarray], layout: dict[str, tuple]) -> None:
    for name, (shape, dtype) in layout.items():
        if name not in arrays:
            raise PackedDatasetError(
                f"sample {index} has no {name!r} array (load returned {sorted(arrays)})"
            )
        a = arrays[name]
        if a.shape != shape:
            raise PackedDatasetError(
                f"modality {name!r}: sample {index} has shape {a.shape} but sample 0 has {shape}; "
                "a packed file needs one shape per modality (resize the source first)"
            )
        if a.dtype != dtype:
            raise PackedDatasetError(
                f"modality {name!r}: sample {index} has dtype {a.dtype} but sample 0 has {dtype}"
            )


def _write(dataset: PairedDataset, f: h5py.File, compression: str, source: str, bar: tqdm) -> None:
    n = len(dataset)
    names = list(dataset.modalities)
    first = _load(dataset, 0, names)
    absent = [name for name in names if name not in first]
    if absent:
        raise PackedDatasetError(f"sample 0 has no {absent} arrays (load returned {sorted(first)})")
    layout = {name: (first[name].shape, first[name].dtype) for name in names}
    options = compression_options(compression)
    out = {
        name: f.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(1, *shape), **options)
        for name, (shape, dtype) in layout.items()
    }
    labels = np.empty(n, np.int64)
    sample_bytes = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in layout.values())
    block = max(1, min(n, _BLOCK_BYTES // max(sample_bytes, 1)))
    buffers = {name: np.empty((block, *shape), dtype) for name, (shape, dtype) in layout.items()}
    for start in range(0, n, block):
        stop = min(start + block, n)
        for i in range(start, stop):
            arrays = first if i == 0 else _load(dataset, i, names)
            _check_sample(i, arrays, layout)
            for name in names:
                buffers[name][i - start] = arrays[name]
            labels[i] = dataset.label(i)
            bar.update()  # per sample: slow sources (decoding files) still show movement
        for name in names:
            out[name][start:stop] = buffers[name][: stop - start]
    f.create_dataset("label", data=labels)
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["classes"] = json.dumps(list(dataset.classes))
    f.attrs["modalities"] = json.dumps(
        {
            m.name: {
                "kind": m.kind,
                "channels": m.channels,
                "mean": list(m.mean),
                "std": list(m.std),
            }
            for m in dataset.modalities.values()
        }
    )
    f.attrs["source"] = source
    version = _pldistill_version()
    if version is not None:
        f.attrs["pldistill_version"] = version


def pack(
    dataset: PairedDataset,
    path: str | Path,
    *,
    compression: str = DEFAULT_COMPRESSION,
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Write ``dataset`` to one HDF5 file at ``path``, atomically; returns the path.

    ``compression`` is ``"lzf"`` (default: about half the size at ~1.4× the read
    cost), ``"none"`` (fastest reads), ``"gzip"`` or ``"gzip-N"`` (smallest,
    portable to any HDF5 tool). ``source`` describes where the data came from
    (default: the adapter's class, path if any, and size).
    """
    path = Path(path)
    compression_options(compression)  # refuse a bad spec before touching the disk
    if len(dataset) == 0:
        raise PackedDatasetError(
            "cannot pack an empty dataset: there is no sample to take the shapes from"
        )
    if "label" in dataset.modalities:
        raise PackedDatasetError(
            "a modality named 'label' would collide with the labels dataset; rename it"
        )
    live = progress and sys.stderr.isatty()  # no bar in logs and CI, like training
    with atomic_path(path) as tmp:
        bar = tqdm(total=len(dataset), desc=f"packing {path.name}", unit="sample", disable=not live)
        with bar, h5py.File(tmp, "w") as f:
            _write(dataset, f, compression, source or _describe(dataset), bar)
    return path


def _read_header(f: h5py.File, path: Path) -> tuple[list[str], dict[str, Modality]]:
    """(classes, modalities) from an open file, or a clear error."""
    if "schema_version" not in f.attrs:
        raise PackedDatasetError(
            f"{path} is an HDF5 file but not a pldistill packed split (no schema_version)"
        )
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise PackedDatasetError(
            f"{path} uses packed schema version {version}, but this pldistill reads up to "
            f"{SCHEMA_VERSION}; upgrade pldistill to read it"
        )
    try:
        classes = list(json.loads(f.attrs["classes"]))
        spec = json.loads(f.attrs["modalities"])
        modalities = {
            name: Modality(name, m["kind"], int(m["channels"]), tuple(m["mean"]), tuple(m["std"]))
            for name, m in spec.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise PackedDatasetError(
            f"{path} has missing or malformed attributes ({type(exc).__name__}: {exc})"
        ) from None
    missing = [name for name in [*modalities, "label"] if name not in f]
    if missing:
        raise PackedDatasetError(
            f"{path} lacks the datasets {missing}; it is incomplete or was not written by pack"
        )
    n = f["label"].shape[0]
    short = {name: f[name].shape[0] for name in modalities if f[name].shape[0] != n}
    if short:
        raise PackedDatasetError(f"{path}: {n} labels but modality lengths {short}")
    return classes, modalities


class PackedDataset(PairedDataset):
    """A split written by ``pack``: reads only the requested modalities of one sample.

    The HDF5 handle is opened on first access in each process and reopened
    when the pid changes: HDF5 handles must not be shared across a fork, so
    each DataLoader worker gets its own. Pickling drops the handle.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"packed split {self.path} does not exist; create it with pldistill.data.packed.pack"
            )
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise PackedDatasetError(f"{self.path} is not a readable HDF5 file ({exc})") from None
        with f:
            self.classes, self.modalities = _read_header(f, self.path)
            # Labels are 8 bytes a sample: hold them, so label(i) never touches the disk.
            self._labels = f["label"][()]
        self._file: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None

    def _open(self) -> dict[str, h5py.Dataset]:
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork is the parent's: replace it, never read through it.
            self._file = h5py.File(self.path, "r")
            self._datasets = {n: self._file[n] for n in self.modalities if n in self._file}
            self._pid = os.getpid()
        return self._datasets

    def __len__(self) -> int:
        return len(self._labels)

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        datasets = self._open()
        missing = [n for n in names if n not in self.modalities]
        if missing:
            raise KeyError(
                f"modalities {missing} are not in {self.path} (it has {sorted(self.modalities)})"
            )
        gone = [n for n in names if n not in datasets]
        if gone:
            raise PackedDatasetError(
                f"{self.path} no longer holds the datasets {gone}; was it overwritten?"
            )
        return {n: datasets[n][index] for n in names}

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def source(self, index: int, modality: str) -> str:
        return f"{self.path}: {modality}[{index}]"

    def source_files(self) -> list[Path]:
        return [self.path]

    def close(self) -> None:
        """Close this process's handle; the next access reopens it."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._datasets, self._pid = None, {}, None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_file=None, _datasets={}, _pid=None)
        return state

    def __repr__(self) -> str:
        names = sorted(self.modalities)
        return f"PackedDataset({str(self.path)!r}, {len(self)} samples, modalities={names})"


@register_data_kind
class PackedData(DataSection):
    """Splits packed by ``pldistill pack`` (one HDF5 file each; see pldistill/data/packed.py)."""

    resolution_source: ClassVar[bool] = True

    kind: Literal["packed"]
    train: str = Field(description="packed train split (.h5)")
    test: str = Field(description="packed test split (.h5)")

    def build(self):
        train, test = PackedDataset(self.train), PackedDataset(self.test)
        if test.classes != train.classes:
            raise ValueError(f"data.test: classes {test.classes} differ from data.train's {train.classes}")
        return train, test

    def _layout(self):
        train = PackedDataset(self.train)
        return train.modalities, train.classes
