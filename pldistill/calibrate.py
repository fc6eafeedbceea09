"""``pldistill calibrate``: short pilot runs that show which distillation settings keep a student at or above scratch.

For one recipe and its pair of models: the recipe's teacher (trained once, or
the cached one the real run will reuse), then a few-epoch scratch student and
one few-epoch distilled student per setting: the recipe's losses as written,
and the same losses with each weight stated relative to CE (``relative:
true``, ``engine/balance.py``), optionally on other stage pairs. Every pilot
trains on most of the training split and is judged on a class-stratified
hold-out of it (``data/holdout.py``): the test set is never read, so choosing
a setting here is not tuning on it. The best setting at or above scratch is
printed as a ``key=value`` override and can be written as a recipe that
extends the original.

    runs/<recipe>_calibrate/<timestamp>/
        pilot/             the pilots' checkpoints and metrics
        calibration.json   every setting, its hold-out accuracy and health findings
        calibration.md     the table, and the chosen override
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import yaml

from .engine.balance import term_weights
from .recipe import LayerPair, Recipe, RecipeError, load_recipe
from .report import describe_losses


def stage_pairs(text: str) -> list[LayerPair]:
    """``"-1:-1,2:2"`` → [LayerPair(-1, -1), LayerPair(2, 2)] (teacher:student stage indices)."""
    try:
        return [LayerPair(teacher=int(t), student=int(s)) for t, s in (p.split(":") for p in text.split(","))]
    except ValueError:
        raise RecipeError(f"--stages {text!r}: give teacher:student stage pairs, e.g. -1:-1 or 2:2,-1:-1") from None


def settings(recipe: Recipe, weights: Sequence[float], stages: Sequence[str]) -> dict[str, list]:
    """Setting name → distill.losses: as written, then every loss relative to CE at each weight (and stages)."""
    out = {"as written": list(recipe.distill.losses)}
    for pairs in [None, *stages]:
        for w in weights:
            losses = []
            for loss in recipe.distill.losses:
                update = {"relative": True, "weight": float(w)}
                if pairs is not None and loss.pairs:
                    update["pairs"] = stage_pairs(pairs)
                losses.append(loss.model_copy(update=update))
            out[f"{w:g}× CE" + (f", stages {pairs}" if pairs else "")] = losses
    return out


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def run_calibration(recipe_path: str | Path, overrides: Sequence[str] = (), weights: Sequence[float] = (0.25, 0.5, 1, 2),
                    stages: Sequence[str] = (), epochs: int = 3, holdout: float = 0.2,
                    runs_dir: str | Path | None = None, progress: bool = True) -> tuple[Path, dict]:
    """Train the pilots; write calibration.json/.md; return the folder and the results."""
    from .data.check import checked_datasets
    from .data.holdout import holdout_split, noise_points
    from .stages import Run, new_run_dir, obtain_teacher, train_student
    from .tracking import Tracker

    recipe = load_recipe(recipe_path, overrides)
    if any(w <= 0 for w in weights):
        raise RecipeError(f"--weights {list(weights)}: every weight must be positive")
    candidates = settings(recipe, weights, stages)
    datasets = checked_datasets(recipe.data, progress)
    run_dir = new_run_dir(Path(runs_dir or recipe.logging.runs_dir), f"{recipe.name}_calibrate")
    tracker = Tracker(run_dir, recipe.to_dict(), project=recipe.logging.project, group=f"{recipe.name}_calibrate",
                      name=f"{recipe.name}-calibrate-{run_dir.name}", mode=recipe.logging.wandb)
    try:
        full = Run(recipe, run_dir, tracker, progress, datasets=datasets)
        teacher, _ = obtain_teacher(full, step="[teacher] ")  # the real run's teacher, from the cache when there
        fit_part, held = holdout_split(full.train_set, holdout, recipe.seed)
        pilot_recipe = recipe.model_copy(update={
            "schedule": recipe.schedule.model_copy(update={"epochs": epochs}),
            "logging": recipe.logging.model_copy(update={"probe_size": 0}),
        })
        pilot = Run(pilot_recipe, run_dir / "pilot", tracker, progress, datasets=(fit_part, held))
        total = len(candidates) + 1
        scratch = train_student(pilot, "scratch", step=f"[1/{total}] pilot ")
        rows = []
        for k, (name, losses) in enumerate(candidates.items(), start=2):
            result = train_student(pilot, _slug(name), teacher, losses, step=f"[{k}/{total}] pilot {name}: ")
            last = result["history"][-1]
            weights = term_weights(last)
            rows.append({"setting": name, "losses": describe_losses(losses),
                         "distill": [loss.model_dump(mode="json") for loss in losses],
                         "holdout_acc": result["test_acc"], "gain": result["test_acc"] - scratch["test_acc"],
                         "train_ce": last.get("train/terms/ce"),
                         "weights": {term: w["weight"] for term, w in weights.items()},
                         "grad_ratios": {term: w["grad_ratio"] for term, w in weights.items()},
                         "health": result.get("health", [])})
    finally:
        tracker.finish()
    noise = 2 * noise_points(scratch["test_acc"], len(held))
    for r in rows:
        r["verdict"] = ("below scratch" if r["gain"] < -noise else "above scratch" if r["gain"] > noise
                        else "within noise")
    keeping = [r for r in rows if r["verdict"] != "below scratch" and not any(f["kind"] == "dominates"
                                                                                for f in r["health"])]
    chosen = max(keeping, key=lambda r: r["holdout_acc"]) if keeping else None
    chance = 1 / full.num_classes
    results = {"recipe": recipe.name, "recipe_file": str(recipe_path), "overrides": list(overrides),
               "epochs": epochs, "holdout_fraction": holdout, "num_fit": len(fit_part), "num_holdout": len(held),
               "scratch_holdout_acc": scratch["test_acc"], "noise": noise, "chance": chance,
               "too_short": scratch["test_acc"] - chance <= noise, "settings": rows,
               "chosen": chosen["setting"] if chosen else None,
               "override": override_args(chosen["distill"]) if chosen else None}
    (run_dir / "calibration.json").write_text(json.dumps(results, indent=2))
    (run_dir / "calibration.md").write_text(calibration_table(results))
    return run_dir, results


def override_args(distill: list[dict]) -> list[str]:
    """The chosen losses as command-line overrides, one key per changed field of each entry."""
    out = []
    for i, loss in enumerate(distill):
        out += [f"distill.losses.{i}.weight={loss['weight']:g}", f"distill.losses.{i}.relative={str(loss['relative']).lower()}"]
        if loss.get("pairs"):
            pairs = ",".join(f"{{teacher: {p['teacher']}, student: {p['student']}}}" for p in loss["pairs"])
            out.append(f"distill.losses.{i}.pairs=[{pairs}]")
    return out


def write_override(results: dict, recipe_path: str | Path, out: str | Path) -> Path:
    """A recipe that extends ``recipe_path`` with the chosen losses (composition: ``base:``)."""
    if results["chosen"] is None:
        raise RecipeError("no setting kept the pilot student at or above scratch; nothing to write")
    out = Path(out)
    chosen = next(r for r in results["settings"] if r["setting"] == results["chosen"])
    base = Path(recipe_path).resolve()
    try:
        base_ref = str(base.relative_to(out.resolve().parent))
    except ValueError:
        base_ref = str(base)
    body = {"base": base_ref, "distill": {"losses": chosen["distill"]}}
    out.write_text(f"# written by pldistill calibrate: setting {chosen['setting']!r}, hold-out accuracy "
                   f"{100 * chosen['holdout_acc']:.1f}% against scratch {100 * results['scratch_holdout_acc']:.1f}%\n"
                   + yaml.safe_dump(body, sort_keys=False))
    return out


def calibration_table(results: dict) -> str:
    lines = [
        f"# calibration of {results['recipe']}: {results['epochs']}-epoch pilots",
        "",
        f"Trained on {results['num_fit']} training samples, judged on a class-stratified hold-out of "
        f"{results['num_holdout']} more (the test set is not read). Scratch student: "
        f"{100 * results['scratch_holdout_acc']:.1f}%.",
        "",
        "| setting | losses | weights as trained | hold-out acc | vs scratch | verdict | health |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for r in results["settings"]:
        weights = ", ".join(f"{k} {v:.3g}" for k, v in r["weights"].items())
        health = "; ".join(f"{f['kind']} ({f['term']})" for f in r["health"]) or "ok"
        lines.append(f"| {r['setting']} | {r['losses']} | {weights} | {100 * r['holdout_acc']:.1f}% "
                     f"| {100 * r['gain']:+.1f} | {r['verdict']} | {health} |")
    lines += ["", f"Noise: a difference within ±{100 * results['noise']:.1f} points (two standard errors on "
                  f"{results['num_holdout']} hold-out samples) is not one."]
    if results["too_short"]:
        lines.append(f"The pilots are too short to tell settings apart: the scratch student is within noise of "
                     f"chance ({100 * results['chance']:.0f}%); rerun with more --epochs.")
    if results["chosen"] is None:
        lines.append("No setting stayed at or above scratch without a dominating term: try other stages (--stages) "
                     "or smaller weights.")
    else:
        lines.append(f"Chosen: **{results['chosen']}** (the best hold-out accuracy among the settings not below "
                     "scratch and not dominated by one term). As overrides: `" + " ".join(results["override"]) + "`")
    lines.append("")
    return "\n".join(lines)
