"""Everything a training loop needs to continue exactly where it stopped.

Saved atomically at the end of every ``checkpoint_every`` epochs: weights,
learned loss parts, optimiser, scheduler, the fp16 loss scale, the RNG streams that decide what
comes next (torch, CUDA, NumPy, Python, the data loader's shuffling generator
and the augmentation pipeline's generators) and the history so far. Restoring
all of them makes a resumed run produce the same weights as one that never
stopped (CPU, ``num_workers: 0``; with loader workers the augmentation streams
live in the worker processes and a resumed run differs in its random crops).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint, save_atomic


def _transform_of(loader: DataLoader):
    return getattr(getattr(loader, "dataset", None), "transform", None)


def rng_state(loader: DataLoader) -> dict:
    legacy = np.random.get_state(legacy=False)
    legacy["state"]["key"] = legacy["state"]["key"].tolist()  # plain ints: loadable with weights_only
    state = {
        "torch": torch.get_rng_state(),
        "numpy": legacy,
        "python": random.getstate(),
        "loader": loader.generator.get_state() if loader.generator is not None else None,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    transform = _transform_of(loader)
    if transform is not None and hasattr(transform, "rng_state"):
        state["augment"] = transform.rng_state()
    return state


def set_rng_state(state: dict, loader: DataLoader, restore_augment: bool = True) -> None:
    torch.set_rng_state(state["torch"])
    legacy = dict(state["numpy"])
    legacy["state"] = dict(legacy["state"], key=np.array(legacy["state"]["key"], dtype=np.uint32))
    np.random.set_state(legacy)
    random.setstate(state["python"])
    if state.get("loader") is not None and loader.generator is not None:
        loader.generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    transform = _transform_of(loader)
    if restore_augment and "augment" in state and transform is not None:
        transform.set_rng_state(state["augment"])


def save_progress(path: Path, *, model: nn.Module, learned: nn.Module, optimizer, scheduler, epoch: int,
                  step: int, seconds: float, history: list[dict], loader: DataLoader,
                  scaler: torch.amp.GradScaler | None = None, balance=None) -> None:
    save_atomic(
        {
            "model": model.state_dict(),
            "learned": learned.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            # fp16's loss scale has grown or shrunk over the run; restarting it at 65536 would skip steps
            "scaler": scaler.state_dict() if scaler is not None else {},
            "epoch": epoch,
            "step": step,
            "seconds": seconds,
            "history": history,
            "rng": rng_state(loader),
            # calibrated relative weights (engine/balance.py): a resumed run must not recalibrate on later batches
            "balance": balance.state_dict() if balance is not None else {},
        },
        path,
    )


def load_progress(path: Path, *, model: nn.Module, learned: nn.Module, optimizer, scheduler,
                  loader: DataLoader, restore_augment: bool = True,
                  scaler: torch.amp.GradScaler | None = None, balance=None) -> dict:
    """Restore a progress checkpoint in place; returns epoch, step, seconds and history.

    ``restore_augment=False`` keeps the loader's own augmentation streams: under
    torchrun the file holds rank 0's, and the other ranks must not replay them.
    """
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    learned.load_state_dict(state["learned"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and scaler.is_enabled() and state.get("scaler"):  # older files have none
        scaler.load_state_dict(state["scaler"])
    if balance is not None and state.get("balance"):  # older files have none
        balance.load_state_dict(state["balance"])
    set_rng_state(state["rng"], loader, restore_augment)
    return {k: state[k] for k in ("epoch", "step", "seconds", "history")}
