"""Which CPU settings make the flagship's training fastest on this machine (issue 23, item 5).

The same run took ~9 min on one 2-core AMD EPYC and ~23-26 min on a 2-core
Intel Xeon. This measures, on the machine it runs on, the flagship's
distilled-student step (48 px, batch 64, RGB mobilenetv3_small_100 student,
frozen depth resnet10t teacher, SP on the last stage pair, AdamW: what
``bench/overhead.py``'s bare loop does, whose EPYC figure is in BENCHMARKS.md)
under each combination of

  * torch intra-op threads: 1 and the machine's cores;
  * memory layout: channels_last (the recipe default) or contiguous;

and, at the recipe's threads and layout, with oneDNN (mkldnn) convolutions
off and with bf16 autocast (``schedule.precision: bf16``),

plus the teacher's forward alone and the data pipeline (joint augmentation +
encoding of one RGB-D sample, what the DataLoader does per sample). Settings
alternate round by round in one process, the first round dropped as warm-up;
reported: median samples/s and the ratio to the recipe default in the same
round. Also recorded: the CPU model, flags (AVX-512, AMX) and torch's CPU
capability, so machines can be compared.
Writes bench/results/cpu_settings.{json,md}.

    .venv/bin/python bench/cpu_settings.py            # ~4 min on 2 idle cores (a Xeon)
    .venv/bin/python bench/cpu_settings.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name, describe_machine, provenance  # noqa: E402

from pldistill.data import JointTransform, ModalityView, SyntheticShapes  # noqa: E402
from pldistill.losses import sp_loss  # noqa: E402
from pldistill.models import TappedModel, build_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
BATCH, SIZE = 64, 48


def cpu_flags() -> dict:
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"]
    return {"cpu": cpu_name(), "flags": [f for f in wanted if f in flags],
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn_available": torch.backends.mkldnn.is_available()}


def make_step(channels_last: bool, bf16: bool = False):
    teacher = TappedModel(build_model("resnet10t", 1, 4), [-1]).eval()
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 4), [-1])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    teacher.to(memory_format=fmt)
    student.to(memory_format=fmt)
    opt = torch.optim.AdamW(student.parameters(), lr=0.002, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(BATCH, 3, SIZE, SIZE, generator=g).contiguous(memory_format=fmt)
    depth = torch.randn(BATCH, 1, SIZE, SIZE, generator=g).contiguous(memory_format=fmt)
    labels = torch.randint(0, 4, (BATCH,), generator=g)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                _, t_feats = teacher(depth)
            logits, s_feats = student(rgb)
        loss = F.cross_entropy(logits.float(), labels) + 3000.0 * sp_loss(t_feats[0].float(), s_feats[0].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def teacher_only():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            teacher(depth)

    return step, teacher_only


def timed(fn, steps: int) -> float:
    """samples/s of ``steps`` calls (one warm-up call first)."""
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps * BATCH / (time.perf_counter() - start)


def data_rate(samples: int) -> float:
    """samples/s of the flagship's training view: load + joint augmentation + encoding, one process."""
    data = SyntheticShapes("train", 512, image_size=SIZE, seed=0)
    transform = JointTransform({m: data.modalities[m] for m in ("rgb", "depth")}, shift=0.1, scale=0.1, seed=0)
    view = ModalityView(data, ["rgb", "depth"], transform)
    view[0]
    start = time.perf_counter()
    for i in range(samples):
        view[i % len(view)]
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the last .json only")
    args = parser.parse_args()
    if args.render:
        write_markdown(json.loads((OUT / "cpu_settings.json").read_text()), "python bench/cpu_settings.py")
        return
    rounds, steps = (2, 2) if args.quick else (args.rounds, args.steps)
    cores = os.cpu_count() or 1
    default = (cores, True, True, "fp32")
    # oneDNN off is ~10× slower everywhere measured: one row of it says so (each costs half a minute a round)
    settings = [(*s, True, "fp32") for s in itertools.product(sorted({1, cores}), (True, False))]
    settings.sort(key=lambda s: s != default)  # the recipe default first in every round
    settings.append((cores, True, False, "fp32"))
    settings.append((cores, True, True, "bf16"))  # schedule.precision: bf16 (CPU autocast; changes the numbers)
    torch.set_num_threads(cores)
    meta = describe_machine(torch)
    rates: dict[tuple, list[float]] = {s: [] for s in settings}
    teacher_rates: dict[tuple, list[float]] = {s: [] for s in settings}
    built = {(cl, p): make_step(cl, p == "bf16") for cl in (True, False) for p in ("fp32", "bf16")}
    for r in range(rounds + 1):
        for setting in settings:
            threads, channels_last, onednn, precision = setting
            torch.set_num_threads(threads)
            torch.backends.mkldnn.enabled = onednn
            step, teacher_only = built[(channels_last, precision)]
            rate, t_rate = timed(step, steps), timed(teacher_only, steps)
            if r > 0:  # round 0 warms every setting up
                rates[setting].append(rate)
                teacher_rates[setting].append(t_rate)
            print(f"round {r} {setting}: {rate:.0f} samples/s (teacher forward {t_rate:.0f})", flush=True)
    torch.set_num_threads(cores)
    torch.backends.mkldnn.enabled = True
    rows = []
    for s in settings:
        ratio = statistics.median(a / b for a, b in zip(rates[s], rates[default]))
        rows.append({"threads": s[0], "channels_last": s[1], "onednn": s[2], "precision": s[3],
                     "samples_per_s": statistics.median(rates[s]),
                     "teacher_forward_samples_per_s": statistics.median(teacher_rates[s]),
                     "x_default": ratio, "range": [min(a / b for a, b in zip(rates[s], rates[default])),
                                                   max(a / b for a, b in zip(rates[s], rates[default]))]})
    data = statistics.median(data_rate(200 if args.quick else 1000) for _ in range(3))
    result = {"meta": meta, "cpu": cpu_flags(), "rows": rows, "data_samples_per_s": data,
              "rounds": rounds, "steps_per_round": steps, "batch": BATCH, "size": SIZE}
    OUT.mkdir(exist_ok=True)
    (OUT / "cpu_settings.json").write_text(json.dumps(result, indent=1))
    write_markdown(result, "python bench/cpu_settings.py" + (" --quick" if args.quick else ""))


