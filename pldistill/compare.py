"""Loss comparisons: one base recipe, several distillation variants, several seeds, one table.

A comparison file names a base recipe and replaces only its ``distill.losses``
per variant, so every row shares the data, the teacher, the student's initial
weights and the schedule; only the distillation loss differs. Per seed the
teacher is trained (or reused from the cache) once and the scratch student
once. Every variant is validated as a full recipe before anything trains.

    runs/<comparison>/<timestamp>/
        comparison.yaml    the comparison as resolved
        seed<N>/           per seed: checkpoints/, metrics.jsonl, wandb/
        cells.jsonl        one line per finished (seed, row): what --resume skips
        comparison.json    every cell plus mean ± std per row
        comparison.md      the table
        comparison.png     the table, drawn
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .recipe import (LossEntries, Recipe, RecipeError, Section, check_shuffleable, format_error, compose_recipe,
                     parse_recipe, read_yaml)
from .engine.balance import term_weights
from .report import describe_losses
from .teacher_agreement import describe_mean_agreement, read_agreements, record_agreement, teacher_agreement
from .stages.controls import CONTROL_MEANINGS, TeacherSignal
from .stages.delivery import deliver, refitted

VARIANT_NAME = r"^[a-z0-9][a-z0-9_+\-]*$"
RESERVED = ("scratch", "teacher")
HALLUCINATION_ROW = "teacher_hallucination"  # the hallucination network's own accuracy (stages/hallucination.py)


def _is_reference(row: str) -> bool:
    """Rows that are not distilled students: scratch and the teachers."""
    return row in RESERVED or row.startswith("teacher")


class Variant(Section):
    """A row in long form: its losses, and optionally a teacher on another modality (a control)."""

    losses: list[LossEntries] = Field(min_length=1)
    teacher_modality: str | None = Field(
        None, description="train the teacher (same model and budget) on this modality instead (a teacher on one "
        "modality drops the base's teacher.modality_dropout: it has no parts to drop)"
    )
    control_for: str | None = Field(
        None, description="the row this one controls: the table reports that row minus this one, paired"
    )
    mixup: float | None = Field(
        None, ge=0, description="student.mixup for this row (α of joint mixup; engine/mixup.py), e.g. for STKD; "
        "default: the base recipe's"
    )
    teacher_signal: TeacherSignal = Field(
        "paired", description="paired: the recipe's pairing; shuffled: the teacher reads another training sample of "
        "the same class; class_mean: the teacher's outputs are their per-class means (stages/controls.py)"
    )
    health: dict[str, Any] | None = Field(
        None, description="distill.health keys for this row (e.g. {on_harm: lower}), over the base recipe's"
    )
    conflicts: Literal["keep", "project", "measure"] | None = Field(
        None, description="distill.conflicts for this row (project: the terms' gradient never opposes CE's; "
        "engine/conflict.py); default: the base recipe's"
    )
    hallucinate: list[LossEntries] | None = Field(
        None, description="train the teacher's model on the student's modality to reproduce the privileged "
        "teacher through these losses (modality hallucination, stages/hallucination.py) and distil the student "
        "from it instead"
    )

    @model_validator(mode="after")
    def _one_teacher(self) -> "Variant":
        if self.hallucinate is not None and (self.teacher_modality is not None or self.teacher_signal != "paired"):
            raise ValueError("'hallucinate' replaces the teacher by a network on the student's modality; it does not "
                             "combine with 'teacher_modality' or 'teacher_signal'")
        return self


class Comparison(Section):
    name: str
    base: str = Field(description="recipe file, relative to this file")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    overrides: list[str] = Field(
        default_factory=list,
        description="key=value settings applied to the base recipe before the variants (e.g. a data path)",
    )
    variants: dict[str, list[LossEntries] | Variant] = Field(min_length=1, description="row name → distill.losses")

    @field_validator("variants")
    @classmethod
    def _names(cls, variants: dict) -> dict[str, Variant]:
        out = {}
        for name, row in variants.items():
            if not re.match(VARIANT_NAME, name) or _is_reference(name):
                raise ValueError(
                    f"variant name {name!r} must be lower-case letters, digits, _ + - and not {RESERVED} "
                    "or start with 'teacher'"
                )
            if isinstance(row, list):
                if not row:
                    raise ValueError(f"variant {name!r} has no losses (the scratch row is always included)")
                row = Variant(losses=row)
            if row.control_for is not None and row.control_for not in variants:
                raise ValueError(f"variant {name!r}: control_for {row.control_for!r} is not a variant")
            out[name] = row
        return out


def load_comparison(path: str | Path, overrides: list[str] | tuple = ()) -> tuple[Comparison, Recipe, dict[str, Recipe]]:
    """Validate the comparison and every variant as a complete recipe; nothing trains yet.

    ``overrides`` (``key=value``, as on ``pldistill run``) are applied to the base
    recipe after the file's own ``overrides``, so a data path never has to be
    written into a committed file.
    """
    path = Path(path)
    raw = read_yaml(path, "comparison")
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a comparison must be a mapping of keys")
    try:
        comparison = Comparison.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError("\n".join(format_error(path, e, Comparison) for e in exc.errors())) from None
    if overrides:
        comparison = comparison.model_copy(update={"overrides": [*comparison.overrides, *overrides]})
    base_path = (path.parent / comparison.base).resolve()
    # a base may itself extend another recipe
    base_raw, sources = compose_recipe(base_path, comparison.overrides)
    base = parse_recipe(base_raw, base_path, sources)
    variants = {}
    for name, row in comparison.variants.items():
        distill = {**base_raw.get("distill", {}), "losses": [loss.model_dump() for loss in row.losses]}
        if row.health is not None:
            distill["health"] = {**distill.get("health", {}), **row.health}
        if row.conflicts is not None:
            distill["conflicts"] = row.conflicts
        raw_variant = {**base_raw, "distill": distill}
        if row.teacher_modality is not None:
            teacher = {**base_raw["teacher"], "modality": row.teacher_modality}
            if row.teacher_modality not in base.data.stack:  # one modality: no part of it to drop
                teacher.pop("modality_dropout", None)
            raw_variant["teacher"] = teacher
        if row.mixup is not None:
            raw_variant["student"] = {**base_raw["student"], "mixup": row.mixup}
        try:
            variants[name] = parse_recipe(raw_variant, path)
        except RecipeError as err:  # point at the variant, not at the base recipe's key
            raise RecipeError(str(err).replace("distill.losses", f"variants.{name}")) from None
        if row.teacher_signal == "shuffled":
            check_shuffleable(variants[name], f"{path}: variants.{name}.teacher_signal")
        if row.hallucinate is not None:  # checked as a recipe whose student is the teacher's model on our modality
            network = {**base_raw["student"], "model": base_raw["teacher"]["model"], "mixup": 0.0}
            hallucination = {**base_raw, "student": network,
                             "distill": {"losses": [loss.model_dump() for loss in row.hallucinate]}}
            try:
                parse_recipe(hallucination, path)
            except RecipeError as err:
                raise RecipeError(str(err).replace("distill.losses", f"variants.{name}.hallucinate")) from None
    return comparison, base, variants


# what a row's losses column adds for its distill.conflicts (engine/conflict.py)
_CONFLICT_NOTES = {"keep": "", "project": ", conflicts with CE projected out", "measure": ""}

# loss-entry keys added after comparison folders were first written, with their defaults
_LATER_KEYS = {"rebalance": "once", "project": False, "warmup_epochs": 0.0}


def _without_later_defaults(losses: list[dict]) -> list[dict]:
    """Loss entries with the later keys at their default left out, so older folders' rows still resume."""
    return [{k: v for k, v in loss.items() if k not in _LATER_KEYS or v != _LATER_KEYS[k]} for loss in losses]


