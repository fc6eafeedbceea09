"""Teacher-output cache: run the frozen teacher once per training sample, not once per epoch.

When augmentation is off the teacher sees the same input every epoch, so its
logits and tapped features are the same every epoch too: computing them once
and reading them back removes the teacher's forward pass (and the loading of
its privileged inputs) from every student step.

The cache is one uncompressed HDF5 file per (teacher weights, tapped stages,
training set): ``logits`` (N × classes) and ``stage<i>`` (N × C × H × W) in
float32, row ``i`` belonging to sample ``i``. The datasets are contiguous, so
they are read through a NumPy memory map — a batch of random rows is a page
gather, not an HDF5 chunk decode (random reads from compressed chunks were ~30×
slower here). The file is written atomically and carries a digest of the
teacher's weights, so a different teacher never reads another's features.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .atomic import atomic_path
from .models import TappedModel


def weights_digest(model: torch.nn.Module) -> str:
    """A short digest of every parameter and buffer: equal digest → same teacher outputs."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class TeacherCache:
    """Rows of a cache file, looked up by sample index: ``(logits, [features per tap])`` like a teacher."""

    def __init__(self, path: Path, stages: Sequence[int]):
        self.path = Path(path)
        self.stages = list(stages)
        with h5py.File(self.path, "r") as f:
            self._arrays = {name: _memory_map(self.path, f[name]) for name in f}
            self.digest = f.attrs["teacher_digest"]
            self.num_samples = int(f.attrs["num_samples"])

    def __len__(self) -> int:
        return self.num_samples

    def lookup(self, index: Tensor, device: torch.device, channels_last: bool = False) -> tuple[Tensor, list[Tensor]]:
        """The teacher's outputs for these samples, as the live teacher would return them."""
        rows = index.numpy()

        def take(name: str) -> Tensor:
            t = torch.from_numpy(np.ascontiguousarray(self._arrays[name][rows])).to(device, non_blocking=True)
            return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

        return take("logits"), [take(f"stage{s}") for s in self.stages]


def _memory_map(path: Path, dataset: h5py.Dataset) -> np.ndarray:
    """A contiguous, uncompressed dataset as a read-only memory map; otherwise read into memory."""
    offset = dataset.id.get_offset()
    if offset is None or dataset.chunks is not None:
        return dataset[()]
    return np.memmap(path, dtype=dataset.dtype, mode="r", offset=offset, shape=dataset.shape)


def cache_path(folder: Path, teacher: TappedModel, digest: str) -> Path:
    taps = "-".join(str(s) for s in sorted(set(teacher.stages))) or "logits"
    return Path(folder) / f"teacher-{digest}-stages-{taps}.h5"


@torch.no_grad()
def build_teacher_cache(
    teacher: TappedModel,
    loader: DataLoader,
    path: Path,
    device: torch.device,
    channels_last: bool = True,
    autocast=contextlib.nullcontext,
    progress: bool = True,
    digest: str | None = None,
) -> TeacherCache:
    """Run ``teacher`` (eval mode) over ``loader`` (unshuffled, yielding ``index``) and write the file."""
    digest = digest or weights_digest(teacher.model)
    stages = sorted(set(teacher.stages))
    n = len(loader.dataset)
    modality = loader.dataset.names[0]
    was_training = teacher.training
    teacher.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["teacher_digest"] = digest
        f.attrs["num_samples"] = n
        f.attrs["modality"] = modality
        datasets: dict[str, h5py.Dataset] = {}
        bar = tqdm(loader, desc="teacher cache", leave=False, disable=not progress)
        for batch in bar:
            x = batch[modality].to(device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits, feats = teacher(x)
            by_stage = dict(zip(teacher.stages, feats))
            outputs = {"logits": logits, **{f"stage{s}": by_stage[s] for s in stages}}
            rows = batch["index"].numpy()
            if len(rows) > 1 and not np.all(np.diff(rows) == 1):
                raise ValueError("a teacher cache is built from an unshuffled loader: rows must come in order")
            for name, value in outputs.items():
                value = value.float().cpu().contiguous().numpy()
                if name not in datasets:  # contiguous and uncompressed: memory-mappable for random reads
                    datasets[name] = f.create_dataset(name, shape=(n, *value.shape[1:]), dtype="float32")
                datasets[name][rows[0]: rows[0] + len(rows)] = value
    teacher.train(was_training)
    return TeacherCache(path, teacher.stages)


def open_teacher_cache(path: Path, teacher: TappedModel, num_samples: int, digest: str | None = None) -> TeacherCache | None:
    """A finished cache of this teacher's weights over these samples, or None (then build one)."""
    if not path.exists():
        return None
    try:
        cache = TeacherCache(path, teacher.stages)
    except (OSError, KeyError):  # unreadable: rebuilt
        return None
    if cache.digest != (digest or weights_digest(teacher.model)) or len(cache) != num_samples:
        return None
    return cache
