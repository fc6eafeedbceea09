"""Teacher-output cache: run the frozen teacher once per augmented view, not once per epoch.

The teacher is frozen, so its outputs depend only on its input. Under
augmentation the input changes every epoch; the cache therefore fixes K views
per training sample (``data/views.py``: each view is a seed from which the joint
transform replays the same geometry and photometric change on any modality),
runs the teacher once per view, and lets the student's epochs draw one of the
K views of each sample, reading the teacher's outputs for that very view.
Without augmentation K = 1 and the cache is exact (Shen & Xing, *A Fast
Knowledge Distillation Framework for Visual Recognition*, ECCV 2022, store
outputs per augmented view the same way).

The file is one uncompressed HDF5 file per (teacher weights, tapped stages,
view settings): ``logits`` (N·K × classes) and ``stage<i>`` (N·K × C × H × W),
float16 by default, row ``i·K + v`` holding sample ``i``'s view ``v``. The
datasets are contiguous, so they are read through a NumPy memory map: a batch
of random rows is a page gather, not an HDF5 chunk decode. Its attributes hold
a digest of the teacher's weights and a key of everything that defines the
views (augmentation, resize, depth encoding, K, seed), so changed settings
never read old outputs. The build writes ``<file>.partial`` with a count of
finished rows: an interrupted build resumes there; only a finished file is
renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .atomic import replace_durably
from .data.protocol import ModalityView
from .data.views import ReplayedViews, ViewReplay
from .errors import PldistillError
from .models import TappedModel

PRECISIONS = {"float16": np.float16, "float32": np.float32}


class CacheSpaceError(PldistillError, OSError):
    """The disk cannot hold the cache file: the message gives its size and the free space."""


def weights_digest(model: torch.nn.Module) -> str:
    """A short digest of every parameter and buffer: equal digest → same teacher outputs."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class TeacherCache:
    """Rows of a cache file, looked up by flat view row: ``(logits, [features per tap])`` like a teacher."""

    def __init__(self, path: Path, stages: Sequence[int]):
        self.path = Path(path)
        self.stages = list(stages)
        with h5py.File(self.path, "r") as f:
            self._arrays = {name: _memory_map(self.path, f[name]) for name in f}
            self.digest = str(f.attrs["teacher_digest"])
            self.settings = str(f.attrs.get("settings", ""))
            self.num_samples = int(f.attrs["num_samples"])
            self.replay = ViewReplay(int(f.attrs.get("views", 1)), int(f.attrs.get("view_seed", 0)))
            self.precision = str(f.attrs.get("precision", "float32"))

    def __len__(self) -> int:
        return self.num_samples

    def lookup(self, index: Tensor, device: torch.device, channels_last: bool = False) -> tuple[Tensor, list[Tensor]]:
        """The teacher's outputs for these rows (float32, whatever is stored), as the live teacher returns them."""
        rows = index.numpy()

        def take(name: str) -> Tensor:
            t = torch.from_numpy(np.ascontiguousarray(self._arrays[name][rows])).to(device, non_blocking=True).float()
            return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

        return take("logits"), [take(f"stage{s}") for s in self.stages]


def _memory_map(path: Path, dataset: h5py.Dataset) -> np.ndarray:
    """A contiguous, uncompressed dataset as a read-only memory map; otherwise read into memory."""
    offset = dataset.id.get_offset()
    if offset is None or dataset.chunks is not None:
        return dataset[()]
    return np.memmap(path, dtype=dataset.dtype, mode="r", offset=offset, shape=dataset.shape)


