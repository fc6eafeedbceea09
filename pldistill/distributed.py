"""Many processes, one run: torchrun's environment becomes a process group, plus the few collectives we use.

``torchrun`` starts one process per GPU (or per CPU share) and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
``process_group`` turns them into a process group — NCCL on GPUs, gloo on
CPU — with a timeout (``PLDISTILL_DIST_TIMEOUT`` seconds, default 600), so a
process that dies or stops answering ends the job with an error instead of a
hang. Without torchrun, or with one process, nothing here communicates and
every helper is the identity.

Rank 0 decides and writes (run folder, checkpoints, caches, logs); the other
ranks follow. Its decisions travel as JSON text and tensors, never as pickles.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from datetime import timedelta
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from .errors import PldistillError

T = TypeVar("T")
TIMEOUT_ENV = "PLDISTILL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
_joined = False  # this process joined a torchrun group (see exit_job)


class DistributedError(PldistillError, RuntimeError):
    """Another process of the job failed or stopped answering; its own error is in its output."""


# -- who am I ------------------------------------------------------------------
def launched() -> bool:
    """Started by torchrun (or a compatible launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its own machine (its GPU); 0 when not distributed."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def backend() -> str | None:
    return dist.get_backend() if is_distributed() else None


# -- lifetime --------------------------------------------------------------------
def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"${TIMEOUT_ENV}={raw!r}: give the collective timeout in seconds, e.g. {TIMEOUT_ENV}=600")
    return value


def _lost_peer(exc: BaseException) -> bool:
    """Errors that mean another rank is gone or silent (gloo raises plain RuntimeErrors)."""
    text = str(exc)
    if isinstance(exc, DistributedError):  # already says what happened
        return False
    return isinstance(exc, dist.DistError) or (
        isinstance(exc, RuntimeError)
        and any(s in text for s in ("gloo/", "Connection closed by peer", "Connection reset", "NCCL", "Timed out"))
    )


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[None]:
    """Join torchrun's process group for the body; always leave it, even on an error.

    ``device`` is the recipe's ``schedule.device``: CUDA → NCCL, one GPU per
    local rank; CPU → gloo. A group that already exists (set up by the caller,
    e.g. a test) is used as it is and left alone.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    seconds = timeout_s()
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(seconds=seconds))
    global _joined
    _joined = True
    me = dist.get_rank()
    try:
        yield
    except Exception as exc:
        if _lost_peer(exc):
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise DistributedError(
                f"rank {me}: lost contact with another process of this job: it failed (its error is in the "
                f"output above) or did not answer within {seconds:g} s (${TIMEOUT_ENV}); {first}"
            ) from exc
        raise
    finally:
        dist.destroy_process_group()


def exit_job(code: int) -> None:
    """End a torchrun worker now, once its work is done and its output flushed.

    With torch 2.14, a process that used DistributedDataParallel sometimes
    aborts while the interpreter shuts down ("terminate called without an
    active exception", SIGABRT; ~1 in 10 on gloo here), turning a finished job
    into a failed one. ``os._exit`` skips that shutdown; it is used only in
    processes that joined a group through ``process_group``.
    """
    if not _joined:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- collectives -------------------------------------------------------------------
def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    if backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_with_grad(x: Tensor) -> Tensor:
    """Every rank's ``x`` concatenated along dim 0 in rank order; gradients flow back to each owner.

    PyTorch's autograd-aware all-gather: its backward *sums* over ranks the
    gradient each rank computed for a slot. When every rank computes the same
    loss of the gathered batch, rank r's slot gets world_size × ∂L/∂x_r; DDP
    then averages parameter gradients over ranks, so the step is exactly the
    full batch's ∂L/∂θ — the same convention as a per-rank mean (CE).
    Every rank must pass the same shape (training drops incomplete batches).
    """
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
        warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")
        return torch.cat(all_gather(x))


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums over ranks (in float64: counts and loss sums stay exact)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one: lets all ranks stop together."""
    if not is_distributed():
        return flag
    t = torch.tensor([int(flag)], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def share_text(text: str = "") -> str:
    """Rank 0's ``text`` on every rank (others pass nothing): UTF-8 bytes, no pickling."""
    if not is_distributed():
        return text
    data = torch.tensor(list(text.encode()) if is_main() else [], dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=_comm_device())
    dist.broadcast(size, src=0)
    buf = data.to(_comm_device()) if is_main() else torch.empty(int(size.item()), dtype=torch.uint8,
                                                                 device=_comm_device())
    dist.broadcast(buf, src=0)
    return bytes(buf.cpu().tolist()).decode()


def share_json(value: Any = None) -> Any:
    """Rank 0's JSON-able ``value`` on every rank."""
    if not is_distributed():
        return value
    return json.loads(share_text(json.dumps(value) if is_main() else ""))


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give its JSON-able result to every rank.

    If it raises there, rank 0 re-raises and the others raise ``DistributedError``
    naming it, so nobody waits for an answer that never comes.
    """
    if not is_distributed():
        return fn()
    value, error = None, None
    if is_main():
        try:
            value = fn()
        except Exception as exc:  # every rank must hear about it before anyone stops
            error = exc
    reply = share_json({"value": value, "error": f"{type(error).__name__}: {error}" if error else ""})
    if error is not None:
        raise error
    if reply["error"]:
        raise DistributedError(f"rank {rank()}: rank 0 failed: {reply['error']}")
    return reply["value"]


def main_first(fn: Callable[[], T]) -> T:
    """Rank 0 runs ``fn`` first (e.g. renders a data cache), then every other rank does: no races on a cache."""
    if not is_distributed():
        return fn()
    mine: list = []
    on_main(lambda: mine.append(fn()))  # the others wait here until rank 0 is done (or failed)
    return mine[0] if mine else fn()


def share_module(module: nn.Module) -> None:
    """Overwrite every rank's parameters and buffers with rank 0's (e.g. a teacher only rank 0 read)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            buf = tensor.detach().to(_comm_device())
            dist.broadcast(buf, src=0)
            tensor.copy_(buf)


# -- data ---------------------------------------------------------------------------
def per_rank_batch(global_batch: int) -> int:
    """``schedule.batch_size`` is the global batch: each rank takes an equal share."""
    n = world_size()
    if global_batch % n:
        lower, upper = global_batch // n * n, (global_batch // n + 1) * n
        raise ValueError(
            f"schedule.batch_size is the global batch ({global_batch}) and must divide evenly among the {n} "
            f"processes of this job; use {lower or upper} or {upper}, or another number of processes"
        )
    return global_batch // n


class EvalShard(Sampler[int]):
    """Rank r evaluates samples r, r + n, r + 2n, …: every sample exactly once, no padding."""

    def __init__(self, dataset: Dataset, rank: int, world: int):
        self.indices = range(rank, len(dataset), world)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def train_sampler(dataset: Dataset, seed: int) -> DistributedSampler | None:
    """Each rank's share of a fresh permutation per epoch (``set_epoch``); None in one process.

    ``drop_last``: every rank takes the same number of samples, so collectives
    (DDP's gradient all-reduce, the global-batch gather) always pair up.
    """
    if not is_distributed():
        return None
    return DistributedSampler(dataset, world_size(), rank(), shuffle=True, seed=seed, drop_last=True)


def eval_sampler(dataset: Dataset) -> EvalShard | None:
    return EvalShard(dataset, rank(), world_size()) if is_distributed() else None
