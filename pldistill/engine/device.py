"""Where and how numbers are computed: device, precision, seeds.

Kept apart from the loop so every caller (runs, benches, tests) sets them up
the same way.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch import Tensor

from .. import distributed

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when asked for or available; under torchrun, this process's own GPU."""
    if not (preference == "cuda" or (preference == "auto" and torch.cuda.is_available())):
        return torch.device("cpu")
    return torch.device("cuda", distributed.local_rank()) if distributed.is_distributed() else torch.device("cuda")


def check_precision(precision: str, device: torch.device) -> None:
    """fp16 needs loss scaling, which only pays off (and is only offered here) on CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {sorted(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"schedule.precision: fp16 needs a CUDA device (float16 autocast with loss scaling); this run is on "
            f"{device.type}: use bf16 (CPU autocast) or fp32"
        )


def autocast(device: torch.device, precision: str = "fp32"):
    """Forward passes in ``precision``; a no-op for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    """A batch tensor on ``device``; images (4-d) in channels_last when asked."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