def settings_key(**settings) -> str:
    """A short key of what defines the cached views (augmentation, resize, …): another key, another file."""
    text = repr(sorted((k, repr(v)) for k, v in settings.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(folder: Path, teacher: TappedModel, digest: str, settings: str = "") -> Path:
    taps = "-".join(str(s) for s in sorted(set(teacher.stages))) or "logits"
    return Path(folder) / f"teacher-{digest}-stages-{taps}{'-views-' + settings if settings else ''}.h5"


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size:.0f} B"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - not reached


def _attrs_match(f: h5py.File, expected: dict) -> bool:
    return all(k in f.attrs and str(f.attrs[k]) == str(v) for k, v in expected.items())


@torch.no_grad()
def build_teacher_cache(
    teacher: TappedModel,
    view: ModalityView,
    path: Path,
    device: torch.device,
    replay: ViewReplay = ViewReplay(1, 0),
    *,
    settings: str = "",
    precision: str = "float16",
    batch_size: int = 256,
    num_workers: int = 0,
    channels_last: bool = True,
    autocast=contextlib.nullcontext,
    progress: bool = True,
    digest: str | None = None,
) -> TeacherCache:
    """Run ``teacher`` (eval mode) over every view of every sample of ``view`` and write the file.

    ``view`` reads the teacher's modality with the training transform; its rows are
    replayed K = ``replay.count`` times. Resumes a ``.partial`` file of the same
    teacher and settings; refuses to start when the disk cannot hold the result.
    """
    digest = digest or weights_digest(teacher.model)
    stages = sorted(set(teacher.stages))
    modality = view.names[0]
    n = len(view.dataset)
    rows = ReplayedViews(view, replay)
    total = len(rows)
    dtype = PRECISIONS[precision]
    expected = {"teacher_digest": digest, "num_samples": n, "views": replay.count, "view_seed": replay.seed,
                "settings": settings, "precision": precision, "modality": modality}
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = _resumable_rows(partial, expected)
    was_training = teacher.training
    teacher.eval()
    loader = DataLoader(Subset(rows, range(start, total)), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers)
    with h5py.File(partial, "a" if start else "w") as f:
        if not start:
            f.attrs.update(expected)
            f.attrs["rows_done"] = 0
        bar = tqdm(loader, desc="teacher cache", leave=False, disable=not progress,
                   initial=start // batch_size, total=(total + batch_size - 1) // batch_size)
        for batch in bar:
            x = batch[modality].to(device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits, feats = teacher(x)
            by_stage = dict(zip(teacher.stages, feats))
            outputs = {"logits": logits, **{f"stage{s}": by_stage[s] for s in stages}}
            index = batch["index"].numpy()
            first = int(index[0])
            if not np.array_equal(index, np.arange(first, first + len(index))):
                raise ValueError("a teacher cache is built from an unshuffled loader: rows must come in order")
            arrays = {name: value.float().cpu().contiguous().numpy() for name, value in outputs.items()}
            if "logits" not in f:
                try:
                    _create(f, arrays, total, dtype, partial, progress, n, replay.count)
                except CacheSpaceError:
                    f.close()
                    partial.unlink()
                    raise
            for name, value in arrays.items():
                stored = value.astype(dtype)
                if not np.isfinite(stored).all():
                    raise ValueError(f"the teacher's {name} overflow {precision} (largest |value| "
                                     f"{np.abs(value).max():.3g}); set distill.teacher_cache_precision: float32")
                f[name][first: first + len(index)] = stored
            f.attrs["rows_done"] = first + len(index)
            f.flush()
    teacher.train(was_training)
    replace_durably(partial, path)
    return TeacherCache(path, teacher.stages)


def _resumable_rows(partial: Path, expected: dict) -> int:
    """Rows already written by an interrupted build of the same teacher and settings (else 0, file removed)."""
    if not partial.exists():
        return 0
    try:
        with h5py.File(partial, "r") as f:
            if _attrs_match(f, expected) and "logits" in f:
                return int(f.attrs["rows_done"])
    except (OSError, KeyError):
        pass
    partial.unlink()
    return 0


def _create(f: h5py.File, arrays: dict[str, np.ndarray], total: int, dtype, partial: Path, progress: bool,
            num_samples: int, views: int) -> None:
    """Contiguous, uncompressed datasets (memory-mappable) — once the disk is known to hold them."""
    row_bytes = sum(int(np.prod(a.shape[1:])) for a in arrays.values()) * np.dtype(dtype).itemsize
    need = row_bytes * total
    free = shutil.disk_usage(partial.parent).free
    if need > free:
        raise CacheSpaceError(
            f"the teacher cache needs {_human(need)} ({num_samples} samples × {views} views × {_human(row_bytes)}) "
            f"but {partial.parent} has {_human(free)} free; lower distill.teacher_cache_views, keep "
            "distill.teacher_cache_precision: float16, free disk space, or set distill.teacher_cache: false")
    if progress:
        print(f"  teacher cache: {_human(row_bytes)} per sample and view × {num_samples} samples × {views} "
              f"view(s) = {_human(need)} ({_human(free)} free) → {partial.parent}")
    for name, value in arrays.items():
        f.create_dataset(name, shape=(total, *value.shape[1:]), dtype=dtype)


def open_teacher_cache(path: Path, teacher: TappedModel, num_samples: int, digest: str | None = None,
                       replay: ViewReplay | None = None, settings: str | None = None) -> TeacherCache | None:
    """A finished cache of this teacher's weights over these samples and views, or None (then build one)."""
    if not path.exists():
        return None
    try:
        cache = TeacherCache(path, teacher.stages)
    except (OSError, KeyError):  # unreadable: rebuilt
        return None
    if cache.digest != (digest or weights_digest(teacher.model)) or len(cache) != num_samples:
        return None
    if (replay is not None and cache.replay != replay) or (settings is not None and cache.settings != settings):
        return None
    return cache