def _recorded_spec(spec: list | dict) -> list | dict:
    """A cell's recorded spec in the form _spec gives (folders of 12-05 recorded project: false)."""
    if isinstance(spec, list):
        return _without_later_defaults(spec)
    return {**spec, "losses": _without_later_defaults(spec["losses"])}


def _spec(row: Variant, recipe: Recipe) -> list | dict:
    """What a row's cells were trained with: a changed row is never resumed into old cells."""
    losses = _without_later_defaults([loss.model_dump(mode="json") for loss in recipe.distill.losses])
    if (row.teacher_modality is None and row.teacher_signal == "paired" and row.mixup is None and row.health is None
            and row.hallucinate is None and row.conflicts is None):
        return losses  # the form older folders recorded
    spec = {"losses": losses, "teacher_modality": row.teacher_modality, "teacher_signal": row.teacher_signal}
    spec = spec if row.mixup is None else {**spec, "mixup": row.mixup}
    if row.hallucinate is not None:
        spec["hallucinate"] = [loss.model_dump(mode="json") for loss in row.hallucinate]
    if row.conflicts is not None:
        spec["conflicts"] = row.conflicts
    return spec if row.health is None else {**spec, "health": recipe.distill.health.model_dump(mode="json")}


def controlled_gains(cells: list[dict], comparison: "Comparison") -> list[dict]:
    """Row minus its control, paired by seed: e.g. the privileged gain of SP(depth) over SP(rgb).

    Every seed the cells hold, like the table's rows: a call that trained only some
    seeds of a resumed folder (``--seeds 2``) still reports the gain over all of them.
    """
    acc = {(c["seed"], c["row"]): c["test_acc"] for c in cells}
    seeds = sorted({c["seed"] for c in cells})
    out = []
    for name, row in comparison.variants.items():
        if row.control_for is None:
            continue
        diffs = [acc[s, row.control_for] - acc[s, name] for s in seeds
                 if (s, name) in acc and (s, row.control_for) in acc]
        if diffs:
            mean, std = _mean_std(diffs)
            out.append({"row": row.control_for, "control": name, "mean": mean, "std": std, "seeds": len(diffs)})
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(cells: list[dict], rows: list[str]) -> list[dict]:
    """Mean ± std of accuracy per row over seeds, and the paired gain over scratch."""
    scratch = {c["seed"]: c["test_acc"] for c in cells if c["row"] == "scratch"}
    out = []
    for row in rows:
        mine = sorted((c for c in cells if c["row"] == row), key=lambda c: c["seed"])
        if not mine:
            continue
        accs = [c["test_acc"] for c in mine]
        gains = [c["test_acc"] - scratch[c["seed"]] for c in mine if c["seed"] in scratch]
        mean, std = _mean_std(accs)
        summary = {
            "row": row,
            "seeds": [c["seed"] for c in mine],
            "test_acc": accs,
            "mean": mean,
            "std": std,
            "seconds_mean": statistics.fmean(c["seconds"] for c in mine),
            "losses": mine[0]["losses"],
        }
        if not _is_reference(row) and gains:
            summary["gain_mean"], summary["gain_std"] = _mean_std(gains)
        out.append(summary)
    return out


