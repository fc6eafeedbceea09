"""Cached teacher views under augmentation: student-stage speed and accuracy against the live teacher.

Per data set (the flagship depth_to_rgb, and cifar10_hires_to_lowres when its
archive is found), with the recipe's augmentation on, four students from the
same teacher and initial weights:

    live          the teacher runs every step on a fresh augmentation (the default)
    cached K=1    one augmented view per sample, cached once; every epoch shows the student that view
    cached K=4    four views per sample; each epoch draws one of them
    cached K=16   sixteen

Speed: interleaved rounds of live, cached K=4, and cached K=4 with the file
evicted from the page cache before every batch's read (what a cache far larger
than free memory costs): the second of two epochs (the first carries the weight
calibration's extra gradient passes), training time only, median samples/s. Accuracy:
the full schedule, per seed. Also: the cache's size per sample and view, its
build time per K, and the float16 cache's error on the loss terms against the
live float32 teacher. Results accumulate in bench/results/teacher_cache.json
(an interrupted run resumes where it stopped); the markdown is rewritten each time.

    .venv/bin/python bench/teacher_cache.py                          # both data sets, 3 seeds (~2.5 h, 2 cores)
    .venv/bin/python bench/teacher_cache.py --data depth_to_rgb --seeds 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine, provenance  # noqa: E402

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
WORK = ROOT / ".cache" / "pldistill" / "bench" / "teacher_cache"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DATA = {
    "depth_to_rgb": {"recipe": "depth_to_rgb.yaml", "overrides": []},
    "cifar10_hires_to_lowres": {"recipe": "cifar10_hires_to_lowres.yaml",
                                "overrides": [f"data.source.root={CIFAR}"], "needs": CIFAR},
}
CACHED = ["distill.teacher_cache=true"]
ROWS = {"live": [], **{f"cached K={k}": [*CACHED, f"distill.teacher_cache_views={k}"] for k in (1, 4, 16)}}
SPEED_ROWS = ["live", "cached K=4", "cached K=4, evicted"]


def _run(data: str, row: str, seed: int, root: Path, epochs: int | None = None, datasets=None):
    from pldistill.recipe import load_recipe
    from pldistill.stages import Run
    from pldistill.tracking import NullTracker

    spec = DATA[data]
    recipe_path = ROOT / "recipes" / spec["recipe"]
    extra = [*spec["overrides"], f"seed={seed}", "logging.probe_size=0", "distill.same_modality_control=false"]
    if epochs is not None:  # the teacher keeps its full schedule (and so its cache entry)
        full = load_recipe(recipe_path, spec["overrides"]).schedule.epochs
        extra += [f"schedule.epochs={epochs}", f"schedule.teacher_epochs={full}"]
    recipe = load_recipe(recipe_path, [*extra, *ROWS[row.split(",")[0]]])
    return Run(recipe, root / row.replace(", ", "_").replace(" ", "_").replace("=", ""), NullTracker(),
               progress=False, datasets=datasets)


@contextlib.contextmanager
def evicted_reads():
    """Every cache lookup reads from disk: the mapped pages are dropped and the file's page cache emptied first."""
    from pldistill import teacher_cache

    lookup = teacher_cache.TeacherCache.lookup

    def cold(self, index, *args, **kwargs):
        for array in self._arrays.values():
            raw = getattr(array, "_mmap", None)
            if raw is not None:
                raw.madvise(mmap.MADV_DONTNEED)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return lookup(self, index, *args, **kwargs)

    teacher_cache.TeacherCache.lookup = cold
    try:
        yield
    finally:
        teacher_cache.TeacherCache.lookup = lookup


