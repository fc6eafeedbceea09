"""The training loop: one function trains any classifier, with or without a teacher.

``fit`` is used three times by a run: the teacher (CE on the privileged
modality), the scratch student (CE on the restricted modality) and the
distilled student (CE + weighted distillation terms against the frozen
teacher, both fed the *same* augmented sample). ``distill_step`` is the one
step contract: total loss, logits and the already-weighted named terms, with
``total == sum(terms)``.

Under torchrun the student (and any learned loss parts) train inside
DistributedDataParallel: each rank runs the same loop on its share of every
global batch, gradients are averaged, and epoch metrics are summed over ranks.
``precision`` runs forward passes under autocast (bf16/fp16); losses are
computed in float32 whatever the activations' dtype.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from . import distributed
from .models import TappedModel
from .resume import load_progress, save_progress
from .losses.terms import DistillTerm
from .teacher_cache import TeacherCache

Log = Callable[[dict, int], None]


@dataclass
class StepOutput:
    total: Tensor
    logits: Tensor
    terms: dict[str, Tensor]


@dataclass
class FitResult:
    test_acc: float
    seconds: float
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when asked for or available; under torchrun, this process's own GPU."""
    if not (preference == "cuda" or (preference == "auto" and torch.cuda.is_available())):
        return torch.device("cpu")
    return torch.device("cuda", distributed.local_rank()) if distributed.is_distributed() else torch.device("cuda")


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def _to(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def distill_step(
    student: TappedModel,
    inputs: Tensor,
    labels: Tensor,
    teacher: TappedModel | None = None,
    teacher_inputs: Tensor | None = None,
    terms: Sequence[DistillTerm] = (),
    teacher_outputs: tuple[Tensor, list[Tensor]] | None = None,
) -> StepOutput:
    """Forward the student (and the frozen teacher) and return the weighted loss terms.

    ``teacher_outputs`` (logits, tapped features), e.g. read from a teacher cache,
    replace the teacher's forward pass.
    """
    logits, s_feats = student(inputs)
    named = {"ce": F.cross_entropy(logits.float(), labels)}
    if terms:
        if teacher_outputs is not None:
            t_logits, t_feats = teacher_outputs
        else:
            with torch.no_grad():
                t_logits, t_feats = teacher(teacher_inputs)
        for term in terms:
            if term.on_logits:
                value = term.fn(t_logits, logits)
            else:
                value = term.fn(t_feats[term.teacher_tap], s_feats[term.student_tap])
            named[term.key] = term.weight * value
    total = torch.stack(list(named.values())).sum()
    return StepOutput(total, logits, named)


@torch.no_grad()
def evaluate(
    model: TappedModel, loader: DataLoader, modality: str, device: torch.device, channels_last: bool,
    precision: str = "fp32",
) -> float:
    """Top-1 accuracy; reads only ``batch[modality]``: nothing else is needed to predict.

    A loader sharded over ranks (``distributed.EvalShard``) is counted on every
    rank and summed: each test sample exactly once.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in loader:
        with autocast(device, precision):
            logits, _ = model(_to(batch[modality], device, channels_last))
        correct += (logits.argmax(1).cpu() == batch["label"]).sum().item()
        total += len(batch["label"])
    model.train(was_training)
    if isinstance(loader.sampler, distributed.EvalShard):
        correct, total = distributed.all_reduce_sum([correct, total])
    return correct / max(total, 1)


class _Trained(nn.Module):
    """The student plus the losses' learned parts: one module, so DDP averages all their gradients."""

    def __init__(self, student: TappedModel, learned: nn.ModuleList):
        super().__init__()
        self.student, self.learned = student, learned

    def forward(self, x: Tensor):
        return self.student(x)


def _wrap(model: TappedModel, learned: nn.ModuleList, device: torch.device):
    """DDP around the trained parts under torchrun; the plain student otherwise."""
    if not distributed.is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Trained(model, learned), device_ids=ids)


