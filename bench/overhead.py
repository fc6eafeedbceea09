"""pldistill's training loop against a bare PyTorch loop doing the same work (issue 11, item 1).

The distilled-student stage at flagship sizes (recipes/depth_to_rgb.yaml: 48 px,
batch 64, RGB mobilenetv3_small_100 student, depth resnet10t teacher with random
weights, 4 classes, SP γ=3000 on the last stage pair, AdamW lr 0.002 wd 0.05,
linear warm-up then cosine, channels_last) on random in-memory tensors, three ways:

  * fit:  ``pldistill.engine.fit`` itself (its loop, per-step finiteness check,
          logging sums, scheduler; progress off) fed by a DataLoader over an
          in-memory dataset yielding {"rgb", "depth", "label"} dicts, exactly
          as ``Run`` builds it (shuffle, drop_last, no workers); its time is
          fit's own ``train/seconds`` (evaluation, on 64 samples, excluded);
  * step: ``pldistill.engine.distill_step`` + AdamW + LambdaLR on batches cut
          from the same tensors with a shuffled permutation (no DataLoader,
          no logging): locates what the loop around the step costs;
  * bare: the limit, a hand-written loop: the same permutation indexing,
          timm ``forward_intermediates`` on both models (teacher in eval
          under no_grad, intermediates only), a few-line SP and CE, AdamW,
          LambdaLR.

The three start from the same student weights, share the frozen teacher and
the thread count, and alternate epoch by epoch in one process: each bare and
step epoch runs right after a fit epoch (inside fit's ``epoch_metrics``
callback, so fit keeps one optimizer and one schedule throughout). Reported:
median samples/s per method and the median over rounds of the per-round ratio
to the bare loop (round 1 is warm-up and dropped). Peak memory is measured
per method in a child process of its own (``--method``): peak RSS (the
``ru_maxrss`` high-water mark, reset after building) minus the RSS once
models and data are built, and on CUDA ``torch.cuda.max_memory_allocated``
over the allocation after building.
Writes bench/results/overhead.{json,md}.

    .venv/bin/python bench/overhead.py            # ~3 min on 2 idle CPU cores
    .venv/bin/python bench/overhead.py --quick    # smoke test, ~1 min
    .venv/bin/python bench/overhead.py --device cuda --samples 8192
    .venv/bin/python bench/overhead.py --profile  # cProfile of one fit epoch and one bare epoch
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from pldistill.losses import sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.engine import Schedule, distill_step, fit, standard_callbacks
from pldistill.terms import DistillTerm

sys.path.insert(0, str(Path(__file__).parent))
from loss_cost import sync  # noqa: E402
from machine import describe_machine, provenance  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHODS = ["fit", "step", "bare"]

# recipes/depth_to_rgb.yaml
SIZE, CLASSES, GAMMA, LR, WEIGHT_DECAY = 48, 4, 3000.0, 0.002, 0.05
STUDENT, TEACHER = "mobilenetv3_small_100", "resnet10t"


class InMemory(Dataset):
    """One sample = one dict of tensor rows, as pldistill's ModalityView yields them."""

    def __init__(self, tensors: dict[str, Tensor]):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["label"])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def make_data(samples: int, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "rgb": torch.randn(samples, 3, SIZE, SIZE, generator=g),
        "depth": torch.rand(samples, 1, SIZE, SIZE, generator=g),
        "label": torch.randint(0, CLASSES, (samples,), generator=g),
    }


def make_models(device: torch.device):
    """The student's initial weights and the frozen teacher (random weights: the cost does not depend on them)."""
    torch.manual_seed(0)
    memory = torch.channels_last
    teacher = build_model(TEACHER, 1, CLASSES).to(device, memory_format=memory).eval()
    teacher.requires_grad_(False)
    student = build_model(STUDENT, 3, CLASSES).to(device, memory_format=memory).train()
    return student, teacher


def lr_lambda(steps: int, warmup: int):
    """fit's schedule: linear warm-up, then per-step cosine decay."""
    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1)))
    return factor