def speed(data: str, seed: int, rounds: int, root: Path) -> dict:
    """Interleaved students: live, cached (page cache warm) and cached with every read from disk.

    Each trains two epochs and the second is timed: the first carries the extra gradient
    passes of the weight calibration (``distill.calibration_steps``), the same for every row.
    """
    from pldistill.stages import obtain_teacher, train_student

    shutil.rmtree(root, ignore_errors=True)  # an earlier run's finished rounds would be reused, not timed
    runs, datasets = {}, None
    for row in SPEED_ROWS:
        runs[row] = _run(data, row, seed, root, epochs=2, datasets=datasets)
        datasets = datasets or (runs[row].train_set, runs[row].test_set)
    teacher, _ = obtain_teacher(runs["live"])
    seconds: dict[str, list[float]] = {row: [] for row in SPEED_ROWS}
    for i in range(rounds):
        for row in SPEED_ROWS:
            with evicted_reads() if "evicted" in row else contextlib.nullcontext():
                result = train_student(runs[row], f"round{i}", teacher)
            seconds[row].append(result["history"][1]["train/seconds"])  # the first carries the calibration
    samples = len(runs["live"].data.train_loader([runs["live"].recipe.student.modality], 0)) \
        * runs["live"].recipe.schedule.batch_size
    out = {row: {"epoch_seconds": s, "median_epoch_seconds": statistics.median(s),
                 "samples_per_second": samples / statistics.median(s)} for row, s in seconds.items()}
    return {"rows": out, "samples_per_epoch": samples}


def float16_error(run, teacher, cache, batches: int = 8) -> dict:
    """Largest relative error of the loss terms: float16 cached teacher outputs vs the live float32 teacher."""
    import torch

    from pldistill.data.views import ReplayedViews
    from pldistill.engine import seed_everything
    from pldistill.engine.step import distill_step
    from pldistill.terms import build_terms
    from pldistill.stages.student import student_channels

    r = run.recipe
    built = build_terms(r.distill.losses, lambda s: teacher.model.feature_info[s]["num_chs"],
                        lambda s: student_channels(run, s))
    seed_everything(r.seed + 1)
    student = run.build(r.student, built.student_stages).eval()
    t_tapped = run.tap(teacher.model, built.teacher_stages).eval()
    t_view = ReplayedViews(run.data.train_view([r.teacher.modality], r.seed + 1), cache.replay)
    s_view = ReplayedViews(run.data.train_view([r.student.modality], r.seed + 1), cache.replay)
    g = torch.Generator().manual_seed(0)
    worst: dict[str, float] = {}
    with torch.no_grad():
        for _ in range(batches):
            rows = torch.randint(len(t_view), (r.schedule.batch_size,), generator=g)
            x_t = torch.stack([t_view[int(i)][r.teacher.modality] for i in rows])
            x_s = torch.stack([s_view[int(i)][r.student.modality] for i in rows])
            labels = torch.tensor([s_view[int(i)]["label"] for i in rows])
            live = distill_step(student, x_s, labels, terms=built.terms, teacher_outputs=t_tapped(x_t)).raw
            cached = distill_step(student, x_s, labels, terms=built.terms,
                                  teacher_outputs=cache.lookup(rows, torch.device("cpu"))).raw
            for term in built.terms:
                a, b = live[term.key].item(), cached[term.key].item()
                worst[term.key] = max(worst.get(term.key, 0.0), abs(a - b) / max(abs(a), 1e-12))
    return worst