def _optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def fit(
    model: TappedModel,
    modality: str,
    train_loader: DataLoader,
    test_loader: DataLoader,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    optimizer: str = "adamw",
    warmup_epochs: float = 1.0,
    grad_clip: float | None = None,
    device: torch.device,
    channels_last: bool = True,
    teacher: TappedModel | None = None,
    teacher_modality: str | None = None,
    terms: Sequence[DistillTerm] = (),
    log: Log | None = None,
    prefix: str = "model",
    progress: bool = True,
    epoch_metrics: Callable[[TappedModel], dict[str, float]] | None = None,
    progress_file: Path | None = None,
    checkpoint_every: int = 1,
    precision: str = "fp32",
    teacher_cache: TeacherCache | None = None,
) -> FitResult:
    """Train ``model`` for ``epochs``: AdamW/SGD, linear warm-up, then per-step cosine decay.

    The warm-up matters for from-scratch MobileNets, whose logits blow up in
    the first steps at full learning rate and then learn slowly for epochs.
    With ``progress_file``, the complete training state is saved there every
    ``checkpoint_every`` epochs and, when the file exists, training continues
    from it: a crash costs at most the epochs since the last save.

    Under torchrun: ``train_loader`` yields this rank's share of each global
    batch (``distributed.train_sampler``; reshuffled per epoch), logs, prints and
    checkpoints come from rank 0 only, and a non-finite loss on any rank stops
    every rank.

    With ``teacher_cache`` the teacher's outputs are read by ``batch["index"]``
    instead of computed, and ``batch[teacher_modality]`` is never needed.
    """
    check_precision(precision, device)
    main = distributed.is_main()
    progress = progress and main
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory).train()
    if teacher is not None:
        teacher.to(device, memory_format=memory).eval()  # frozen: BN statistics never move
        teacher.requires_grad_(False)
    # Losses with learned parts (FitNets regressors) train alongside the student.
    learned = nn.ModuleList([t.fn for t in terms if isinstance(t.fn, nn.Module)]).to(device)
    opt = _optimizer(nn.ModuleList([model, learned]), optimizer, lr, weight_decay)
    steps = epochs * len(train_loader)
    warmup = min(int(warmup_epochs * len(train_loader)), steps - 1)

    def lr_factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    history: list[dict] = []
    start = time.perf_counter()
    step = first_epoch = 0
    parts = {"model": model.model, "learned": learned, "optimizer": opt, "scheduler": sched, "loader": train_loader,
             "scaler": scaler}
    if progress_file is not None and distributed.on_main(progress_file.exists):
        if not progress_file.exists():
            raise distributed.DistributedError(
                f"rank {distributed.rank()}: cannot see {progress_file}, which rank 0 resumes from; resuming a "
                "multi-node run needs the run folder on a file system every node shares"
            )
        # ranks > 0 keep their own augmentation streams: the file holds rank 0's
        restored = load_progress(progress_file, **parts, restore_augment=main)
        first_epoch, step, history = restored["epoch"], restored["step"], restored["history"]
        start -= restored["seconds"]
        if progress:
            print(f"  {prefix}: resuming after epoch {first_epoch}/{epochs} from {progress_file}")
    forward = _wrap(model, learned, device)
    for epoch in range(first_epoch, epochs):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)  # a new permutation each epoch, the same on every rank
        epoch_start = time.perf_counter()
        sums: dict[str, float] = {}
        correct = seen = 0
        # Bars only on a terminal; logs (CI, nohup) get the one-line epoch summary below.
        live = progress and sys.stderr.isatty()
        bar = tqdm(train_loader, desc=f"{prefix} {epoch + 1}/{epochs}", leave=False, disable=not live)
        for batch in bar:
            labels = batch["label"].to(device)
            live_teacher = terms and teacher_cache is None
            with autocast(device, precision):
                out = distill_step(
                    forward,
                    _to(batch[modality], device, channels_last),
                    labels,
                    teacher,
                    _to(batch[teacher_modality], device, channels_last) if live_teacher else None,
                    terms,
                    teacher_cache.lookup(batch["index"], device, channels_last) if teacher_cache else None,
                )
            if distributed.any_rank(not torch.isfinite(out.total)):
                bad = [k for k, v in out.terms.items() if not torch.isfinite(v)] or "(on another process)"
                raise FloatingPointError(f"{prefix}: loss term(s) {bad} became non-finite at step {step}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(out.total).backward()
            if grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            n = len(labels)
            seen += n
            correct += (out.logits.argmax(1) == labels).sum().item()
            for k, v in {"loss": out.total, **{f"terms/{k}": v for k, v in out.terms.items()}}.items():
                sums[k] = sums.get(k, 0.0) + v.item() * n
            bar.set_postfix(loss=f"{sums['loss'] / seen:.3f}")
        keys = list(sums)  # the same terms, in the same order, on every rank
        *totals, correct, seen = distributed.all_reduce_sum([sums[k] for k in keys] + [correct, seen])
        record = {f"train/{k}": v / seen for k, v in zip(keys, totals)}
        record["train/acc"] = correct / seen
        record["train/seconds"] = time.perf_counter() - epoch_start
        record["val/acc"] = evaluate(model, test_loader, modality, device, channels_last, precision)
        if epoch_metrics is not None and main:  # e.g. teacher/student alignment on the probe set
            record.update(epoch_metrics(model))
        record["lr"] = sched.get_last_lr()[0]
        record["epoch"] = epoch + 1
        history.append(record)
        if log is not None and main:
            log({f"{prefix}/{k}": v for k, v in record.items()}, step)
        if progress_file is not None and main and (epoch + 1) % checkpoint_every == 0 and epoch + 1 < epochs:
            save_progress(progress_file, **parts, epoch=epoch + 1, step=step,
                          seconds=time.perf_counter() - start, history=history)
        if progress:
            tqdm.write(
                f"  {prefix} epoch {epoch + 1}/{epochs}: loss {record['train/loss']:.3f} "
                f"train acc {record['train/acc']:.3f} test acc {record['val/acc']:.3f}"
            )
    return FitResult(history[-1]["val/acc"], time.perf_counter() - start, history)