def batches(data: dict[str, Tensor], batch: int, g: torch.Generator, device: torch.device):
    """Shuffled full batches cut from the in-memory tensors (what a DataLoader with drop_last yields)."""
    perm = torch.randperm(len(data["label"]), generator=g)
    for i in range(len(perm) // batch):
        idx = perm[i * batch:(i + 1) * batch]
        yield (data["rgb"][idx].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
               data["depth"][idx].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
               data["label"][idx].to(device, non_blocking=True))


def sp(teacher: Tensor, student: Tensor) -> Tensor:
    """Similarity-preserving loss in four lines."""
    t, s = teacher.flatten(1), student.flatten(1)
    gt, gs = F.normalize(t @ t.t(), dim=1), F.normalize(s @ s.t(), dim=1)
    return (gt - gs).pow(2).sum() / (t.shape[0] ** 2)


class Bare:
    """The hand-written loop: the limit pldistill's loop is measured against."""

    def __init__(self, student, teacher, data, batch, total_steps, warmup, device):
        self.student, self.teacher, self.data, self.batch, self.device = student, teacher, data, batch, device
        self.t_last = len(teacher.feature_info) - 1
        self.s_last = len(student.feature_info) - 1
        self.opt = torch.optim.AdamW(student.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(total_steps, warmup))
        self.g = torch.Generator().manual_seed(1)

    def epoch(self) -> float:
        sync(self.device)
        start = time.perf_counter()
        for x, xt, y in batches(self.data, self.batch, self.g, self.device):
            with torch.no_grad():
                t_feat = self.teacher.forward_intermediates(xt, indices=[self.t_last], intermediates_only=True)[0]
            final, (s_feat,) = self.student.forward_intermediates(x, indices=[self.s_last])
            logits = self.student.forward_head(final)
            loss = F.cross_entropy(logits, y) + GAMMA * sp(t_feat, s_feat)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
        sync(self.device)
        return time.perf_counter() - start


class Step(Bare):
    """pldistill's step function with a minimal loop around it: no DataLoader, no logging."""

    def __init__(self, student, teacher, *args):
        super().__init__(student, teacher, *args)
        self.tapped_student = TappedModel(student, [-1])
        self.tapped_teacher = TappedModel(teacher, [-1])
        self.terms = [DistillTerm("sp/t-1-s-1", sp_loss, GAMMA, 0, 0)]

    def epoch(self) -> float:
        sync(self.device)
        start = time.perf_counter()
        for x, xt, y in batches(self.data, self.batch, self.g, self.device):
            out = distill_step(self.tapped_student, x, y, self.tapped_teacher, xt, self.terms)
            self.opt.zero_grad(set_to_none=True)
            out.total.backward()
            self.opt.step()
            self.sched.step()
        sync(self.device)
        return time.perf_counter() - start


def loaders(data: dict[str, Tensor], batch: int):
    """Train and test loaders the way pldistill.stages.make_loader builds them (one process, no workers)."""
    train = DataLoader(InMemory(data), batch_size=batch, shuffle=True, drop_last=True, num_workers=0,
                       generator=torch.Generator().manual_seed(0))
    test = DataLoader(InMemory({k: v[:64] for k, v in data.items()}), batch_size=256)
    return train, test


def run_fit(student, teacher, data, batch, epochs, device, epoch_metrics=None):
    train, test = loaders(data, batch)
    terms = [DistillTerm("sp/t-1-s-1", sp_loss, GAMMA, 0, 0)]
    return fit(TappedModel(student, [-1]), "rgb", train, test,
               schedule=Schedule(epochs=epochs, lr=LR, weight_decay=WEIGHT_DECAY, channels_last=True),
               device=device, teacher=TappedModel(teacher, [-1]), teacher_modality="depth", terms=terms,
               callbacks=standard_callbacks(progress=False, epoch_metrics=epoch_metrics))


def status_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB (VmRSS: now, VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Start the peak-RSS high-water mark afresh (Linux: ``clear_refs`` 5); False where that is not possible.

    Without this the imports' peak (above what training needs at these sizes) would hide training's. The
    reset reaches the mm's high-water mark (VmHWM), which is what ``ru_maxrss`` reports for a live process,
    but not the copy ``ru_maxrss`` also keeps of it whenever a thread exits: so the peak is read from VmHWM.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kib("VmHWM") <= status_kib("VmRSS") + 1024


def memory_child(args) -> None:
    """One method alone in this process: its training-time peak memory over what building left."""
    device = torch.device(args.device)
    data = make_data(args.samples)
    student, teacher = make_models(device)
    steps = args.epochs * (args.samples // args.batch)
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss, base_cuda = status_kib("VmRSS"), torch.cuda.memory_allocated() if args.device == "cuda" else 0
    reset = reset_peak_rss()
    if args.method == "fit":
        run_fit(student, teacher, data, args.batch, args.epochs, device)
    else:
        loop = (Bare if args.method == "bare" else Step)(student, teacher, data, args.batch, steps,
                                                        args.samples // args.batch, device)
        for _ in range(args.epochs):
            loop.epoch()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = status_kib("VmHWM") if reset else maxrss
    got = {"method": args.method, "rss_after_build_mib": base_rss / 1024, "peak_reset": reset,
           "ru_maxrss_mib": maxrss / 1024, "peak_rss_mib": peak / 1024,
           "peak_rss_over_build_mib": (peak - base_rss) / 1024}
    if args.device == "cuda":
        got["cuda_after_build_mib"] = base_cuda / 2**20
        got["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        got["cuda_peak_over_build_mib"] = got["cuda_peak_mib"] - got["cuda_after_build_mib"]
    print("MEMORY " + json.dumps(got))


def memory(args, method: str) -> dict:
    command = [sys.executable, __file__, "--method", method, "--device", args.device, "--threads", str(args.threads),
               "--epochs", str(args.mem_epochs), "--samples", str(args.samples), "--batch", str(args.batch)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("MEMORY ")][-1]
    return json.loads(line[len("MEMORY "):])


def profile(args) -> None:
    """Where one fit epoch and one bare epoch spend their time (cProfile, cumulative seconds)."""
    device = torch.device(args.device)
    data = make_data(args.samples)
    student, teacher = make_models(device)
    steps = args.samples // args.batch
    bare = Bare(copy.deepcopy(student), teacher, data, args.batch, 2 * steps, steps, device)
    bare.epoch()  # warm-up
    run_fit(copy.deepcopy(student), teacher, data, args.batch, 1, device)  # warm-up
    for name, fn in [("fit", lambda: run_fit(student, teacher, data, args.batch, 1, device)), ("bare", bare.epoch)]:
        prof = cProfile.Profile()
        prof.runcall(fn)
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(35)
        print(f"==== {name} ====\n{text.getvalue()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--epochs", type=int, default=None,
                        help="interleaved rounds, each one epoch of every method (the first is warm-up)")
    parser.add_argument("--samples", type=int, default=None, help="training samples (random, in memory)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mem-epochs", type=int, default=2, help="epochs of each peak-memory child")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile one fit and one bare epoch; no results")
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)  # a peak-memory child
    parser.add_argument("--out", default="overhead", help="results file stem under bench/results/")
    args = parser.parse_args()
    args.samples = args.samples or (256 if args.quick else 2048)
    args.epochs = args.epochs or (3 if args.quick else 12)
    torch.set_num_threads(args.threads)
    if args.method:
        memory_child(args)
        return 0
    if args.profile:
        profile(args)
        return 0

    machine = describe_machine(torch)  # before the run: its load average is the machine's, not ours
    device = torch.device(args.device)
    data = make_data(args.samples)
    student0, teacher = make_models(device)
    steps = args.samples // args.batch
    total = args.epochs * steps
    loops = {"step": Step(copy.deepcopy(student0), teacher, data, args.batch, total, steps, device),
             "bare": Bare(copy.deepcopy(student0), teacher, data, args.batch, total, steps, device)}
    seconds: dict[str, list[float]] = {"step": [], "bare": []}

    def others(_model) -> dict:
        """Runs between fit's epochs (fit's epoch_metrics hook): one epoch of each other loop, alternating order."""
        order = ["bare", "step"] if len(seconds["bare"]) % 2 == 0 else ["step", "bare"]
        for name in order:
            seconds[name].append(loops[name].epoch())
        print(f"round {len(seconds['bare'])}/{args.epochs}", file=sys.stderr, flush=True)
        return {}

    result = run_fit(copy.deepcopy(student0), teacher, data, args.batch, args.epochs, device, others)
    seconds["fit"] = [row["train/seconds"] for row in result.history]
    per_epoch = steps * args.batch
    kept = {m: seconds[m][1:] for m in METHODS}  # round 1 warms up allocators and oneDNN kernels
    rows = []
    for m in METHODS:
        ratios = [b / t for t, b in zip(kept[m], kept["bare"])]  # samples/s ratio = bare time / method time
        rows.append({"method": m, "epoch_seconds": seconds[m], "median_epoch_seconds": statistics.median(kept[m]),
                     "samples_per_second": per_epoch / statistics.median(kept[m]),
                     "ratio_to_bare": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
    mem = {m: memory(args, m) for m in METHODS}
    by = {r["method"]: r for r in rows}
    ratio = by["fit"]["ratio_to_bare"]
    command = " ".join(["python bench/overhead.py", *sys.argv[1:]])
    meta = {"command": command, **machine, "device": args.device, "threads": args.threads, "quick": args.quick,
            "samples": args.samples, "batch": args.batch, "steps_per_epoch": steps, "rounds": args.epochs,
            "goal": 0.95, "rows": rows, "memory": mem}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(meta, indent=2))

    names = {"fit": "pldistill `fit` (DataLoader of dicts, logging)", "step": "`distill_step` + AdamW loop",
             "bare": "bare PyTorch loop (the limit)"}
    lines = [f"# Training-loop overhead: pldistill vs a bare PyTorch loop, {args.device}", ""]
    if args.quick:
        lines += ["**Quick mode: tiny sizes, a smoke test of the script, not a measurement.**", ""]
    lines += [
        *provenance(command, meta),
        "",
        f"Distilled-student stage at flagship sizes: {args.samples} random in-memory samples, batch {args.batch} "
        f"({steps} steps/epoch), {SIZE} px, {STUDENT} on RGB, {TEACHER} on depth (random weights, frozen), "
        f"SP γ={GAMMA:g} on the last stage pair, AdamW lr {LR} wd {WEIGHT_DECAY}, warm-up + cosine, "
        f"channels_last. {args.epochs} interleaved rounds (one epoch of each method per round), "
        "the first dropped as warm-up; samples/s from the median epoch, ratio = median over rounds of "
        "(bare epoch time / method epoch time) in the same round. fit's time is its own `train/seconds` "
        "(evaluation excluded).",
        "",
        "| method | median epoch s | samples/s | × bare (median) | range over rounds |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {names[r['method']]} | {r['median_epoch_seconds']:.3f} | {r['samples_per_second']:.0f} | "
                     f"{r['ratio_to_bare']:.3f} | {r['ratio_min']:.3f}–{r['ratio_max']:.3f} |")
    cuda = args.device == "cuda"
    cuda = args.device == "cuda"
    reset = all(mem[m]["peak_reset"] for m in METHODS)
    lines += ["", f"Peak memory, each method alone in a fresh child process ({args.mem_epochs} epochs): peak RSS "
              "(the kernel's high-water mark, " + ("VmHWM, reset once models and data were built" if reset else
                                  "`ru_maxrss`, **not resettable here: the peak may be the imports', not training's**")
              + ") minus the RSS at that point" + ("; CUDA: `max_memory_allocated` over the allocation after building"
                                                   if cuda else "") + ".", "",
              "| method | RSS after build MiB | peak RSS MiB | peak over build MiB |"
              + (" CUDA after build MiB | CUDA peak MiB | CUDA peak over build MiB |" if cuda else ""),
              "|---|---:|---:|---:|" + ("---:|---:|---:|" if cuda else "")]
    for m in METHODS:
        g = mem[m]
        line = (f"| {m} | {g['rss_after_build_mib']:.0f} | {g['peak_rss_mib']:.0f} | "
                f"{g['peak_rss_over_build_mib']:.0f} |")
        if cuda:
            line += (f" {g['cuda_after_build_mib']:.0f} | {g['cuda_peak_mib']:.0f} | "
                     f"{g['cuda_peak_over_build_mib']:.0f} |")
        lines.append(line)
    step_ratio = by["step"]["ratio_to_bare"]
    noise = noise_of(by)
    verdict = ("met" if ratio - noise >= 0.95 else f"met, but only within the noise (±{100 * noise:.1f} points)"
               if ratio >= 0.95 else "missed")
    lines += ["", f"**Goal ≥ 0.95× the bare loop: {verdict}** — pldistill's `fit` runs at {ratio:.3f}× the bare "
              f"loop's samples/s ({step_ratio:.3f}× for `distill_step` without the DataLoader and logging). "
              + explain(by, args)]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def noise_of(by: dict) -> float:
    """Round-to-round noise of fit's ratio: twice the median absolute deviation (at least 1 point)."""
    ratio = by["fit"]["ratio_to_bare"]
    rounds = [b / t for t, b in zip(by["fit"]["epoch_seconds"][1:], by["bare"]["epoch_seconds"][1:])]
    return max(2 * statistics.median(abs(r - ratio) for r in rounds), 0.01)


def explain(by: dict, args) -> str:
    """The honest sentence: is there a difference beyond the noise, and where does it come from."""
    ratio, step_ratio, noise = by["fit"]["ratio_to_bare"], by["step"]["ratio_to_bare"], noise_of(by)
    if abs(1 - ratio) <= noise:
        text = (f"The difference to the bare loop is within the round-to-round noise (±{100 * noise:.1f} points, "
                "twice the median absolute deviation of the per-round ratios): no measurable overhead.")
    else:
        loop_share = step_ratio - ratio  # what the DataLoader + logging around the step cost
        step_share = 1 - step_ratio  # what TappedModel/distill_step cost over the hand-written step
        text = (f"Of the {100 * (1 - ratio):.1f}-point gap (noise ±{100 * noise:.1f}), about "
                f"{100 * loop_share:.1f} points come from the loop around the step (DataLoader collating per-sample "
                f"dicts, per-step `.item()` logging and the finiteness check) and {100 * step_share:.1f} from the "
                "step itself (TappedModel's teacher head, loss checks); `--profile` shows where.")
    if args.quick:
        text += " Quick mode: too few steps for this to mean anything."
    if args.device == "cpu":
        text += (" On a GPU the per-step host syncs (`.item()`, the finiteness check) and the single-process "
                 "DataLoader weigh more, because the compute per step shrinks: measure there with `--device cuda`.")
    return text


if __name__ == "__main__":
    sys.exit(main())
