"""Is the packed reader ever the bottleneck? Loader samples/s against the student's training rate.

Packs the flagship train split (4000 synthetic samples, 48 px, rgb + depth),
then times a DataLoader over the packed file exactly as distillation reads it
(both modalities, the flagship's joint augmentation, batch 64) with 0, 1 and 2
workers, against one distillation step's consumption (teacher forward +
student forward/backward with SP, batch 64, channels_last) measured in the
same process, with and without the augmentation (to separate the reader's
cost from albumentations'). Memory: the main process's peak (VmHWM) and its
growth while reading, next to the packed file's size — the reader must not
hold the file.
Writes bench/results/packed_loader.{json,md}.

    .venv/bin/python bench/packed_loader.py       # ~1-2 min on 2 CPU cores
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).parent / "results"
RECIPE = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"
BATCHES = 60


def loader_rate(packed: str, workers: int, augment: bool) -> dict:
    """Run in a fresh process: its memory high-water mark then belongs to this configuration alone."""
    code = f"""
import json, time, torch
from torch.utils.data import DataLoader
from pldistill.recipe import load_recipe
from pldistill.data import JointTransform, ModalityView
from pldistill.data.packed import PackedDataset

def hwm():  # this process's peak resident memory (VmHWM, reset by exec unlike ru_maxrss), MB
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) / 1024

r = load_recipe({str(RECIPE)!r})
ds = PackedDataset({packed!r})
t = JointTransform({{m: ds.modalities[m] for m in ("rgb", "depth")}}, seed=0, **r.data.augment.model_dump())
dl = DataLoader(ModalityView(ds, ["rgb", "depth"], t if {augment} else None), batch_size=64, shuffle=True,
                drop_last=True, num_workers={workers}, persistent_workers={workers} > 0)
it = iter(dl); next(it)  # start-up (worker spawn) is not throughput
before = hwm()
start = time.perf_counter(); n = 0
for _ in range({BATCHES}):
    n += len(next(it)["label"])
seconds = time.perf_counter() - start
print(json.dumps({{"samples_per_s": n / seconds, "hwm_mb": hwm(), "hwm_growth_mb": hwm() - before}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def training_rate(recipe) -> float:
    from pldistill.losses import sp_loss
    from pldistill.models import TappedModel, build_model

    torch.manual_seed(0)
    cl = torch.channels_last
    teacher = TappedModel(build_model("resnet10t", 1, 4), [-1]).to(memory_format=cl).eval()
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 4), [-1]).to(memory_format=cl).train()
    rgb = torch.randn(64, 3, 48, 48).contiguous(memory_format=cl)
    depth = torch.randn(64, 1, 48, 48).contiguous(memory_format=cl)
    labels = torch.randint(0, 4, (64,))
    times = []
    for i in range(12):
        start = time.perf_counter()
        with torch.no_grad():
            _, tf = teacher(depth)
        logits, sf = student(rgb)
        (F.cross_entropy(logits, labels) + 3000 * sp_loss(tf[0], sf[0])).backward()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 64 / statistics.median(times)


def main() -> int:
    import argparse

    # no options: parsing still answers --help (without it, --help ran the whole benchmark and overwrote results)
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    from pldistill.data.packed import pack
    from pldistill.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    train, _ = recipe.data.build()
    with tempfile.TemporaryDirectory() as tmp:
        packed = str(pack(train, Path(tmp) / "train.h5", progress=False))
        size_mb = Path(packed).stat().st_size / 2**20
        train_rate = training_rate(recipe)
        rows = []
        for augment in (False, True):
            for workers in (0, 1, 2):
                r = loader_rate(packed, workers, augment)
                rows.append({"augment": augment, "workers": workers, **r, "x_training": r["samples_per_s"] / train_rate})
                print(f"augment {augment} workers {workers}: {r['samples_per_s']:.0f} samples/s", file=sys.stderr)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
        "packed_file_mb": size_mb,
        "training_samples_per_s": train_rate,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "packed_loader.json").write_text(json.dumps(meta, indent=2))
    lines = [
        "# Packed reader vs training consumption (flagship sizes: 4000 samples, 48 px, batch 64)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; {meta['device']}; packed file {size_mb:.1f} MB (lzf).",
        "",
        f"One distillation step (teacher forward + student forward/backward, SP) consumes "
        f"**{train_rate:.0f} samples/s**.",
        "",
        "| joint augmentation | loader workers | samples/s (rgb + depth) | × training rate | main-process peak MB "
        "| growth while reading MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {'yes' if r['augment'] else 'no (reader + decode only)'} | {r['workers']} | {r['samples_per_s']:.0f} "
              f"| {r['x_training']:.1f} | {r['hwm_mb']:.0f} | {r['hwm_growth_mb']:.1f} |" for r in rows]
    (RESULTS / "packed_loader.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
