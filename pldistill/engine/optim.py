"""Optimiser, learning-rate schedule and loss scaler, from one frozen group of settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from .. import distributed
from ..models import TappedModel


@dataclass(frozen=True)
class Schedule:
    """How one model trains: the recipe's ``schedule`` section, with this stage's epoch count."""

    epochs: int
    lr: float
    weight_decay: float
    optimizer: str = "adamw"
    warmup_epochs: float = 1.0
    grad_clip: float | None = None
    precision: str = "fp32"
    channels_last: bool = True

    @classmethod
    def from_recipe(cls, schedule, epochs: int) -> "Schedule":
        """``schedule`` is a recipe's ``schedule`` section; ``epochs`` differs between teacher and students."""
        return cls(epochs=epochs, lr=schedule.lr, weight_decay=schedule.weight_decay, optimizer=schedule.optimizer,
                   warmup_epochs=schedule.warmup_epochs, grad_clip=schedule.grad_clip,
                   precision=schedule.precision, channels_last=schedule.channels_last)


@dataclass
class Optimisation:
    """The objects one training run steps: optimiser, per-step LR schedule, fp16 loss scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    grad_clip: float | None

    def step(self, loss: Tensor, params, adjust: Callable[[], None] | None = None) -> None:
        """Backward, ``adjust`` of the gradients (engine/conflict.py), optional clipping (of ``params``), optimiser
        and schedule step."""
        opt, scaler = self.optimizer, self.scaler
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if adjust is not None:
            adjust()
        if self.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        scaler.step(opt)
        scaler.update()
        self.scheduler.step()


def _optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def build_optimisation(trained: nn.Module, schedule: Schedule, steps_per_epoch: int,
                       device: torch.device) -> Optimisation:
    """AdamW/SGD, linear warm-up, then per-step cosine decay.

    The warm-up matters for from-scratch MobileNets, whose logits blow up in
    the first steps at full learning rate and then learn slowly for epochs.
    """
    opt = _optimizer(trained, schedule.optimizer, schedule.lr, schedule.weight_decay)
    steps = schedule.epochs * steps_per_epoch
    warmup = min(int(schedule.warmup_epochs * steps_per_epoch), steps - 1)

    def lr_factor(s: int) -> float:  # a plain function: LambdaLR's state_dict then holds no closure state
        if s < warmup:
            return (s + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    scaler = torch.amp.GradScaler(device.type, enabled=schedule.precision == "fp16")
    return Optimisation(opt, sched, scaler, schedule.grad_clip)


class _Trained(nn.Module):
    """The student plus the losses' learned parts: one module, so DDP averages all their gradients."""

    def __init__(self, student: TappedModel, learned: nn.ModuleList):
        super().__init__()
        self.student, self.learned = student, learned

    def forward(self, x: Tensor):
        return self.student(x)


def wrap_for_ranks(model: TappedModel, learned: nn.ModuleList, device: torch.device):
    """DDP around the trained parts under torchrun; the plain student otherwise."""
    if not distributed.is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Trained(model, learned), device_ids=ids)
