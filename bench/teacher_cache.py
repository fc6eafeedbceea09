"""Teacher-output cache: student-stage speed and accuracy, live teacher vs cached (distill.teacher_cache).

The flagship recipe (recipes/depth_to_rgb.yaml) with its cached depth teacher,
SP γ=3000 on the last stage. The cache needs augmentation off, so three
students per seed, all from the same teacher and initial weights:

    augmented, live   the recipe as shipped (hflip + shift + scale), teacher run every step
    plain, live       data.augment off, teacher run every step
    plain, cached     data.augment off, teacher outputs read from the cache file

Speed: interleaved rounds of one training epoch of "plain, live" and "plain,
cached" in this process (training time only, evaluation excluded), median
samples/s and their ratio; the one-off cache build is timed separately.
Accuracy: each student trained for the recipe's full schedule, per seed.
Writes bench/results/teacher_cache.{json,md}.

    .venv/bin/python bench/teacher_cache.py                  # ~20 min on 2 CPU cores (3 seeds)
    .venv/bin/python bench/teacher_cache.py --seeds 0 --rounds 3   # ~7 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine, provenance  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RECIPE = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"
PLAIN = ["data.augment.hflip=false", "data.augment.shift=0", "data.augment.scale=0"]
ROWS = {"augmented, live": [], "plain, live": PLAIN, "plain, cached": [*PLAIN, "distill.teacher_cache=true"]}


def _runs(seed: int, root: Path, epochs: int | None = None) -> dict:
    """One Run per row, sharing the data and the (augmented recipe's, cached) teacher."""
    from pldistill.recipe import load_recipe
    from pldistill.stages import Run
    from pldistill.tracking import NullTracker

    extra = [f"seed={seed}", "logging.probe_size=0", "distill.same_modality_control=false"]
    if epochs is not None:  # the teacher keeps its full schedule (and so its cache entry)
        extra += [f"schedule.epochs={epochs}", f"schedule.teacher_epochs={load_recipe(RECIPE).schedule.epochs}"]
    runs, datasets = {}, None
    for row, overrides in ROWS.items():
        recipe = load_recipe(RECIPE, [*extra, *overrides])
        runs[row] = Run(recipe, root / row.replace(", ", "_"), NullTracker(), progress=False, datasets=datasets)
        datasets = datasets or (runs[row].train_set, runs[row].test_set)
    return runs


def speed(seed: int, rounds: int, root: Path) -> dict:
    """Interleaved one-epoch students: live vs cached teacher, same teacher, same data order."""
    from pldistill.models import TappedModel
    from pldistill.stages import obtain_teacher, outputs_cache, train_student

    runs = _runs(seed, root, epochs=1)
    teacher, _ = obtain_teacher(runs["augmented, live"])
    started = time.perf_counter()
    outputs_cache(runs["plain, cached"], TappedModel(teacher.model, [-1]), seed + 1)
    build_seconds = time.perf_counter() - started
    seconds: dict[str, list[float]] = {"plain, live": [], "plain, cached": []}
    for i in range(rounds):
        for row in seconds:
            result = train_student(runs[row], f"round{i}", teacher)
            seconds[row].append(result["history"][0]["train/seconds"])
    samples = len(runs["plain, live"].data.train_loader(["rgb"], 0)) * runs["plain, live"].recipe.schedule.batch_size
    out = {row: {"epoch_seconds": s, "median_epoch_seconds": statistics.median(s),
                 "samples_per_second": samples / statistics.median(s)} for row, s in seconds.items()}
    return {"rows": out, "samples_per_epoch": samples, "train_samples": len(runs["plain, live"].train_set),
            "cache_build_seconds": build_seconds,
            "speedup": out["plain, cached"]["samples_per_second"] / out["plain, live"]["samples_per_second"]}


def accuracy(seed: int, root: Path) -> dict:
    from pldistill.stages import obtain_teacher, train_student

    runs = _runs(seed, root)
    teacher, info = obtain_teacher(runs["augmented, live"])
    out = {"teacher": info["test_acc"]}
    for row, run in runs.items():
        result = train_student(run, "distilled", teacher)
        out[row] = {"test_acc": result["test_acc"], "seconds": result["seconds"],
                    "train_seconds": sum(h["train/seconds"] for h in result["history"])}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved one-epoch rounds per row (speed)")
    args = parser.parse_args()
    import torch

    machine = describe_machine(torch)  # before the run: its load average is the machine's, not ours
    with tempfile.TemporaryDirectory(prefix="cache-bench-") as tmp:
        fast = speed(args.seeds[0], args.rounds, Path(tmp) / "speed")
        print(f"speed: cached/live = {fast['speedup']:.2f}x, cache built in {fast['cache_build_seconds']:.1f} s",
              flush=True)
        acc = {}
        for seed in args.seeds:
            acc[seed] = accuracy(seed, Path(tmp) / f"seed{seed}")
            print(f"seed {seed}: " + ", ".join(f"{k} {v['test_acc'] if isinstance(v, dict) else v:.3f}"
                                               for k, v in acc[seed].items()), flush=True)
    command = " ".join(["python bench/teacher_cache.py", *sys.argv[1:]])
    results = {"command": command, **machine, "speed": fast, "accuracy": acc}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "teacher_cache.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "teacher_cache.md").write_text(markdown(results))
    print((RESULTS / "teacher_cache.md").read_text())
    return 0


def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def markdown(r: dict) -> str:
    fast, acc = r["speed"], r["accuracy"]
    seeds = list(acc)
    live, cached = fast["rows"]["plain, live"], fast["rows"]["plain, cached"]
    lines = [
        "# Teacher-output cache: live teacher vs `distill.teacher_cache: true`",
        "",
        *provenance(r["command"], r),
        "",
        "Flagship recipe (depth_to_rgb: 4000 × 48 px, resnet10t depth teacher, mobilenetv3_small_100 RGB student, "
        "SP γ=3000 last stage, batch 64, 16 epochs); the same teacher for every row.",
        "",
        f"## Speed of the student stage ({len(live['epoch_seconds'])} interleaved one-epoch rounds, seed "
        f"{seeds[0]}, training time only)",
        "",
        "| row | median epoch s | samples/s | vs live |",
        "|---|---:|---:|---:|",
        f"| plain, live teacher | {live['median_epoch_seconds']:.2f} | {live['samples_per_second']:.0f} | 1.00× |",
        f"| plain, cached teacher | {cached['median_epoch_seconds']:.2f} | {cached['samples_per_second']:.0f} "
        f"| {fast['speedup']:.2f}× |",
        "",
        f"Building the cache (one teacher pass over the {fast['train_samples']} training samples, written to HDF5): "
        f"{fast['cache_build_seconds']:.1f} s, i.e. "
        f"{fast['cache_build_seconds'] / live['median_epoch_seconds']:.2f} of one live epoch.",
        "",
        f"## Accuracy ({len(seeds)} seed(s), full schedule; RGB test accuracy %, mean ± std)",
        "",
        "| row | test acc | per seed | student training s (sum of epochs, mean) |",
        "|---|---:|---|---:|",
    ]
    for row in ROWS:
        accs = [acc[s][row]["test_acc"] for s in seeds]
        secs = statistics.mean(acc[s][row]["train_seconds"] for s in seeds)
        lines.append(f"| {row} | {_mean_std(accs)} | {' / '.join(f'{100 * a:.1f}' for a in accs)} | {secs:.0f} |")
    diff = [acc[s]["plain, cached"]["test_acc"] - acc[s]["plain, live"]["test_acc"] for s in seeds]
    aug = [acc[s]["augmented, live"]["test_acc"] - acc[s]["plain, cached"]["test_acc"] for s in seeds]
    lines += [
        "",
        f"Teacher (depth): {_mean_std([acc[s]['teacher'] for s in seeds])}.",
        "",
        f"Cached − live without augmentation (paired): {_mean_std(diff)} points — the cache itself changes "
        "nothing but float rounding.",
        f"Augmented live − cached (paired): {_mean_std(aug)} points — what giving up augmentation costs here.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
