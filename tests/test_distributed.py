"""Multi-process training on CPU (gloo, 2 processes): the same numbers as one process, one writer, no hangs.

Workers are started with torch.multiprocessing.spawn and meet through a file
store (no ports to collide); whole jobs go through ``torchrun --standalone``,
which picks a free port itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import yaml
from torch import nn

from random_pairs import RandomPairs

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
REPO = Path(__file__).resolve().parents[1]


def _entry(rank: int, world: int, store: str, worker, args) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        worker(rank, world, *args)
    finally:
        dist.destroy_process_group()
    # torch 2.14 sometimes aborts at interpreter exit after DDP (see distributed.exit_job): leave at once
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _spawn(worker, world: int, tmp_path: Path, *args) -> None:
    store = tmp_path / f"store-{uuid.uuid4().hex}"
    mp.spawn(_entry, args=(world, str(store), worker, args), nprocs=world, join=True)


def _load(path: Path):
    return torch.load(path, weights_only=True)


# -- (a) global SP: 2 ranks × b/2 == 1 process × b ----------------------------------------------
B, GAMMA = 8, 10.0


class _Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(12, 6), nn.Linear(6, 3)

    def forward(self, x):
        feats = self.body(x)
        return self.head(feats), feats


def _problem():
    """A student, inputs, labels and fixed teacher features: the same on every rank."""
    torch.manual_seed(0)
    return _Student(), torch.randn(B, 12), torch.randint(0, 3, (B,)), torch.randn(B, 5)


def _step(forward, model, x, y, t, sp) -> dict:
    """CE (a per-process mean, as in training) + γ·SP, backward; the SP value and every gradient."""
    model.zero_grad(set_to_none=True)
    logits, feats = forward(x)
    feats.retain_grad()
    value = sp(t, feats)
    (F.cross_entropy(logits, y) + GAMMA * value).backward()
    return {"sp": value.detach(), "feat_grad": feats.grad,
            **{f"param/{k}": p.grad.clone() for k, p in model.named_parameters()}}


def _sp_worker(rank, world, out):
    from torch.nn.parallel import DistributedDataParallel

    from pldistill.losses import across_ranks, sp_loss

    model, x, y, t = _problem()
    ddp = DistributedDataParallel(model)  # its hooks average the parameter gradients over ranks
    rows = slice(rank * B // world, (rank + 1) * B // world)
    results = {scope: _step(ddp, model, x[rows], y[rows], t[rows], sp)
               for scope, sp in (("global", across_ranks(sp_loss)), ("local", sp_loss))}
    torch.save(results, Path(out) / f"rank{rank}.pt")


def test_global_sp_on_two_ranks_gives_the_full_batch_loss_and_gradients(tmp_path):
    from pldistill.losses import sp_loss

    model, x, y, t = _problem()
    reference = _step(model, model, x, y, t, sp_loss)  # one process, the whole batch
    _spawn(_sp_worker, 2, tmp_path, str(tmp_path))
    for r in range(2):
        got = _load(tmp_path / f"rank{r}.pt")
        rows = slice(r * B // 2, (r + 1) * B // 2)
        g = got["global"]
        torch.testing.assert_close(g["sp"], reference["sp"])  # the loss of the full batch, on every rank
        for key in [k for k in reference if k.startswith("param/")]:
            torch.testing.assert_close(g[key], reference[key], msg=key)  # after DDP's average: the full batch's
        # each rank's own features get world_size × their full-batch gradient (the per-process-mean convention
        # CE follows too); DDP's division by world_size turns that into the full-batch parameter gradient
        torch.testing.assert_close(g["feat_grad"], 2 * reference["feat_grad"][rows])
        local = got["local"]  # the paper's loss at b/2: another number, another gradient
        assert not torch.allclose(local["sp"], reference["sp"], rtol=1e-3)
        assert not torch.allclose(local["param/body.weight"], reference["param/body.weight"], rtol=1e-3)


# -- (b) a 2-process fit == a 1-process fit on the same global batches ------------------------------
N_TRAIN, N_TEST, GLOBAL_BATCH, SAMPLER_SEED = 48, 15, 8, 3



def _fit_models():
    """Tiny timm models without BatchNorm (GroupNorm, LayerNorm: per sample), so DDP can match exactly."""
    from pldistill.models import TappedModel, build_model
    from pldistill.engine import seed_everything

    seed_everything(0)
    teacher = TappedModel(build_model("test_efficientnet_gn", 1, 3, None, 16), [-1])
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    return teacher, student


def _fit(train_loader, test_loader, record: list):
    from pldistill.losses import across_ranks, sp_loss
    from pldistill.engine import Schedule, fit
    from pldistill.terms import DistillTerm

    def sp(t, s):  # the global SP, each step's value written down
        value = across_ranks(sp_loss)(t, s)
        record.append(value.item())
        return value

    teacher, student = _fit_models()
    result = fit(student, "rgb", train_loader, test_loader, schedule=Schedule(epochs=2, lr=3e-3, weight_decay=0.01),
                 device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
                 terms=[DistillTerm("sp", sp, GAMMA, 0, 0)])
    return {"history": result.history, "sp_steps": record, "state": student.model.state_dict()}


def _fit_worker(rank, world, out):
    from torch.utils.data import DataLoader

    from pldistill import distributed

    train, test = RandomPairs(N_TRAIN, seed=0), RandomPairs(N_TEST, seed=1)
    train_loader = DataLoader(train, batch_size=distributed.per_rank_batch(GLOBAL_BATCH),
                              sampler=distributed.train_sampler(train, SAMPLER_SEED), drop_last=True)
    test_loader = DataLoader(test, batch_size=4, sampler=distributed.eval_sampler(test))
    got = _fit(train_loader, test_loader, [])
    got["train_batches"] = len(train_loader)
    torch.save(got, Path(out) / f"fit{rank}.pt")


def test_two_process_fit_matches_one_process_fit_on_the_same_global_batches(tmp_path):
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    train, test = RandomPairs(N_TRAIN, seed=0), RandomPairs(N_TEST, seed=1)
    # one process, the permutation DistributedSampler draws for every rank, whole global batches
    order = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=SAMPLER_SEED, drop_last=True)
    reference = _fit(DataLoader(train, batch_size=GLOBAL_BATCH, sampler=order, drop_last=True),
                     DataLoader(test, batch_size=4), [])
    _spawn(_fit_worker, 2, tmp_path, str(tmp_path))
    ranks = [_load(tmp_path / f"fit{r}.pt") for r in range(2)]
    assert ranks[0]["train_batches"] == N_TRAIN // GLOBAL_BATCH  # each rank: half of every global batch
    assert len(reference["sp_steps"]) == 2 * N_TRAIN // GLOBAL_BATCH
    for got in ranks:
        # the distillation loss of every step (measured: within 4e-7 relative, float32 summation order)
        torch.testing.assert_close(got["sp_steps"], reference["sp_steps"], rtol=1e-5, atol=1e-7)
        for mine, ref in zip(got["history"], reference["history"]):  # epoch means summed over ranks
            for key in ("train/loss", "train/terms/ce", "train/terms/sp", "train/acc", "val/acc", "lr"):
                assert mine[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-7), key
        for key, value in reference["state"].items():  # 12 AdamW steps later: the same weights
            torch.testing.assert_close(got["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)
        # each of the 15 test samples counted exactly once (a padding sampler would count 16: k/16 ≠ j/15)
        correct = got["history"][-1]["val/acc"] * N_TEST
        assert correct == pytest.approx(round(correct)) and 0 < correct < N_TEST
    for key, value in ranks[0]["state"].items():  # DDP keeps the ranks identical
        assert torch.equal(ranks[1]["state"][key], value), key


# -- (c) a torchrun job: rank 0 alone writes the run folder ------------------------------------------
TINY = {
    "name": "tiny_ddp",
    "data": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 30, "image_size": 16},
    "teacher": {"model": "test_efficientnet_gn", "modality": "depth"},
    "student": {"model": "test_efficientnet_ln", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}],
                            "scope": "global"}]},
    "schedule": {"epochs": 2, "batch_size": 16, "lr": 0.003},
    "logging": {"probe_size": 16, "probe_knn": 3},
}


def _torchrun(args: list[str], tmp_path: Path, timeout: float, **env) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run([*TORCHRUN, "--nproc_per_node=2", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
                                                **env})
    return proc, time.perf_counter() - started


def test_torchrun_job_trains_every_stage_and_only_rank_zero_writes(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    proc, _ = _torchrun(["-m", "pldistill", "run", str(recipe), "--runs-dir", "runs", "--quiet"], tmp_path, 240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "tiny_ddp").iterdir()  # one folder, not one per rank
    results = json.loads((run_dir / "results.json").read_text())
    assert results["distributed"] == {"world_size": 2, "backend": "gloo"}
    for name in ("recipe.yaml", "results.md", "report.html", "checkpoints/student_distilled.pt",
                 "control/checkpoints/student_distilled.pt", "alignment/student_distilled.npz"):
        assert (run_dir / name).is_file(), name
    assert results["students"]["distilled"]["losses"] == ["ce", "sp/t-1-s-1/global"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["teacher/epoch"] for r in rows if "teacher/epoch" in r]
    assert epochs == [1, 2]  # each epoch logged once: one writer
    assert any("student_distilled/align/cka/t4-s4" in r or any(k.startswith("student_distilled/align/") for k in r)
               for r in rows)  # the probe ran (on rank 0)
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert proc.stdout.count("# tiny_ddp (seed 0)") == 1  # rank 0 prints the table; rank 1 says nothing
    assert not list(tmp_path.glob("runs/*/*/**/*.tmp"))
    teacher = results["teacher"]["history"]
    assert all(0 <= row["val/acc"] <= 1 for row in teacher)


# -- (d) an error, or silence, in one rank ends the job -----------------------------------------------
FAILING = """
import time
from pldistill import distributed
with distributed.process_group("cpu"):
    distributed.all_reduce_sum([1.0])
    if distributed.rank() == 1:
        {what}
    distributed.all_reduce_sum([1.0])  # rank 0 waits here for rank 1
