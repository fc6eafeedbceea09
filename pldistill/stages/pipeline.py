"""The stage sequence of a run, used as is by ``run`` and piece by piece by ``compare``.

    teacher → (probe) → scratch student → distilled student(s) → same-modality control
            → instance controls (shuffled pairing, class-mean teacher; controls.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import TappedModel
from ..recipe import Recipe
from .context import Run
from .controls import ShuffledPairing
from .student import attach_probe, train_student
from .teacher import obtain_teacher
from ..teacher_agreement import describe_agreement, teacher_agreement


@dataclass
class StageResults:
    teacher: dict
    scratch: dict
    distilled: dict
    control: dict | None
    instance: dict | None = None


def teacher_and_probe(run: Run, step: str = "") -> tuple[TappedModel, dict]:
    """The teacher, and the alignment probe every later student of ``run`` is measured with."""
    teacher, info = obtain_teacher(run, step)
    attach_probe(run, teacher)
    return teacher, info


def wants_control(recipe: Recipe) -> bool:
    return (recipe.distill.same_modality_control and recipe.teacher.train
            and recipe.teacher.modality != recipe.student.modality)


def control_run(run: Run, teacher_recipe: Recipe, folder_name: str, log_prefix: str = "") -> Run:
    """A sub-run whose teacher is ``teacher_recipe``'s (same model and budget, another modality), on ``run``'s data."""
    return run.sub_run(teacher_recipe, run.run_dir / folder_name, log_prefix)


def same_modality_control(run: Run, distilled: dict, steps: int) -> dict:
    """The same teacher model and budget on the student's own modality, and the same distillation from it.

    Without this row a distillation gain cannot be credited to the privileged
    modality: it may come from merely having a (stronger) teacher.
    """
    recipe = run.recipe
    spec = recipe.teacher.model_copy(update={"modality": recipe.student.modality})
    sub = control_run(run, recipe.model_copy(update={"teacher": spec}), "control", log_prefix="control/")
    teacher, info = obtain_teacher(sub, step=f"[{steps - 1}/{steps}] control ")
    out = {"teacher": info}
    if run.probe is not None:  # measured before the control student trains: the diagnostic predicts, not explains
        out["teacher_agreement"] = teacher_agreement(run.probe, teacher)
        print(f"teacher agreement ({recipe.teacher.modality} teacher vs {spec.modality} teacher, on the probe): "
              + describe_agreement(out["teacher_agreement"]))
    student = train_student(sub, "distilled", teacher, step=f"[{steps}/{steps}] control ")
    return {**out, "student": student, "privileged_gain": distilled["test_acc"] - student["test_acc"]}


def shuffled_run(run: Run, teacher_modality: str, seed: int) -> Run:
    """``run`` with its training set's ``teacher_modality`` read from another sample of the same class."""
    return run.sub_run(run.recipe, run.run_dir, run.log_prefix,
                       train_set=ShuffledPairing(run.train_set, [teacher_modality], seed))


def instance_controls(run: Run, teacher: TappedModel, distilled: dict, step: str = "") -> dict:
    """The run's distillation from ``teacher`` with shuffled pairing and with its class-mean outputs.

    Each student starts from the scratch student's weights like every other; the
    differences from the distilled student are the run's instance gains.
    """
    r = run.recipe
    shuffled = train_student(shuffled_run(run, r.teacher.modality, r.seed), "shuffled", teacher,
                             step=f"{step}shuffled pairing: ")
    class_mean = train_student(run, "class_mean", teacher, step=f"{step}class-mean teacher: ", signal="class_mean")
    return {"shuffled": shuffled, "class_mean": class_mean,
            "instance_gain": distilled["test_acc"] - shuffled["test_acc"],
            "beyond_class_mean": distilled["test_acc"] - class_mean["test_acc"]}


def run_stages(run: Run) -> StageResults:
    """Teacher, scratch student, distilled student and the control: the training every rank does."""
    instance = run.recipe.distill.instance_controls
    steps = 3 + 2 * wants_control(run.recipe) + instance
    teacher, teacher_info = teacher_and_probe(run, step=f"[1/{steps}] ")
    scratch = train_student(run, "scratch", step=f"[2/{steps}] ")
    distilled = train_student(run, "distilled", teacher, step=f"[3/{steps}] ")
    controls = instance_controls(run, teacher, distilled, step=f"[4/{steps}] ") if instance else None
    control = same_modality_control(run, distilled, steps) if wants_control(run.recipe) else None
    return StageResults(teacher_info, scratch, distilled, control, controls)
