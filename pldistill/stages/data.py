"""A run's data: the datasets once, and the per-stage views and loaders cut from them."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, RandomSampler

from .. import distributed
from ..data import JointTransform, ModalityView
from ..data.check import checked_datasets
from ..data.views import ReplayedViews, ViewReplay, ViewSampler
from ..recipe import Recipe


def make_loader(view: ModalityView, batch_size: int, train: bool, seed: int, workers: int,
                replay: ViewReplay | None = None) -> DataLoader:
    """Shuffled batches in one process; under torchrun this rank's share of each global batch (train,
    ``batch_size`` is global) or of the test set (evaluation: every sample once over all ranks).

    With ``replay`` (a teacher cache's views) the training batches are rows of
    ``ReplayedViews``: the samples in the same order as without it, each through one
    of its K cached views, drawn per epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    samples = range(len(view))
    sampler = distributed.train_sampler(samples, seed) if train else distributed.eval_sampler(view)
    if train and replay is not None:
        base = sampler if sampler is not None else RandomSampler(samples, generator=generator)
        view, sampler = ReplayedViews(view, replay), ViewSampler(base, len(samples), replay)
    return DataLoader(
        view,
        batch_size=distributed.per_rank_batch(batch_size) if train else batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,  # a batch of one breaks BatchNorm and relational losses
        num_workers=workers,
        generator=generator,
        persistent_workers=workers > 0,
    )


class RunData:
    """Train and test sets, read once (rank 0 first); views choose modalities and transforms."""

    def __init__(self, recipe: Recipe, datasets: tuple | None = None):
        self.recipe = recipe
        # a control run shares its parent's data: pass (train, test) rather than reading them again
        self.train_set, self.test_set = datasets or distributed.main_first(
            lambda: checked_datasets(recipe.data, progress=False))

    @property
    def num_classes(self) -> int:
        return len(self.train_set.classes)

    @property
    def resize(self) -> int | None:
        return self.recipe.data.image_size if self.recipe.data.needs_resize else None

    def train_view(self, modalities: list[str], seed: int, with_index: bool = False) -> ModalityView:
        ds, aug = self.train_set, self.recipe.data.augment
        own = seed + 10_007 * distributed.rank()  # each process its own augmentations; rank 0 keeps the recipe's
        transform = JointTransform(
            {m: ds.modalities[m] for m in ds.inputs_of(modalities)}, seed=own, size=self.resize, **aug.model_dump()
        )
        return ModalityView(ds, modalities, transform, self.recipe.data.depth_encoding, with_index=with_index)

    def train_loader(self, modalities: list[str], seed: int, with_index: bool = False,
                     replay: ViewReplay | None = None) -> DataLoader:
        s = self.recipe.schedule
        return make_loader(self.train_view(modalities, seed, with_index), s.batch_size, True, seed, s.num_workers,
                           replay)

    def test_loader(self, modality: str) -> DataLoader:
        """Evaluation sees one modality only: privileged arrays are never read."""
        return self.eval_loader(self.test_set, modality)

    def eval_loader(self, dataset, modality: str) -> DataLoader:
        """``dataset`` (the test set, or a hold-out of the training split) as evaluation sees it: one modality."""
        view = ModalityView(dataset, [modality], self.eval_transform([modality]), self.recipe.data.depth_encoding)
        return make_loader(view, 256, False, 0, self.recipe.schedule.num_workers)

    def eval_transform(self, modalities: list[str]) -> JointTransform | None:
        """Evaluation: no augmentation, only the resize real files need."""
        if self.resize is None:
            return None
        ds = self.test_set
        return JointTransform({m: ds.modalities[m] for m in ds.inputs_of(modalities)}, hflip=False, size=self.resize)