def accuracy(data: str, seed: int, root: Path, done: dict, save, machine: str) -> dict:
    from pldistill.models import TappedModel
    from pldistill.stages import obtain_teacher, outputs_cache, train_student

    out = done.setdefault(str(seed), {"machine": machine})  # a seed's rows run on one machine: resumed elsewhere, rerun
    if out.get("machine") != machine and not all(row in out for row in ROWS):
        print(f"{data} seed {seed}: started on {out.get('machine')}, this is {machine}: its rows run again here")
        out.clear()
        out["machine"] = machine
    datasets = None
    for row in ROWS:
        if row in out:
            continue
        run = _run(data, row, seed, root, datasets=datasets)
        datasets = datasets or (run.train_set, run.test_set)
        teacher, info = obtain_teacher(run)
        out["teacher"] = info["test_acc"]
        entry: dict = {}
        if row != "live":
            from pldistill.terms import build_terms
            from pldistill.stages.student import student_channels

            built = build_terms(run.recipe.distill.losses, lambda s: teacher.model.feature_info[s]["num_chs"],
                                lambda s: student_channels(run, s))
            started = time.perf_counter()
            cache = outputs_cache(run, TappedModel(teacher.model, built.teacher_stages), run.recipe.seed + 1)
            entry["build_seconds"] = time.perf_counter() - started
            entry["file_bytes"] = cache.path.stat().st_size
            entry["bytes_per_sample_view"] = entry["file_bytes"] / (len(cache) * cache.replay.count)
            if row == "cached K=4" and seed == 0:
                entry["float16_error"] = float16_error(run, teacher, cache)
        result = train_student(run, "distilled", teacher)
        entry.update(test_acc=result["test_acc"], train_seconds=sum(h["train/seconds"] for h in result["history"]))
        out[row] = entry
        save()
        print(f"{data} seed {seed} {row}: {100 * entry['test_acc']:.1f}%, "
              f"{entry['train_seconds']:.0f} s training", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved one-epoch rounds per row (speed)")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results in the JSON file")
    args = parser.parse_args()
    import torch

    path = RESULTS / "teacher_cache.json"
    results = {} if args.fresh or not path.exists() else json.loads(path.read_text())
    if "data" not in results:  # the former (augmentation-off) benchmark's file: replaced
        results = {"data": {}}
    results.update(describe_machine(torch))
    machine = results["machine"]
    command = " ".join(["python bench/teacher_cache.py", *sys.argv[1:]])
    commands = results.get("commands", [])  # each invocation that added results
    results["commands"] = commands if commands[-1:] == [command] else [*commands, command]
    results["command"] = "; then ".join(results["commands"])

    def save():
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=2))
        (RESULTS / "teacher_cache.md").write_text(markdown(results))

    for data in args.data:
        needs = DATA[data].get("needs")
        if needs is not None and not Path(needs).exists():
            print(f"{data}: skipped ({needs} not found)")
            continue
        entry = results["data"].setdefault(data, {})
        if "speed" not in entry:
            entry["speed"] = speed(data, args.seeds[0], args.rounds, WORK / data / "speed")
            entry["speed"]["machine"] = machine
            save()
            rows = entry["speed"]["rows"]
            print(f"{data} speed: " + ", ".join(f"{k} {v['samples_per_second']:.0f}/s" for k, v in rows.items()),
                  flush=True)
        for seed in args.seeds:
            accuracy(data, seed, WORK / data / f"seed{seed}", entry.setdefault("accuracy", {}), save, machine)
    save()
    print((RESULTS / "teacher_cache.md").read_text())
    return 0


def _mean_std(values: list[float], scale: float = 100.0) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.1f} ± {scale * sd:.1f}"


def _size(n: float) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MB"


