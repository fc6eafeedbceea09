"""Scaling curves of the distilled-student stage: epoch time vs samples and vs batch size (issue 11, item 5).

Flagship models (recipes/depth_to_rgb.yaml: 48 px, RGB mobilenetv3_small_100
student, depth resnet10t teacher with random weights, SP γ=3000 on the last
stage pair, AdamW, channels_last) on random in-memory tensors, trained through
``pldistill.engine.fit`` (one epoch per call, time = fit's own
``train/seconds``, evaluation excluded); three measurements, each interleaved
round-robin so machine noise hits every point alike, medians over rounds:

  1. time per epoch vs number of training samples at batch 64, with a
     least-squares line (fixed cost per epoch + cost per sample);
  2. time per sample vs batch size at a fixed number of samples, for three
     variants: CE only (the scratch student), CE + teacher forward (the
     distilled stage with the SP term replaced by a zero-cost one) and
     CE + SP; the SP share of a step is (CE+SP − CE+teacher) / CE+SP, taken
     per round;
  3. the SP loss alone, forward + backward on last-stage-sized features
     (teacher 512×2×2, student 576×2×2), vs b up to 8192, next to the
     network's forward/backward for the same batch (teacher forward without
     grad + student forward + CE + backward): where the b × b matrices
     (O(b²·d) work against the network's O(b)) start to matter.

Writes bench/results/scaling.{json,md,png}.

    .venv/bin/python bench/scaling.py             # ~10 min on 2 idle CPU cores, ~10 GB peak RAM (b = 8192)
    .venv/bin/python bench/scaling.py --quick     # smoke test, ~2 min
    .venv/bin/python bench/scaling.py --device cuda --loss-batches 256 1024 4096 16384 32768
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from pldistill.losses import sp_loss
from pldistill.models import TappedModel, feature_shapes
from pldistill.engine import Schedule, fit
from pldistill.terms import DistillTerm

sys.path.insert(0, str(Path(__file__).parent))
from loss_cost import timed  # noqa: E402
from machine import describe_machine, provenance  # noqa: E402
from overhead import (  # noqa: E402
    GAMMA, LR, SIZE, STUDENT, TEACHER, WEIGHT_DECAY, loaders, make_data, make_models,
)

RESULTS = Path(__file__).parent / "results"
VARIANTS = ["ce", "ce+teacher", "ce+sp"]
LABELS = {"ce": "CE only (scratch student)", "ce+teacher": "CE + teacher forward (no SP)", "ce+sp": "CE + SP"}


def no_loss(teacher: Tensor, student: Tensor) -> Tensor:
    """A zero-cost term: the distilled step with the teacher's forward and the student's tap, without SP."""
    return student.new_zeros(())


class Stage:
    """The student stage through pldistill's fit, one epoch per call, any variant and batch size."""

    def __init__(self, device: torch.device):
        self.device = device
        student, teacher = make_models(device)
        self.student, self.tapped = TappedModel(student, []), TappedModel(student, [-1])
        self.teacher = TappedModel(teacher, [-1])
        self.terms = {"ce": [], "ce+teacher": [DistillTerm("none", no_loss, 0.0, 0, 0)],
                      "ce+sp": [DistillTerm("sp/t-1-s-1", sp_loss, GAMMA, 0, 0)]}

    def epoch(self, variant: str, data: dict[str, Tensor], batch: int) -> tuple[float, int]:
        """(seconds of training, samples trained) of one epoch of ``variant``."""
        train, test = loaders(data, batch)
        terms = self.terms[variant]
        result = fit(self.tapped if terms else self.student, "rgb", train, test,
                     schedule=Schedule(epochs=1, lr=LR, weight_decay=WEIGHT_DECAY, channels_last=True),
                     device=self.device, teacher=self.teacher if terms else None, teacher_modality="depth",
                     terms=terms)
        return result.history[0]["train/seconds"], len(train) * batch


