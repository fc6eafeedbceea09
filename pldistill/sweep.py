"""Sweeps: a recipe × a grid of overrides × seeds, each cell an ordinary run folder, one table.

    pldistill sweep recipes/depth_to_rgb.yaml --grid distill.loss=sp,kd,sp+kd --seeds 3

Every cell (grid point × seed) is validated as a full recipe before anything
trains. The sweep folder's name is a hash of the composed recipe, the fixed
overrides and the grid, so running the same command again finds it and skips
finished runs (an interrupted run is resumed); adding seeds adds runs.
Teachers are cached by their hash, so a grid over student-side keys trains
each seed's teacher once.

    runs/<recipe>/sweep-<hash>/
        sweep.yaml                the command's recipe, overrides, grid and seeds
        <cell>/seed<N>/           ordinary run folders (results.json, report.html, wandb/ …)
        sweep.json                every run's numbers and mean ± std per cell
        sweep.md                  the table
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import yaml

from .recipe import Recipe, RecipeError, compose_recipe, load_recipe
from .report import health_lines


@dataclass(frozen=True)
class Cell:
    """One grid point: its overrides and a folder-safe label."""

    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        return ", ".join(self.overrides) or "recipe as is"

    @property
    def slug(self) -> str:
        if not self.overrides:
            return "base"
        parts = [f"{o.split('=', 1)[0].split('.')[-1]}-{o.split('=', 1)[1]}" for o in self.overrides]
        return re.sub(r"[^A-Za-z0-9_.+-]+", "_", "_".join(parts))[:80]


def grid_cells(grid: Sequence[str]) -> list[Cell]:
    """``["a.b=1,2", "c=x,y"]`` → the 4 cells of the cartesian product, in order."""
    axes = []
    for axis in grid:
        key, sep, values = axis.partition("=")
        options = [v.strip() for v in values.split(",")] if sep else []
        if not key or not options or any(not v for v in options):
            raise RecipeError(f"--grid {axis!r}: a grid axis is key=value1,value2,… e.g. distill.loss=sp,kd,sp+kd")
        if len(set(options)) != len(options):
            raise RecipeError(f"--grid {axis!r}: a value appears twice")
        axes.append([f"{key}={v}" for v in options])
    keys = [a.partition("=")[0] for a in grid]
    if len(set(keys)) != len(keys):
        raise RecipeError(f"--grid: the key(s) {sorted({k for k in keys if keys.count(k) > 1})} appear on two axes")
    return [Cell(tuple(combo)) for combo in itertools.product(*axes)]


def sweep_id(recipe_path: Path, overrides: Sequence[str], grid: Sequence[str]) -> str:
    """Stable across invocations of the same command; changes when the recipe or the grid does."""
    raw, _ = compose_recipe(recipe_path)
    keyed = {"recipe": raw, "overrides": list(overrides), "grid": list(grid)}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _stats(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {"mean": mean, "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def _cell_numbers(results: dict) -> dict[str, float | None]:
    """The numbers a sweep table reports for one finished run."""
    teacher = results["teacher"]
    out = {
        "teacher": teacher["test_acc"],
        "teacher_on_data": teacher.get("target_test_acc"),
        "scratch": results["students"]["scratch"]["test_acc"],
        "distilled": results["students"]["distilled"]["test_acc"],
        "gain": results["distill_gain"],
    }
    control = results.get("control")
    if control:
        out["control"] = control["student"]["test_acc"]
        out["privileged_gain"] = control["privileged_gain"]
    return out


def run_sweep(
    recipe_path: str | Path,
    grid: Sequence[str] = (),
    overrides: Sequence[str] = (),
    seeds: int = 3,
    runs_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    """Run every cell × seed not finished yet; write sweep.json and sweep.md; return (folder, summary)."""
    from .run import run_recipe  # looked up at call time: tests count the runs it starts
    from .stages import ResumeError, recipe_differences

    recipe_path = Path(recipe_path)
    if seeds < 1:
        raise RecipeError("--seeds must be at least 1")
    cells = grid_cells(grid)
    base = load_recipe(recipe_path, overrides)
    seed_list = [base.seed + k for k in range(seeds)]
    plan: list[tuple[Cell, int, Recipe]] = []
    for cell in cells:  # validate everything before training anything
        for seed in seed_list:
            plan.append((cell, seed, load_recipe(recipe_path, [*overrides, *cell.overrides, f"seed={seed}"])))
    from .data.check import checked_datasets

    for data in {r.data.model_dump_json(): r.data for _, _, r in plan}.values():  # each data once, before folders
        checked_datasets(data, progress)
    slugs = [c.slug for c in cells]
    if len(set(slugs)) != len(slugs):  # two cells would share a folder: fall back to numbered folders
        cells_dir = {c: f"{i:02d}-{c.slug}"[:80] for i, c in enumerate(cells)}
    else:
        cells_dir = {c: c.slug for c in cells}
    name = f"sweep-{sweep_id(recipe_path, overrides, grid)}"
    root = Path(runs_dir or base.logging.runs_dir) / base.name / name
    root.mkdir(parents=True, exist_ok=True)
    group = f"{base.name}-{name}"
    (root / "sweep.yaml").write_text(yaml.safe_dump(
        {"recipe": str(recipe_path), "overrides": list(overrides), "grid": list(grid), "seeds": seed_list,
         "wandb_group": group}, sort_keys=False))
    started = time.perf_counter()
    runs: list[dict] = []
    for i, (cell, seed, recipe) in enumerate(plan, 1):
        run_dir = root / cells_dir[cell] / f"seed{seed}"
        head = f"[sweep {i}/{len(plan)}] {cell.label} seed {seed}"
        finished = run_dir / "results.json"
        if finished.exists():
            changed = recipe_differences(run_dir, recipe.to_dict())
            if changed:
                raise ResumeError(f"{run_dir}: finished with a different recipe ({', '.join(changed[:5])} differ); "
                                  "move that folder away to re-run it")
            print(f"{head}: finished earlier, skipped ({run_dir})")
            results = json.loads(finished.read_text())
        else:
            resume = run_dir if (run_dir / "recipe.yaml").exists() else None
            print(f"{head}: {'resuming' if resume else 'running'} in {run_dir}")
            out = run_recipe(recipe, recipe_path, progress=progress, resume=resume,
                             run_dir=None if resume else run_dir, group=group)
            results = out.results
        runs.append({"cell": cell.label, "overrides": list(cell.overrides), "seed": seed, "run_dir": str(run_dir),
                     "seconds": results["seconds_total"], **_cell_numbers(results),
                     "health": health_lines(results)})
    summary = summarise(runs, cells, group, base)
    summary.update(command=_command(recipe_path, grid, overrides, seeds), wall_seconds=time.perf_counter() - started,
                   host={"platform": platform.platform(), "torch": torch.__version__,
                         "threads": torch.get_num_threads(), "device": _device(runs)})
    (root / "sweep.json").write_text(json.dumps(summary, indent=2))
    (root / "sweep.md").write_text(sweep_table(summary))
    return root, summary


def _device(runs: list[dict]) -> str:
    devices = {json.loads((Path(r["run_dir"]) / "results.json").read_text())["device"] for r in runs}
    return ", ".join(sorted(devices))


def _command(recipe_path: Path, grid, overrides, seeds: int) -> str:
    parts = ["pldistill sweep", str(recipe_path), *overrides, *(f"--grid {g}" for g in grid), f"--seeds {seeds}"]
    return " ".join(parts)


def summarise(runs: list[dict], cells: list[Cell], group: str, base: Recipe) -> dict:
    """Mean ± std per cell over its seeds; the gains are paired (same seed) differences."""
    rows = []
    for cell in cells:
        mine = [r for r in runs if r["cell"] == cell.label]
        row = {"cell": cell.label, "seeds": [r["seed"] for r in mine]}
        for key in ("teacher", "teacher_on_data", "scratch", "distilled", "gain", "control", "privileged_gain"):
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                row[key] = _stats(values)
        rows.append(row)
    return {"recipe": base.name, "wandb_group": group, "rows": rows, "runs": runs}


def _cell(stat: dict | None, signed: bool = False) -> str:
    if stat is None:
        return ""
    sign = "+" if signed else ""
    return f"{100 * stat['mean']:{sign}.1f} ± {100 * stat['std']:.1f}"


def sweep_table(summary: dict) -> str:
    rows = summary["rows"]
    domain = any("teacher_on_data" in r for r in rows)
    control = any("control" in r for r in rows)
    head = ["cell", "seeds", "teacher"] + (["teacher on this data"] if domain else []) + [
        "scratch student", "distilled student", "gain (paired)"] + (
        ["control student", "privileged gain"] if control else [])
    lines = [
        f"# sweep of {summary['recipe']}",
        "",
        f"Command: `{summary['command']}`  ",
        f"W&B group: `{summary['wandb_group']}` (offline runs: `wandb sync` each run's wandb/ folder)  ",
        f"Machine: {summary['host']['platform']}, torch {summary['host']['torch']}, "
        f"{summary['host']['threads']} threads, device {summary['host']['device']}; "
        f"wall time of this invocation {summary['wall_seconds'] / 60:.1f} min.",
        "",
        "Test accuracy %, mean ± std over seeds; gains are paired by seed (distilled − scratch"
        + (", distilled − control)." if control else ")."),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for r in rows:
        cells = [r["cell"], " ".join(map(str, r["seeds"])), _cell(r.get("teacher"))]
        cells += [_cell(r.get("teacher_on_data"))] if domain else []
        cells += [_cell(r.get("scratch")), _cell(r.get("distilled")), _cell(r.get("gain"), signed=True)]
        cells += [_cell(r.get("control")), _cell(r.get("privileged_gain"), signed=True)] if control else []
        lines.append("| " + " | ".join(cells) + " |")
    if domain:
        lines += ["", "The teacher was trained on teacher.data (its source domain): 'teacher' is its accuracy "
                      "there, 'teacher on this data' its accuracy on the recipe's data without adaptation."]
    health = [f"- {r['cell']} (seed {r['seed']}): {m}" for r in summary.get("runs", []) for m in r.get("health", [])]
    if health:  # distillation that hurt a student is said under the table, never only in the run folders
        lines += ["", "Health check:", "", *health]
    lines.append("")
    return "\n".join(lines)
