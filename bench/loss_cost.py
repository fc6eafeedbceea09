"""What does each distillation loss cost next to the student's own training step?

For the flagship sizes (batch 64, 48 px, resnet10t teacher on depth,
mobilenetv3_small_100 student on RGB, channels_last) it times, interleaved
round-robin so machine noise hits every case alike:

  * the student's own step: forward + CE + backward (the baseline, = 1.00),
  * each loss of recipes/compare/depth_to_rgb_losses.yaml alone: forward + backward on the tapped features of its layer
    pairs (the features are leaves, so only the loss's own work is timed),
  * whole distillation steps: frozen teacher forward + tapped student forward
    + CE + loss + backward, which is what a user actually pays,
  * SP alone at several batch sizes (its b × b matrices grow as b²).

Medians over the repetitions; ratios against the baseline measured in the
same round. Writes bench/results/loss_cost.{json,md} with the command line.

    .venv/bin/python bench/loss_cost.py            # ~2 min on 2 CPU cores
    .venv/bin/python bench/loss_cost.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from pldistill.compare import load_comparison
from pldistill.losses import on_pooled, sp_loss
from pldistill.terms import loss_function
from pldistill.models import TappedModel, build_model

RESULTS = Path(__file__).parent / "results"

COMPARISON = Path(__file__).parents[1] / "recipes" / "compare" / "depth_to_rgb_losses.yaml"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, iters: int) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--reps", type=int, default=15, help="round-robin repetitions (medians)")
    parser.add_argument("--iters", type=int, default=3, help="iterations per timing")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="loss_cost", help="results file stem under bench/results/")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    memory = torch.channels_last
    b, size = args.batch, args.size

    teacher = TappedModel(build_model("resnet10t", 1, 4), range(5)).to(device, memory_format=memory).eval()
    teacher.requires_grad_(False)
    student_net = build_model("mobilenetv3_small_100", 3, 4).to(device, memory_format=memory).train()
    rgb = torch.randn(b, 3, size, size, device=device).contiguous(memory_format=memory)
    depth = torch.randn(b, 1, size, size, device=device).contiguous(memory_format=memory)
    labels = torch.randint(0, 4, (b,), device=device)
    with torch.no_grad():
        t_logits, t_feats = teacher(depth)
        s_logits, s_feats = TappedModel(student_net, range(5))(rgb)

    def loss_fn(spec, pair):
        fn = loss_function(spec, lambda stage: t_feats[stage].shape[1], lambda stage: s_feats[stage].shape[1], pair)
        fn = fn.to(device) if isinstance(fn, torch.nn.Module) else fn
        return on_pooled(fn) if spec.pool else fn

    def terms(losses):
        """(fn, teacher stage, student stage) per term; stages None for logits (KD)."""
        return [(loss_fn(spec, p), p and p.teacher, p and p.student)
                for spec in losses for p in (spec.pairs or [None])]

    def student_step():
        student_net.zero_grad(set_to_none=True)
        F.cross_entropy(student_net(rgb), labels).backward()

    def loss_alone(losses):
        fns = terms(losses)

        def run():
            total = 0.0
            for fn, t, s in fns:
                if s is None:
                    total = total + fn(t_logits, s_logits.detach().requires_grad_())
                else:
                    total = total + fn(t_feats[t], s_feats[s].detach().requires_grad_())
            total.backward()

        return run

    def distill_step(losses):
        fns = terms(losses)
        student = TappedModel(student_net, [s for _, _, s in fns if s is not None])
        t_tapped = TappedModel(teacher.model, [t for _, t, s in fns if s is not None])

        def run():
            student_net.zero_grad(set_to_none=True)
            with torch.no_grad():
                tl, tf = t_tapped(depth)
            sl, sf = student(rgb)
            total, k = F.cross_entropy(sl, labels), 0
            for fn, _, s in fns:
                if s is None:
                    total = total + fn(tl, sl)
                else:
                    total = total + fn(tf[k], sf[k])
                    k += 1
            total.backward()

        return run

    _, _, variants = load_comparison(COMPARISON)  # the very losses the comparison trains with
    variants = {name: v.distill.losses for name, v in variants.items()}
    variants["rkd (whole map)"] = [variants["rkd"][0].model_copy(update={"pool": False})]
    cases = {"student step (CE)": student_step}
    cases.update({f"loss {v}": loss_alone(losses) for v, losses in variants.items()})
    cases["teacher forward"] = lambda: teacher(depth)
    cases.update({f"step {v}": distill_step(losses) for v, losses in variants.items()})
    sp_sizes = [32, 64, 128, 256]
    sp_inputs = {n: (torch.randn(n, *t_feats[-1].shape[1:], device=device),
                     torch.randn(n, *s_feats[-1].shape[1:], device=device)) for n in sp_sizes}
    for n in sp_sizes:
        t, s = sp_inputs[n]
        cases[f"sp alone b={n}"] = (lambda t=t, s=s: sp_loss(t, s.requires_grad_()).backward())

    for fn in cases.values():  # warm-up: allocator, oneDNN kernel selection
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for rep in range(args.reps):
        for name, fn in cases.items():
            times[name].append(timed(fn, device, args.iters))
        print(f"round {rep + 1}/{args.reps}", file=sys.stderr, flush=True)

    base = statistics.median(times["student step (CE)"])
    rows = []
    for name, ts in times.items():
        # per-round ratio against the baseline of the same round, then the median: robust to drift
        ratios = [t / c for t, c in zip(ts, times["student step (CE)"])]
        rows.append({"case": name, "ms": 1000 * statistics.median(ts), "ratio": statistics.median(ratios)})
    command = " ".join([Path(sys.executable).name, *sys.argv])
    meta = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch": b,
        "image_size": size,
        "teacher": "resnet10t (depth, 1 ch)",
        "student": "mobilenetv3_small_100 (rgb, 3 ch)",
        "reps": args.reps,
        "iters": args.iters,
        "baseline_ms": 1000 * base,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    lines = [
        f"# Loss cost, batch {b}, {size} px, {meta['device']}, {meta['threads']} threads",
        "",
        f"Command: `{command}`  ",
        f"Date: {meta['date']}; torch {meta['torch']}; {args.reps} interleaved rounds × {args.iters} iterations, "
        "medians; ratio = case / student step of the same round.",
        "",
        "| case | ms | × student step |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['case']} | {r['ms']:.2f} | {r['ratio']:.3f} |" for r in rows]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