def markdown(r: dict) -> str:
    lines = [
        "# Teacher-output cache under augmentation: cached views against the live teacher",
        "",
        *provenance(r["command"], r),
        "",
        "Each data set with its recipe's augmentation on (hflip, shift, scale) and its recipe's losses; every "
        "row distils from the same teacher from the same initial student weights. *live*: the teacher runs "
        "every step on a fresh augmentation (the default). *cached K*: the teacher ran once on K replayed views "
        "of each sample (float16), and each epoch the student sees one of them, drawn afresh "
        "(`distill.teacher_cache: true`, `distill.teacher_cache_views: K`). What the cache removes from a "
        "student step is the teacher's forward pass and, where the teacher reads another modality (depth), "
        "that modality's loading and augmentation; on resolution pairs both sides read the same image, so only "
        "the forward pass goes, and the speed-up is the teacher's share of the step.",
        *[f"\n{note}" for note in r.get("notes", [])],
    ]
    for data, entry in r.get("data", {}).items():
        lines += ["", f"## {data}", ""]
        fast = entry.get("speed")
        if fast:
            live = fast["rows"]["live"]["samples_per_second"]
            lines += [f"Speed of the student stage on {fast.get('machine', r['machine'])} "
                      f"({len(fast['rows']['live']['epoch_seconds'])} interleaved "
                      "rounds, seed 0; each round's second epoch, training time only; the first epoch's 10 "
                      "calibration steps of the relative weight are left out, the same for every row):", "",
                      "| row | median epoch s | samples/s | vs live |", "|---|---:|---:|---:|"]
            for row, v in fast["rows"].items():
                lines.append(f"| {row} | {v['median_epoch_seconds']:.2f} | {v['samples_per_second']:.0f} "
                             f"| {v['samples_per_second'] / live:.2f}× |")
            lines += ["", "*evicted*: before every batch the file's pages are dropped from the process and the "
                      "page cache (madvise and posix_fadvise DONTNEED), so each read comes from disk, as when "
                      "the file is far larger than free memory."]
        acc = entry.get("accuracy", {})
        seeds = [s for s in acc if all(row in acc[s] for row in ROWS)]
        if not seeds:
            continue
        lines += ["", f"Accuracy ({len(seeds)} seed(s): {', '.join(seeds)}; full schedule; test accuracy %, "
                  "mean ± std; paired difference to live):", "",
                  "| row | test acc | per seed | − live (paired) | student training s (mean) | cache build s "
                  "| cache file |", "|---|---:|---|---:|---:|---:|---:|"]
        machines = {}
        for s in seeds:
            machines.setdefault(acc[s].get("machine", r["machine"]), []).append(s)
        if len(machines) > 1:
            lines[-4] += (" Seeds ran on different machines (" + "; ".join(
                f"{', '.join(ss)} on {m}" for m, ss in machines.items()) + "): each seed's rows on one machine, so "
                "the paired differences hold; the training and build seconds mix machines, and the first seed's "
                "are one machine's.")
        live_accs = [acc[s]["live"]["test_acc"] for s in seeds]
        live_sd = statistics.stdev(live_accs) if len(live_accs) > 1 else 0.0
        within = []
        for row in ROWS:
            accs = [acc[s][row]["test_acc"] for s in seeds]
            diff = [a - b for a, b in zip(accs, live_accs)]
            secs = statistics.mean(acc[s][row]["train_seconds"] for s in seeds)
            build = acc[seeds[0]][row].get("build_seconds")
            size = acc[seeds[0]][row].get("file_bytes")
            if row != "live" and abs(statistics.mean(accs) - statistics.mean(live_accs)) <= live_sd:
                within.append(row)
            lines.append(f"| {row} | {_mean_std(accs)} | {' / '.join(f'{100 * a:.1f}' for a in accs)} | "
                         f"{'' if row == 'live' else _mean_std(diff)} | {secs:.0f} | "
                         f"{'' if build is None else f'{build:.0f}'} | {'' if size is None else _size(size)} |")
        teacher = [acc[s]["teacher"] for s in seeds]
        per_view = next((acc[seeds[0]][row]["bytes_per_sample_view"] for row in ROWS if row != "live"), None)
        lines += ["", f"Teacher: {_mean_std(teacher)}. Disk per training sample: {_size(per_view)} per view "
                  "(float16 logits and tapped stages), × K." if per_view else ""]
        if len(seeds) < 2:
            lines.append("One seed so far: no spread to judge the differences against.")
        elif within:
            lines.append(f"Within one standard deviation of live ({100 * live_sd:.1f} points): {', '.join(within)}.")
        else:
            lines.append(f"No cached row is within one standard deviation of live ({100 * live_sd:.1f} points).")
        if data == "depth_to_rgb" and fast and len(seeds) >= 3:
            ratio = fast["rows"]["cached K=4"]["samples_per_second"] / fast["rows"]["live"]["samples_per_second"]
            met = ratio >= 1.4 and bool(within)
            lines.append(f"Goal (≥ 1.4× the live teacher's samples/s, some K within one standard deviation of live, "
                         f"3 seeds): {'met' if met else 'not met'} — {ratio:.2f}×, {', '.join(within) or 'no K'}.")
        err = acc.get("0", {}).get("cached K=4", {}).get("float16_error")
        if err:
            lines.append("float16 against float32 on the loss terms (8 batches of K=4 views, student at its initial "
                         "weights; largest relative error of each term): "
                         + ", ".join(f"{k} {v:.1e}" for k, v in err.items()) + ".")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