def comparison_table(name: str, summary: list[dict], device: str, base: Recipe, num_test: int) -> str:
    lines = [
        f"# {name}: {len(summary[0]['seeds'])} seed(s), {base.student.model} on {base.student.modality!r}, "
        f"teacher {base.teacher.model} on {base.teacher.modality!r}",
        "",
        f"Test accuracy of each row on {base.data.kind} ({num_test} test samples); "
        f"mean ± std over seeds; gain is paired with the scratch student of the same seed. Device {device}.",
        "",
        "| row | losses | test acc (mean ± std) | per seed | gain over scratch | train s |",
        "|---|---|---:|---|---:|---:|",
    ]
    for s in summary:
        gain = f"{100 * s['gain_mean']:+.1f} ± {100 * s['gain_std']:.1f}" if "gain_mean" in s else ""
        per_seed = " / ".join(f"{100 * a:.1f}" for a in s["test_acc"])
        lines.append(
            f"| {s['row']} | {s['losses']} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} | {per_seed} "
            f"| {gain} | {s['seconds_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_comparison(summary: list[dict], path: Path, title: str) -> None:
    """Bars with std error bars and one dot per seed: the spread is part of the result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(summary), 3.6))
    xs = range(len(summary))
    colours = ["0.6" if _is_reference(s["row"]) else "tab:blue" for s in summary]
    ax.bar(xs, [100 * s["mean"] for s in summary], yerr=[100 * s["std"] for s in summary],
           color=colours, capsize=3)
    for x, s in zip(xs, summary):
        ax.plot([x] * len(s["test_acc"]), [100 * a for a in s["test_acc"]], "k.", ms=4)
    ax.set_xticks(list(xs), [s["row"] for s in summary], rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _resumed_overrides(run_dir: Path, path: str | Path, given: list[str]) -> list[str]:
    """A resumed comparison keeps its command-line overrides: the same ones, or none (then the recorded ones)."""
    recorded = yaml.safe_load((run_dir / "comparison.yaml").read_text()) or {}
    file_raw = read_yaml(Path(path), "comparison")
    own = list(file_raw.get("overrides") or []) if isinstance(file_raw, dict) else []
    stored = list(recorded.get("overrides") or [])
    previous = stored[len(own):] if stored[: len(own)] == own else stored
    if given and given != previous:
        raise RecipeError(
            f"{run_dir}: trained with overrides {previous or 'none'}, resumed with {given}; "
            "resume with the same overrides (or none to reuse them), or start a new comparison"
        )
    return previous


def _read_cells(run_dir: Path) -> list[dict]:
    path = run_dir / "cells.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_comparison(
    path: str | Path,
    runs_dir: str | Path | None = None,
    resume: str | Path | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
    overrides: list[str] | tuple = (),
    only: list[str] | None = None,
) -> tuple[Path, list[dict]]:
    """Train every (seed, row) not already in the folder's cells.jsonl; write the table.

    ``only`` names the variants this call trains (with scratch and the teachers they need); the table shows all.
    """
    from .data.check import checked_datasets
    from .stages import new_run_dir

    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "comparison.yaml").exists():
            raise RecipeError(f"{run_dir}: not a comparison folder (no comparison.yaml); nothing to resume")
        overrides = _resumed_overrides(run_dir, path, list(overrides))
    comparison, base, variants = load_comparison(path, overrides)
    chosen = None if only is None else _rows_to_train(only, comparison, variants, base, path)  # refused before any folder
    if seeds:
        comparison = comparison.model_copy(update={"seeds": list(seeds)})
    # bad data stops here, before a folder exists (each seed's Run reads its own copy: adapters hold state,
    # e.g. a resolution pair's noise generator, that a seed must not inherit from the one before)
    test_split = checked_datasets(base.data, progress)[1]
    if resume is None:
        run_dir = new_run_dir(Path(runs_dir or base.logging.runs_dir), comparison.name)
        _write_comparison(run_dir, comparison)
    cells = _read_cells(run_dir)
    specs = {name: _spec(comparison.variants[name], v) for name, v in variants.items()}
    changed = sorted({c["row"] for c in cells
                      if c["row"] in specs and _recorded_spec(c.get("spec", specs[c["row"]])) != specs[c["row"]]})
    if changed:
        raise RecipeError(
            f"{path}: variants {changed} changed since {run_dir} trained them; "
            "start a new comparison (without --resume) so every seed of a row uses the same losses"
        )
    if resume is not None:  # the folder records what its rows were trained with, and every seed it holds
        held = sorted({c["seed"] for c in cells} | set(comparison.seeds))
        _write_comparison(run_dir, comparison.model_copy(update={"seeds": held}))
    done = {(c["seed"], c["row"]) for c in cells}
    control_teachers = sorted({f"teacher_{v.teacher.modality}" for v in variants.values()
                               if v.teacher.modality != base.teacher.modality})
    hallucinating = any(row.hallucinate is not None for row in comparison.variants.values())
    rows = ["scratch", *variants, "teacher", *control_teachers, *([HALLUCINATION_ROW] if hallucinating else [])]
    trained = set(rows) if chosen is None else chosen
    device, num_test = "cpu", None
    started = time.perf_counter()
    for seed in comparison.seeds:
        todo = [r for r in rows if (seed, r) not in done and r in trained]
        if todo:
            device, num_test = _train_seed(run_dir, comparison, base, variants, specs, seed, todo, progress)
    cells = _read_cells(run_dir)
    summary = summarise(cells, rows)
    gains = controlled_gains(cells, comparison)
    results: dict[str, Any] = {
        "comparison": comparison.name,
        "file": str(path),
        "device": device,
        "seconds": time.perf_counter() - started,
        "rows": summary,
        "controlled_gains": gains,
        "agreement": read_agreements(run_dir),
        "cells": cells,
    }
    (run_dir / "comparison.json").write_text(json.dumps(results, indent=2))
    if num_test is None:  # nothing trained in this call (a finished folder resumed): count the test split
        num_test = len(test_split)
    (run_dir / "comparison.md").write_text(_table(comparison, summary, gains, device, base, num_test, cells,
                                                  results["agreement"]))
    plot_comparison(summary, run_dir / "comparison.png",
                    f"{comparison.name}: {base.student.model} ({base.student.modality}), "
                    f"{len(comparison.seeds)} seed(s)")
    return run_dir, summary


def _rows_to_train(only: list[str], comparison: Comparison, variants: dict[str, Recipe], base: Recipe,
                   path: str | Path) -> set[str]:
    """``--rows``: those variants, the scratch student, the teacher and the control or hallucination teachers they read."""
    unknown = sorted(set(only) - set(variants))
    if unknown:
        raise RecipeError(f"--rows {unknown}: {path} has no such variants; it has {sorted(variants)}")
    teachers = {f"teacher_{variants[r].teacher.modality}" for r in only
                if variants[r].teacher.modality != base.teacher.modality}
    teachers |= {HALLUCINATION_ROW for r in only if comparison.variants[r].hallucinate is not None}
    return {"scratch", "teacher", *only, *teachers}


def _write_comparison(run_dir: Path, comparison: Comparison) -> None:
    (run_dir / "comparison.yaml").write_text(yaml.safe_dump(comparison.model_dump(mode="json"), sort_keys=False))


def _train_seed(run_dir: Path, comparison: Comparison, base: Recipe, variants: dict[str, Recipe],
                specs: dict, seed: int, todo: list[str], progress: bool) -> tuple[str, int]:
    """One seed's missing rows, with the run's own stage functions: teacher (+ probe) → scratch → variants.

    A variant whose teacher is on another modality (a same-budget control) trains
    that teacher once per modality, in ``seed<N>/teacher_<modality>/``. Returns
    the device and the test-set size, for the table.
    """
    from .stages import Run, control_run, obtain_teacher, teacher_and_probe, train_student
    from .data.splits import write_split_record
    from .stages.hallucination import hallucination_teacher
    from .stages.pipeline import shuffled_run
    from .stages.delivery import as_students, refits, student_run
    from .tracking import Tracker

    seed_dir = run_dir / f"seed{seed}"
    seed_dir.mkdir(exist_ok=True)
    tracker = Tracker(seed_dir, {"comparison": comparison.model_dump(mode="json"), "seed": seed},
                      project=base.logging.project, group=comparison.name,
                      name=f"{comparison.name}-seed{seed}", mode=base.logging.wandb)
    head = f"[seed {seed}] "
    try:
        run = Run(base.model_copy(update={"seed": seed}), seed_dir, tracker, progress)
        write_split_record(seed_dir, run.train_set, run.test_set)  # data_split.json: splits pldistill chose
        teacher, teacher_info = teacher_and_probe(run, step=head)
        students = student_run(run)  # the run itself, or its training split less student.holdout
        refit = refits(students)  # then ``students`` only decide; every cell's student trains on the whole split
        new_cells = []
        if "teacher" in todo and teacher_info["test_acc"] is not None:
            new_cells.append({"row": "teacher", "test_acc": teacher_info["test_acc"],
                              "seconds": teacher_info["seconds"], "losses": "CE on the privileged modality"})
        # the health check compares every distilled student with the scratch student's epochs: a folder that
        # kept only its cells (e.g. copied from experiments/results) trains the scratch student again for them,
        # and a finished one is read back before any control's sub-run copies the reference
        distilled = any(r in variants for r in todo)
        if "scratch" in todo or distilled:
            scratch = deciding_scratch = train_student(students, "scratch", step=head + "deciding " * refit)
            if refit:
                scratch = train_student(run, "scratch", step=head)
            if "scratch" in todo:
                new_cells.append({"row": "scratch", "test_acc": scratch["test_acc"], "seconds": scratch["seconds"],
                                  "losses": "CE", **_holdout(deciding_scratch, refit=scratch if refit else None)})
        controls: dict[str, tuple] = {}  # teacher modality → (run, teacher) of the same-budget control
        measured = {(a["seed"], a["modality"]) for a in read_agreements(run_dir)}
        hallucinations: dict[str, tuple] = {}  # hallucinate losses → (run, network)
        for name, variant in variants.items():
            modality = variant.teacher.modality
            control_row = f"teacher_{modality}"
            wanted = name in todo or control_row in todo
            if modality != base.teacher.modality and wanted and modality not in controls:
                sub = control_run(run, variant.model_copy(update={"seed": seed}), control_row)
                tutor, info = obtain_teacher(sub, step=f"{head}control ")
                controls[modality] = (sub, tutor)
                if run.probe is not None and (seed, modality) not in measured:  # the diagnostic, before students
                    agreement = teacher_agreement(run.probe, tutor)
                    record_agreement(run_dir, seed, base.teacher.modality, modality, agreement)
                if control_row in todo:
                    new_cells.append({"row": control_row, "test_acc": info["test_acc"], "seconds": info["seconds"],
                                      "losses": f"CE on {modality!r} (same model and budget as the teacher)"})
            if name not in todo:
                continue
            owner, tutor = (run, teacher) if modality == base.teacher.modality else controls[modality]
            if comparison.variants[name].hallucinate is not None:  # one network per seed and set of losses
                key = json.dumps(specs[name]["hallucinate"])
                if key not in hallucinations:
                    sub, network, info = hallucination_teacher(run, teacher, comparison.variants[name].hallucinate,
                                                               step=head)
                    hallucinations[key] = (sub, network)
                    if HALLUCINATION_ROW in todo:
                        new_cells.append({"row": HALLUCINATION_ROW, "test_acc": info["test_acc"],
                                          "seconds": info.get("seconds", 0.0), "losses": "CE + " + describe_losses(
                                              comparison.variants[name].hallucinate) + f" to the {modality!r} teacher"})
                owner, tutor = hallucinations[key]
            signal = comparison.variants[name].teacher_signal
            owners = [as_students(owner, students)] + [owner] * refit  # under refit: deciding, then whole split
            if signal == "shuffled":  # the same teacher, its inputs from another sample of the class
                owners = [shuffled_run(o, modality, seed) for o in owners]
            results = [train_student(o, name, tutor, variant.distill.losses, signal=signal, mixup=variant.student.mixup,
                                     distill=variant.distill, step=head + "deciding " * (refit and i == 0))
                       for i, o in enumerate(owners)]
            result = results[-1]
            delivery = _holdout(results[0], deciding_scratch, len(students.holdout_set or ()),
                                refit=(result, scratch) if refit else None)
            new_cells.append({"row": name, "test_acc": result["test_acc"], "seconds": result["seconds"],
                              "losses": "CE + " + describe_losses(variant.distill.losses)
                              + _CONFLICT_NOTES[variant.distill.conflicts],
                              "spec": specs[name],
                              "health": result.get("health", []), "weights": term_weights(result["history"][-1]),
                              **delivery})
            _append_cells(run_dir, seed, new_cells)
            new_cells = []
        _append_cells(run_dir, seed, new_cells)
    finally:
        tracker.finish()
    return str(run.device), len(run.test_set)


def _holdout(student: dict, scratch: dict | None = None, num_holdout: int = 0, refit=None) -> dict:
    """A cell's hold-out score under student.holdout and, for a distilled row, what the run would deliver.

    ``student`` and ``scratch`` are the deciding students; under student.refit, ``refit``
    is the cell's whole-split student (a scratch cell) or (student, scratch) pair (a distilled
    row), whose test accuracies the delivered one takes, as ``delivery.refitted`` does.
    """
    if "holdout_acc" not in student:
        return {}
    out = {"holdout_acc": student["holdout_acc"]}
    if refit is not None:  # what the deciding student scored on the test set: the delivery without refit
        out["deciding_test_acc"] = student["test_acc"]
    if scratch is None:
        return out
    chosen = deliver(scratch, student, num_holdout)
    if refit is not None:
        chosen = refitted(chosen, scratch=refit[1], distilled=refit[0])
    return {**out, "delivered": chosen["student"], "delivered_acc": chosen["test_acc"]}


def _table(comparison: Comparison, summary: list[dict], gains: list[dict], device: str, base: Recipe,
           num_test: int, cells: list[dict] = (), agreement: list[dict] = ()) -> str:
    """comparison.md: the table, the controlled gains, the teacher agreement and the overrides it was trained with."""
    table = comparison_table(comparison.name, summary, device, base, num_test)
    for g in gains:
        control = comparison.variants[g["control"]]
        meaning = (CONTROL_MEANINGS[control.teacher_signal] if control.teacher_signal != "paired"
                   else "what the privileged modality adds beyond having a teacher of the same model and budget")
        table += (f"\n{g['row']} − {g['control']} (paired over {g['seeds']} seeds): "
                  f"{100 * g['mean']:+.1f} ± {100 * g['std']:.1f} points — {meaning}.\n")
    if agreement:
        table += "".join(f"\n{line}\n" for line in describe_mean_agreement(agreement))
    delivered = delivery_notes(cells)
    if delivered:
        table += ("\nDelivered under student.holdout (the distilled student unless it scored below the scratch "
                  "student on the hold-out of the training split; gain paired by seed):\n\n"
                  + "".join(f"- {n}\n" for n in delivered))
    notes = health_notes(cells)
    if notes:
        table += "\nHealth check:\n\n" + "".join(f"- {n}\n" for n in notes)
    if comparison.overrides:
        table += "\nBase recipe overrides: " + " ".join(f"`{o}`" for o in comparison.overrides) + "\n"
    return table


def delivery_notes(cells: list[dict]) -> list[str]:
    """Per distilled row under student.holdout: the delivered student's gain over scratch, and how often it declined."""
    scratch = {c["seed"]: c["test_acc"] for c in cells if c["row"] == "scratch"}
    rows: dict[str, list[dict]] = {}
    for c in cells:
        if "delivered" in c and c["seed"] in scratch:
            rows.setdefault(c["row"], []).append(c)
    lines = []
    for row, got in rows.items():
        gains = [100 * (c["delivered_acc"] - scratch[c["seed"]]) for c in got]
        spread = f" ± {statistics.stdev(gains):.1f}" if len(gains) > 1 else ""
        declined = sorted(c["seed"] for c in got if c["delivered"] == "scratch")
        lines.append(f"{row}: {statistics.mean(gains):+.1f}{spread} points over {len(gains)} seed(s); distillation "
                     f"declined on {len(declined)}" + (f" (seeds {', '.join(map(str, declined))})" if declined else ""))
    return lines


def health_notes(cells: list[dict]) -> list[str]:
    """One line per (row, seed) the health check reported on: the table is not read without them."""
    return [f"{c['row']} (seed {c['seed']}): {f['message']}" for c in cells for f in c.get("health", [])]


def _append_cells(run_dir: Path, seed: int, cells: list[dict]) -> None:
    """Append finished cells; one flushed line each, so a crash loses at most the row in training."""
    with open(run_dir / "cells.jsonl", "a") as f:
        for cell in cells:
            f.write(json.dumps({"seed": seed, **cell}) + "\n")
        f.flush()
