"""What do the per-epoch alignment metrics cost next to the epoch they measure?

Flagship sizes (recipes/depth_to_rgb.yaml: 4000 training samples, batch 64,
48 px, resnet10t depth teacher, mobilenetv3_small_100 RGB student with SP):
times one training epoch of the distilled student and one ``probe.measure``
(256 probe samples: student forward on every stage, CKA grid of 5 × 5 stages,
similarity correlation, mutual 10-NN, agreement), alternating, and reports the
ratio of the medians. Writes bench/results/alignment_cost.{json,md}.

    .venv/bin/python bench/alignment_cost.py        # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from pldistill.recipe import load_recipe
from pldistill.stages import Run, attach_probe
from pldistill.engine import Schedule, fit

RESULTS = Path(__file__).parent / "results"
RECIPE = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"


class _NoTracker:
    def log(self, row):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="alignment_cost")
    args = parser.parse_args()
    recipe = load_recipe(RECIPE)
    run = Run(recipe, Path("/tmp"), _NoTracker(), progress=False)
    torch.manual_seed(0)
    teacher = run.build(recipe.teacher)  # random weights: the cost does not depend on what it learned
    attach_probe(run, teacher)
    s = recipe.schedule
    student = run.build(recipe.student, [-1])
    from pldistill.losses import sp_loss
    from pldistill.terms import DistillTerm

    terms = [DistillTerm("sp", sp_loss, 3000.0, 0, 0)]
    teacher = type(teacher)(teacher.model, [-1])
    train = run.data.train_loader([recipe.student.modality, recipe.teacher.modality], 0)
    test = run.data.test_loader(recipe.student.modality)
    epoch, measure = [], []
    run.probe.measure(student)  # warm-up
    for r in range(args.rounds):
        start = time.perf_counter()
        fit(student, "rgb", train, test, schedule=Schedule(epochs=1, lr=s.lr, weight_decay=s.weight_decay,
                                                           channels_last=s.channels_last),
            device=run.device, teacher=teacher, teacher_modality="depth", terms=terms)
        epoch.append(time.perf_counter() - start)
        start = time.perf_counter()
        run.probe.measure(student)
        measure.append(time.perf_counter() - start)
        print(f"round {r + 1}/{args.rounds}: epoch {epoch[-1]:.2f} s, metrics {measure[-1]:.3f} s", file=sys.stderr)
    ratio = statistics.median(measure) / statistics.median(epoch)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(run.device) + f" ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "probe_size": recipe.logging.probe_size,
        "epoch_seconds": epoch,
        "metrics_seconds": measure,
        "ratio": ratio,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(meta, indent=2))
    text = (
        f"# Alignment metrics cost, {meta['device']}\n\n"
        f"Command: `{meta['command']}`  \nDate: {meta['date']}; torch {meta['torch']}.\n\n"
        f"| | median s |\n|---|---:|\n"
        f"| one training epoch (distilled student, SP, {len(train)} steps of {s.batch_size}) | "
        f"{statistics.median(epoch):.2f} |\n"
        f"| alignment metrics on {meta['probe_size']} probe samples | {statistics.median(measure):.3f} |\n"
        f"| **ratio** | **{100 * ratio:.1f}%** |\n"
    )
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