def subset(data: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    return {k: v[:n] for k, v in data.items()}


def line_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def vs_samples(stage: Stage, data, sizes: list[int], batch: int, reps: int) -> list[dict]:
    stage.epoch("ce+sp", subset(data, 2 * batch), batch)  # warm-up: allocator and oneDNN kernels for this shape
    times: dict[int, list[float]] = {n: [] for n in sizes}
    trained = {}
    for rep in range(reps):
        for n in sizes:
            seconds, trained[n] = stage.epoch("ce+sp", subset(data, n), batch)
            times[n].append(seconds)
        print(f"samples: round {rep + 1}/{reps}", file=sys.stderr, flush=True)
    return [{"samples": n, "trained_per_epoch": trained[n], "epoch_seconds": times[n],
             "median_epoch_seconds": statistics.median(times[n]),
             "samples_per_second": trained[n] / statistics.median(times[n])} for n in sizes]


def vs_batch(stage: Stage, data, batches: list[int], reps: int) -> list[dict]:
    for b in batches:
        for v in VARIANTS:
            stage.epoch(v, subset(data, 2 * b), b)  # warm-up for this shape
    per_sample: dict[tuple[int, str], list[float]] = {(b, v): [] for b in batches for v in VARIANTS}
    for rep in range(reps):
        for b in batches:
            for v in VARIANTS:
                seconds, trained = stage.epoch(v, data, b)
                per_sample[b, v].append(seconds / trained)
        print(f"batch: round {rep + 1}/{reps}", file=sys.stderr, flush=True)
    rows = []
    for b in batches:
        sp, teacher = per_sample[b, "ce+sp"], per_sample[b, "ce+teacher"]
        rows.append({"batch": b, "trained_per_epoch": (len(data["label"]) // b) * b,
                     **{f"{v}_us_per_sample": 1e6 * statistics.median(per_sample[b, v]) for v in VARIANTS},
                     **{f"{v}_us_per_sample_rounds": [1e6 * t for t in per_sample[b, v]] for v in VARIANTS},
                     "sp_share": statistics.median([(s - t) / s for s, t in zip(sp, teacher)])})
    return rows


def loss_vs_network(device: torch.device, batches: list[int], reps: int, iters: int) -> list[dict]:
    """SP forward+backward alone vs teacher forward + student forward/backward, at each batch size b."""
    student, teacher = make_models(device)
    student_t, teacher_t = TappedModel(student, [-1]), TappedModel(teacher, [-1])
    t_shape, s_shape = feature_shapes(TEACHER, 1, SIZE)[-1], feature_shapes(STUDENT, 3, SIZE)[-1]
    memory = torch.channels_last
    sp = sp_loss

    def network(b: int):
        g = torch.Generator().manual_seed(b)
        rgb = torch.randn(b, 3, SIZE, SIZE, generator=g).to(device).contiguous(memory_format=memory)
        depth = torch.rand(b, 1, SIZE, SIZE, generator=g).to(device).contiguous(memory_format=memory)
        labels = torch.randint(0, 4, (b,), generator=g).to(device)

        def run():
            student.zero_grad(set_to_none=True)
            with torch.no_grad():
                teacher_t(depth)
            logits, _ = student_t(rgb)
            F.cross_entropy(logits, labels).backward()

        return run

    def loss(b: int):
        t = torch.randn(b, *t_shape, device=device).contiguous(memory_format=memory)
        s = torch.randn(b, *s_shape, device=device).contiguous(memory_format=memory).requires_grad_()

        def run():
            s.grad = None
            sp(t, s).backward()

        return run

    times = {(b, k): [] for b in batches for k in ("network", "sp")}
    for b in batches:  # one batch size at a time: the largest hold GBs of activations / b×b matrices
        cases = {"network": network(b), "sp": loss(b)}
        for fn in cases.values():
            fn()  # warm-up
        for _ in range(reps):
            for k, fn in cases.items():
                times[b, k].append(timed(fn, device, iters))
        del cases
        print(f"loss vs network: b={b} done", file=sys.stderr, flush=True)
    rows = []
    for b in batches:
        net, spt = times[b, "network"], times[b, "sp"]
        rows.append({"batch": b, "network_ms": 1000 * statistics.median(net), "sp_ms": 1000 * statistics.median(spt),
                     "network_ms_rounds": [1000 * t for t in net], "sp_ms_rounds": [1000 * t for t in spt],
                     "sp_over_network": statistics.median([s / n for s, n in zip(spt, net)])})
    return rows


def crossover(rows: list[dict]) -> tuple[float, bool]:
    """Batch size where SP alone costs as much as the network: measured (interpolated) or extrapolated
    (network ∝ b, SP ∝ b², so sp/network ∝ b beyond the largest b)."""
    for lo, hi in zip(rows, rows[1:]):
        if lo["sp_over_network"] < 1 <= hi["sp_over_network"]:
            f = (1 - lo["sp_over_network"]) / (hi["sp_over_network"] - lo["sp_over_network"])
            return lo["batch"] + f * (hi["batch"] - lo["batch"]), False
    if rows[0]["sp_over_network"] >= 1:
        return float(rows[0]["batch"]), False
    last = rows[-1]
    return last["batch"] / last["sp_over_network"], True


def ticks(ax, xs: list[int]) -> None:
    """Plain numbers at the measured points of a log x axis."""
    from matplotlib.ticker import NullLocator

    ax.set_xticks(xs, [str(x) for x in xs])
    ax.xaxis.set_minor_locator(NullLocator())


def plot(path: Path, samples, batch_rows, loss_rows, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    ns = [r["trained_per_epoch"] for r in samples]
    secs = [r["median_epoch_seconds"] for r in samples]
    a, k = line_fit(ns, secs)
    ax.plot(ns, secs, "o-", label="measured (CE + SP, batch 64)")
    ax.plot(ns, [a + k * n for n in ns], ":", color="gray", label=f"{1000 * a:.0f} ms + {1e6 * k:.0f} µs × N")
    ax.set(xscale="log", yscale="log", xlabel="training samples per epoch", ylabel="seconds per epoch",
           title="(a) epoch time vs samples")
    ticks(ax, ns)
    ax.legend(fontsize=8)
    ax = axes[1]
    bs = [r["batch"] for r in batch_rows]
    for v in VARIANTS:
        ax.plot(bs, [r[f"{v}_us_per_sample"] for r in batch_rows], "o-", label=LABELS[v])
    for r in batch_rows:
        ax.annotate(f"{100 * r['sp_share']:.0f}%", (r["batch"], r["ce+sp_us_per_sample"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7)
    ax.set(xscale="log", xlabel="batch size", ylabel="µs per training sample",
           title="(b) cost per sample vs batch (labels: SP share)")
    ticks(ax, bs)
    ax.legend(fontsize=8)
    ax = axes[2]
    lb = [r["batch"] for r in loss_rows]
    ax.plot(lb, [r["network_ms"] for r in loss_rows], "o-", label="network: teacher fwd + student fwd/bwd")
    ax.plot(lb, [r["sp_ms"] for r in loss_rows], "s-", label="SP loss alone: fwd + bwd (labels: × network)")
    for r in loss_rows:
        ax.annotate(f"{r['sp_over_network']:.2f}×", (r["batch"], r["sp_ms"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="batch size b", ylabel="ms per step",
           title="(c) SP's b × b matrices vs the network")
    ticks(ax, lb)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds (medians)")
    parser.add_argument("--samples", type=int, nargs="+", default=None, help="(1) training set sizes, batch 64")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="(2) batch sizes")
    parser.add_argument("--batch-samples", type=int, default=None, help="(2) training samples per epoch")
    parser.add_argument("--loss-batches", type=int, nargs="+", default=None, help="(3) batch sizes b")
    parser.add_argument("--out", default="scaling", help="results file stem under bench/results/")
    args = parser.parse_args()
    q = args.quick
    reps = args.reps or (2 if q else 3)
    sizes = args.samples or ([128, 256, 512] if q else [500, 1000, 2000, 4000, 8000])
    batches = args.batches or ([16, 64, 256] if q else [16, 32, 64, 128, 256, 512, 1024])
    batch_samples = args.batch_samples or (512 if q else 4096)
    loss_batches = args.loss_batches or ([64, 256, 1024] if q else [256, 512, 1024, 2048, 4096, 8192])
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = describe_machine(torch)  # before the run: its load average is the machine's, not ours

    data = make_data(max(max(sizes), batch_samples, 2 * max(batches)))
    stage = Stage(device)
    samples = vs_samples(stage, data, sizes, 64, reps)
    batch_rows = vs_batch(stage, subset(data, batch_samples), batches, reps)
    del stage
    loss_rows = loss_vs_network(device, loss_batches, reps, 1 if not q else 2)
    per_epoch, per_sample = line_fit([r["trained_per_epoch"] for r in samples],
                                     [r["median_epoch_seconds"] for r in samples])
    cross, extrapolated = crossover(loss_rows)

    command = " ".join(["python bench/scaling.py", *sys.argv[1:]])
    meta = {"command": command, **machine, "device": args.device, "threads": args.threads, "quick": q, "reps": reps,
            "vs_samples": {"batch": 64, "rows": samples, "fixed_seconds_per_epoch": per_epoch,
                           "seconds_per_sample": per_sample},
            "vs_batch": {"samples": batch_samples, "rows": batch_rows},
            "loss_vs_network": {"teacher_features": feature_shapes(TEACHER, 1, SIZE)[-1],
                                "student_features": feature_shapes(STUDENT, 3, SIZE)[-1], "rows": loss_rows,
                                "sp_equals_network_at_batch": cross, "crossover_extrapolated": extrapolated}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(meta, indent=2))
    title = f"pldistill student stage scaling, {meta['machine']}, torch {meta['torch']}"
    plot(RESULTS / f"{args.out}.png", samples, batch_rows, loss_rows, title + (" — QUICK (smoke test)" if q else ""))

    lines = [f"# Scaling of the distilled-student stage, {args.device}", ""]
    if q:
        lines += ["**Quick mode: tiny sizes, a smoke test of the script, not a measurement.**", ""]
    lines += [
        *provenance(command, meta),
        "",
        f"Flagship models: {SIZE} px, {STUDENT} on RGB, {TEACHER} on depth (random weights, frozen), SP γ={GAMMA:g} "
        f"on the last stage pair, AdamW lr {LR} wd {WEIGHT_DECAY}, channels_last; random in-memory data through "
        f"`pldistill.engine.fit` (DataLoader of dicts), time = fit's `train/seconds` (evaluation excluded). "
        f"{reps} interleaved rounds, medians. Figure: `bench/results/{args.out}.png`.",
        "",
        "## (1) Epoch time vs training samples (CE + SP, batch 64)",
        "",
        "| samples | trained / epoch (drop_last) | median epoch s | samples/s |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['samples']} | {r['trained_per_epoch']} | {r['median_epoch_seconds']:.3f} | "
              f"{r['samples_per_second']:.0f} |" for r in samples]
    smallest = min(r["median_epoch_seconds"] for r in samples)
    fixed = (f"the fixed part is {abs(per_epoch) / smallest:.0%} of the smallest epoch, i.e. no per-epoch cost worth "
             "the name: time is linear in N" if abs(per_epoch) < 0.05 * smallest else
             f"a fixed per-epoch part of {1000 * per_epoch:.0f} ms ({per_epoch / smallest:.0%} of the smallest epoch)"
             + (", negative, so noise rather than a cost" if per_epoch < 0 else ""))
    lines += ["", f"Least squares: epoch ≈ {1000 * per_epoch:.0f} ms + {1e6 * per_sample:.0f} µs × samples; "
              f"{fixed}. Every call here rebuilds the DataLoader iterator and allocates the optimizer state afresh.",
              "", f"## (2) Cost per sample vs batch size ({batch_samples} samples per epoch)", "",
              "| batch | " + " | ".join(f"{LABELS[v]} µs/sample" for v in VARIANTS) + " | SP share of the step |",
              "|---:|" + "---:|" * (len(VARIANTS) + 1)]
    lines += [f"| {r['batch']} | " + " | ".join(f"{r[f'{v}_us_per_sample']:.0f}" for v in VARIANTS)
              + f" | {100 * r['sp_share']:.1f}% |" for r in batch_rows]
    lines += ["", "SP share = (CE+SP − CE+teacher) / CE+SP, per round, median: what the SP term adds to a step once "
              "the teacher forward and the student tap are paid for.",
              "", "## (3) SP loss alone vs the network, per step", "",
              f"Features of the last stage pair: teacher {meta['loss_vs_network']['teacher_features']}, student "
              f"{meta['loss_vs_network']['student_features']}; network = teacher forward (no grad) + student "
              "forward + CE + backward, no optimizer step.", "",
              "| b | network ms | SP fwd+bwd ms | SP / network |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['network_ms']:.1f} | {r['sp_ms']:.1f} | {r['sp_over_network']:.3f} |"
              for r in loss_rows]
    flagship = next((r for r in batch_rows if r["batch"] == 64), None)
    ten = next((r["batch"] for r in loss_rows if r["sp_over_network"] >= 0.1), None)
    sentence = ("The network's work grows as b, the b × b matrices' as b² · d, so once the matrix products are "
                "large enough to run at full speed SP's cost relative to the network grows about ∝ b. "
                + (f"SP alone reaches 10% of the network at b = {ten}" if ten else
                   f"SP alone stays under 10% of the network up to b = {loss_rows[-1]['batch']}"))
    sentence += (f"; it would cost as much as the network at b ≈ {cross:.0f}"
                 + (" (extrapolated: SP/network ∝ b beyond the largest b measured)." if extrapolated else "."))
    if flagship:
        sentence += f" At the flagship batch of 64 the SP term is {100 * flagship['sp_share']:.1f}% of a step."
    if q:
        sentence += " Quick mode: too few steps for these numbers to mean anything."
    lines += ["", sentence]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
