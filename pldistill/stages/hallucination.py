"""Modality hallucination: the privileged teacher's features, made computable from the student's input.

Hoffman, Gupta & Darrell, *Learning with Side Information through Modality
Hallucination*, CVPR 2016. A depth network is trained on depth; a second
network, the *hallucination network*, sees only RGB and is trained so that its
mid-level activations reproduce the depth network's on the same image,

    L_hall = ‖ σ(A_l^d(x*)) − σ(A_l^h(x)) ‖²₂          (their eq. 1, l = pool5, σ a sigmoid),

together with its own classification loss; at test time only RGB is needed.
Here the hallucination network is the teacher's model on the student's
modality, trained for the teacher's budget with CE plus the loss entries a
comparison row gives (``hallucinate:``, e.g. a FitNets hint on the last stage)
against the frozen privileged teacher; it then teaches the student in the
privileged teacher's place, with the row's own losses. It is the
same-modality control's network and budget plus the privileged teacher's
features, so distilling from it minus distilling from the control teacher is
what the hallucinated features add.

Not established from the paper, and chosen here: their loss compares sigmoid
activations at one layer with a fixed weight; here the row picks the loss
(FitNets' learned 1×1 regressor and MSE by default in the comparison file), its
stage and its weight (relative to CE). Their three-stream RGB + hallucination
+ depth ensemble is not built: the student is what is deployed.
"""

from __future__ import annotations

from ..models import TappedModel, count_parameters
from ..terms import build_terms
from .context import Run

FOLDER = "teacher_hallucination"


def hallucination_teacher(run: Run, teacher: TappedModel, losses, step: str = "") -> tuple[Run, TappedModel, dict]:
    """The teacher's model trained on the student's modality to reproduce ``teacher`` through ``losses``.

    Returns the sub-run it lives in (its recipe's teacher reads the student's modality, so a student
    distilled from it is fed that modality), the network, and its results entry.
    """
    r = run.recipe
    spec = r.teacher.model_copy(update={"modality": r.student.modality})
    sub = run.sub_run(r.model_copy(update={"teacher": spec}), run.run_dir / FOLDER, "hallucination/")
    student_reference, sub.scratch_history = sub.scratch_history, None  # no reference for a teacher-sized network
    channels = lambda stage: teacher.model.feature_info[stage]["num_chs"]  # the same model: the same widths
    built = build_terms(losses, channels, channels, classes=run.num_classes)
    model = sub.build(spec, built.student_stages)
    done = sub.folder.finished("teacher")
    if done is not None:
        if "state_dict" in done:
            model.model.load_state_dict(done["state_dict"])
        print(f"{step}hallucination network: already trained in this run folder")
        sub.scratch_history = student_reference  # the students it teaches are checked against scratch
        return sub, model, done["result"]
    epochs = r.schedule.teacher_epochs or r.schedule.epochs
    print(f"{step}hallucination network {spec.model} on {spec.modality!r} for {epochs} epochs, reproducing the "
          f"{r.teacher.modality!r} teacher")
    result = sub.fit(model, spec.modality, "teacher", epochs, r.seed, teacher=run.tap(teacher.model, built.teacher_stages),
                     teacher_modality=r.teacher.modality, terms=built.terms)
    info = {"model": spec.model, "modality": spec.modality, "test_acc": result.test_acc, "seconds": result.seconds,
            "reproduces": r.teacher.modality, "losses": [t.key for t in built.terms], "history": result.history,
            "params": count_parameters(model.model)}
    sub.folder.finish("teacher", model, info)
    sub.scratch_history = student_reference  # the students it teaches are checked against scratch
    return sub, model, info
