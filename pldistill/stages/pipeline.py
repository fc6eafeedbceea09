"""The stage sequence of a run, used as is by ``run`` and piece by piece by ``compare``.

    teacher → (probe) → scratch student → distilled student(s)
            → [delivery: student.holdout, delivery.py; under student.refit both students again on the whole split]
            → instance controls (shuffled pairing, class-mean teacher; controls.py) → same-modality control
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import TappedModel
from ..recipe import Recipe
from .context import Run
from .controls import ShuffledPairing
from .delivery import as_students, deliver, refitted, student_run
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
    delivered: dict | None = None  # student.holdout: which student the run delivers, and why


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


def same_modality_control(run: Run, distilled: dict, steps: int, students: Run | None = None) -> dict:
    """The same teacher model and budget on the student's own modality, and the same distillation from it.

    Without this row a distillation gain cannot be credited to the privileged
    modality: it may come from merely having a (stronger) teacher. The control
    teacher trains on ``run``'s data, its student on ``students``' (``run``'s
    less a hold-out, under student.holdout), as the teacher and student it controls for.
    """
    recipe = run.recipe
    spec = recipe.teacher.model_copy(update={"modality": recipe.student.modality})
    control_recipe = recipe.model_copy(update={"teacher": spec})
    sub = control_run(run, control_recipe, "control", log_prefix="control/")
    teacher, info = obtain_teacher(sub, step=f"[{steps - 1}/{steps}] control ")
    sub = as_students(sub, students or run)
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
    refit = bool(run.recipe.student.holdout) and run.recipe.student.refit
    steps = 3 + 2 * refit + 2 * wants_control(run.recipe) + instance
    teacher, teacher_info = teacher_and_probe(run, step=f"[1/{steps}] ")
    students = student_run(run)  # after the probe: the students are measured against the teacher like any
    deciding = "deciding " if refit else ""  # the students without the hold-out only decide which kind is delivered
    scratch = train_student(students, "scratch", step=f"[2/{steps}] {deciding}")
    distilled = train_student(students, "distilled", teacher, step=f"[3/{steps}] {deciding}")
    delivered = None
    if students.holdout_set is not None:
        delivered = deliver(scratch, distilled, len(students.holdout_set))
    if refit:
        print(f"the hold-out chose the {delivered['student']} student; both train again on the whole split")
        students = run
        scratch = train_student(run, "scratch", step=f"[4/{steps}] ")
        distilled = train_student(run, "distilled", teacher, step=f"[5/{steps}] ")
        delivered = refitted(delivered, scratch, distilled)
    if delivered is not None:
        print(f"delivered: the {delivered['student']} student — {delivered['reason']}")
    after = 4 + 2 * refit
    controls = instance_controls(students, teacher, distilled, step=f"[{after}/{steps}] ") if instance else None
    control = same_modality_control(run, distilled, steps, students) if wants_control(run.recipe) else None
    return StageResults(teacher_info, scratch, distilled, control, controls, delivered)