"""


def test_an_exception_in_one_rank_ends_the_job_with_its_error(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(FAILING.format(what='raise ValueError("rank 1 broke on purpose")'))
    proc, seconds = _torchrun([str(script)], tmp_path, 120, PLDISTILL_DIST_TIMEOUT="60")
    assert proc.returncode != 0
    assert "rank 1 broke on purpose" in proc.stdout + proc.stderr
    assert seconds < 60  # torchrun stops the waiting rank at once; the 60 s timeout never had to fire


def test_a_rank_that_stops_answering_times_out_instead_of_hanging(tmp_path):
    script = tmp_path / "silent.py"
    script.write_text(FAILING.format(what="time.sleep(120)"))
    proc, seconds = _torchrun([str(script)], tmp_path, 120, PLDISTILL_DIST_TIMEOUT="3")
    assert proc.returncode != 0
    assert "rank 0: lost contact with another process of this job" in proc.stderr
    assert "did not answer within 3 s" in proc.stderr
    assert seconds < 60


# -- recipe rules ------------------------------------------------------------------------------------
def test_a_global_batch_that_does_not_split_evenly_is_refused_with_the_fix(monkeypatch):
    from pldistill import distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ValueError, match=r"global batch \(64\) and must divide evenly among the 3 processes.*"
                                         r"use 63 or 66"):
        distributed.per_rank_batch(64)
    assert distributed.per_rank_batch(66) == 22


def test_scope_global_is_for_relational_losses_only():
    from pldistill.recipe import loss_entry

    assert loss_entry(dict(name="cc", weight=1.0, pairs=[{"teacher": -1, "student": -1}], scope="global")).scope == "global"
    with pytest.raises(ValueError, match="'scope: global' applies to the relational losses.*'kd' is a mean"):
        loss_entry(dict(name="kd", weight=1.0, scope="global"))