def _reading(result: dict) -> list[str]:
    """What the numbers say: is the recipe default the fastest here, and how this CPU compares with the
    machine bench/overhead.py last ran on (its bare loop is this step)."""
    rows = result["rows"]
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    best = max(fp32, key=lambda r: r["x_default"])
    default = next(r for r in fp32 if r["x_default"] == 1.0 and r["channels_last"] and r["onednn"])
    out = []
    if best is default or best["x_default"] < 1.03:
        out.append(f"**The recipe default is the fastest float32 setting on this CPU** (the next best, "
                   f"{_name(sorted(fp32, key=lambda r: -r['x_default'])[1])}, runs at "
                   f"{sorted(fp32, key=lambda r: -r['x_default'])[1]['x_default']:.2f}×): nothing to choose per "
                   "machine among threads, layout and oneDNN.")
    else:
        out.append(f"**{_name(best)} is {best['x_default']:.2f}× the recipe default on this CPU.**")
    bf16 = next((r for r in rows if r["precision"] == "bf16"), None)
    if bf16:
        out.append(f"bf16 autocast (`schedule.precision: bf16`, which changes the numbers, so it is never chosen "
                   f"for you) runs at {bf16['x_default']:.2f}× on this CPU.")
    overhead = OUT / "overhead.json"
    if overhead.is_file():
        try:
            other = json.loads(overhead.read_text())
            bare = next(m for m in other["rows"] if m["method"] == "bare")
            machine, rate = other["machine"], bare["samples_per_second"]
        except (ValueError, KeyError, StopIteration, TypeError):
            machine = None
        if machine and machine.split(",")[0] != result["meta"]["machine"].split(",")[0]:
            out.append(f"The same step (bench/overhead.py's bare loop) ran at {rate:.0f} samples/s on {machine}: "
                       f"{rate / default['samples_per_s']:.2f}× this CPU's {default['samples_per_s']:.0f}, "
                       "with the same settings.")
    return out


def _name(row: dict) -> str:
    return (f"{row['threads']} thread(s), {'channels_last' if row['channels_last'] else 'contiguous'}, "
            f"oneDNN {'on' if row['onednn'] else 'off'}, {row['precision']}")


def write_markdown(result: dict, command: str) -> None:
    cpu, meta, cores = result["cpu"], result["meta"], max(r["threads"] for r in result["rows"])
    lines = ["# CPU settings for the flagship's training step", "",
             *provenance(command, meta),
             f"CPU flags: {', '.join(cpu['flags']) or 'none of the listed'}; torch CPU capability "
             f"{cpu['torch_cpu_capability']}; oneDNN available: {cpu['mkldnn_available']}.", "",
             f"Distilled-student step at flagship sizes (batch {result['batch']}, {result['size']} px, "
             "mobilenetv3_small_100 on RGB, frozen resnet10t on depth, SP γ=3000 on the last stage pair, AdamW), "
             f"{result['rounds']} interleaved rounds of {result['steps_per_round']} steps after a warm-up round; "
             "× default = median over rounds of the ratio to the recipe default "
             f"({cores} threads, channels_last, oneDNN on, fp32) in the same round.", "",
             "| threads | channels_last | oneDNN | precision | samples/s (step) | teacher forward samples/s | × default "
             "| range |",
             "|---:|---|---|---|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['threads']} | {row['channels_last']} | {row['onednn']} | {row['precision']} | "
                     f"{row['samples_per_s']:.0f} | {row['teacher_forward_samples_per_s']:.0f} | "
                     f"{row['x_default']:.3f} | {row['range'][0]:.2f}–{row['range'][1]:.2f} |")
    lines += ["", f"Data pipeline (load + joint augmentation + encoding of one RGB-D sample, one process): "
              f"{result['data_samples_per_s']:.0f} samples/s.", "", *_reading(result)]
    (OUT / "cpu_settings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
