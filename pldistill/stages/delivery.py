"""Which student a run delivers: the distilled one, unless a hold-out says distillation hurt it.

A user who swaps in their own pair of models can get a distilled student worse
than the same student trained without a teacher (RESULTS.md: on
``convnext_atto`` → ``regnetx_002`` every teacher and every weight tried did).
The health check reports it; ``student.holdout`` acts on it. A class-stratified
fraction of the training split is held out from every student (teachers still
train on the whole split, so cached teachers stay valid), both students are
scored on it after training, and the scratch student is delivered when the
distilled one scores lower. The choice reads only training data: the test set
reports what was delivered, it never chooses it.

Students trained on less data are weaker (on the flagship, SP's gain at 90% of
the split is half its gain on all of it), so ``student.refit`` makes the
hold-out students a decision only: the scratch and distilled students train
again on the whole split (in the run folder, as without a hold-out; the
deciding pair in its ``holdout/`` folder) and the whole-split student of the
chosen kind is delivered.
"""

from __future__ import annotations

from .. import distributed
from ..data.holdout import holdout_split, noise_points
from ..data.splits import write_split_record
from ..engine import evaluate
from .context import Run


HOLDOUT_FOLDER = "holdout"  # under student.refit: where the deciding students train, inside each run folder


def _deciding_place(owner: Run) -> tuple:
    """(folder, log prefix) of the students trained without the hold-out: under refit, beside the whole-split ones."""
    if owner.recipe.student.refit:
        return owner.run_dir / HOLDOUT_FOLDER, owner.log_prefix + HOLDOUT_FOLDER + "/"
    return owner.run_dir, owner.log_prefix


def student_run(run: Run) -> Run:
    """The run every student trains in: ``run`` itself, or with ``student.holdout`` of its training split held out."""
    fraction = run.recipe.student.holdout
    if not fraction:
        return run
    fit_part, held = holdout_split(run.train_set, fraction, run.recipe.seed, roles=("student_fit", "student_holdout"))
    if distributed.is_main():  # data_split.json: the held-out indices beside the splits
        write_split_record(run.run_dir, run.train_set, run.test_set, held)
    students = run.sub_run(run.recipe, *_deciding_place(run), train_set=fit_part)
    students.holdout_set, students.probe = held, run.probe  # measured against the run's teacher like any student
    return students


def refits(students: Run) -> bool:
    """Whether ``students`` (from ``student_run``) only decide, the delivered students training on the whole split."""
    return students.holdout_set is not None and students.recipe.student.refit


def as_students(owner: Run, students: Run) -> Run:
    """``owner`` (a sub-run whose teacher trained on the whole split: a control's, a hallucination's) with
    ``students``' training set and hold-out, for the students it teaches; ``owner`` itself without a hold-out."""
    if students.holdout_set is None:
        return owner
    sub = owner.sub_run(owner.recipe, *_deciding_place(owner), train_set=students.train_set)
    sub.scratch_history, sub.holdout_set, sub.probe = students.scratch_history, students.holdout_set, owner.probe
    return sub


def holdout_accuracy(run: Run, model) -> float | None:
    """The student's accuracy on the run's hold-out, or None without one."""
    if run.holdout_set is None:
        return None
    spec, s = run.recipe.student, run.recipe.schedule
    return evaluate(model, run.data.eval_loader(run.holdout_set, spec.modality), spec.modality, run.device,
                    s.channels_last, s.precision)


def deliver(scratch: dict, distilled: dict, num_holdout: int) -> dict:
    """The delivery record: which student (``distilled`` unless it scored lower on the hold-out), and why."""
    d, s = distilled["holdout_acc"], scratch["holdout_acc"]
    chosen = "distilled" if d >= s else "scratch"
    margin = 100 * (d - s)
    if chosen == "distilled":
        reason = (f"the distilled student scored {100 * d:.1f}% on the hold-out of {num_holdout} training samples no "
                  f"student trained on, the scratch student {100 * s:.1f}% ({margin:+.1f} points)")
    else:
        reason = (f"distillation declined: on the hold-out of {num_holdout} training samples no student trained on "
                  f"the distilled student scored {100 * d:.1f}%, the scratch student {100 * s:.1f}% ({margin:+.1f} "
                  f"points, noise ±{100 * noise_points(s, num_holdout):.1f}); `pldistill calibrate RECIPE` tries smaller "
                  "weights and other stage pairs")
    winner = distilled if chosen == "distilled" else scratch
    return {"student": chosen, "test_acc": winner["test_acc"], "gain": winner["test_acc"] - scratch["test_acc"],
            "holdout_acc": {"scratch": s, "distilled": d}, "num_holdout": num_holdout, "reason": reason}


def refitted(decision: dict, scratch: dict, distilled: dict) -> dict:
    """``decision`` (``deliver``'s, on the deciding students) applied to the students retrained on the whole split.

    The deciding students' test accuracies stay in the record (``decided_on``): what
    the run would have delivered without ``student.refit``.
    """
    winner = distilled if decision["student"] == "distilled" else scratch
    return {**decision, "test_acc": winner["test_acc"], "gain": winner["test_acc"] - scratch["test_acc"],
            "refit": True, "decided_on": {"test_acc": decision["test_acc"], "gain": decision["gain"]},
            "reason": decision["reason"] + f"; both students then trained again on the whole training split "
                                           f"(student.refit), and the whole-split {decision['student']} student is delivered"}
