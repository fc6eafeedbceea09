"""The student stage: the restricted-modality student, CE only (scratch) or CE + distillation from a teacher."""

from __future__ import annotations

import copy

import torch

from .. import distributed
from ..engine import seed_everything
from ..engine.mixup import JointMixup
from ..terms import DistillTerm, build_terms
from ..models import TappedModel, build_model, count_parameters
from ..probe import AlignmentProbe
from ..data.protocol import ModalityView
from .context import Run
from .controls import class_mean_outputs
from .delivery import holdout_accuracy
from .teacher import outputs_cache


def attach_probe(run: Run, teacher: TappedModel) -> None:
    """Measure every later student of ``run`` against ``teacher`` on a fixed validation slice, each epoch."""
    r = run.recipe
    if r.logging.probe_size == 0 or not distributed.is_main():  # rank 0 alone measures and logs
        return
    pairs = [(p.teacher, p.student) for loss in r.distill.losses for p in loss.pairs]
    run.probe = AlignmentProbe(
        run.test_set, teacher, r.teacher.modality, r.student.modality,
        list(dict.fromkeys(pairs)) or [(-1, -1)], r.logging.probe_size, r.logging.probe_knn,
        run.device, r.schedule.channels_last, r.logging.unbiased_cka,
        transform=run.data.eval_transform(list(dict.fromkeys([r.student.modality, r.teacher.modality]))),
        depth_encoding=r.data.depth_encoding,
    )


def _teacher_outputs(run: Run, teacher: TappedModel, signal: str):
    """What replaces the live teacher's forward pass, if anything: class means, or the outputs cache."""
    if signal == "class_mean":
        modality = run.recipe.teacher.modality
        view = ModalityView(run.train_set, [modality], run.data.eval_transform([modality]),
                            run.recipe.data.depth_encoding)
        return class_mean_outputs(teacher, view, run.num_classes, run.device)
    return outputs_cache(run, teacher, run.recipe.seed + 1) if run.recipe.distill.teacher_cache else None


def _fit_learned_parts_to_teacher(run: Run, teacher: TappedModel, terms: list[DistillTerm], step: str) -> None:
    """Learned loss parts that read the frozen teacher (SSKD's teacher SS head) are fitted before the student trains."""
    modality = run.recipe.teacher.modality
    for term in terms:
        fit_part = getattr(term.fn, "fit_to_teacher", None)
        if fit_part is None:
            continue
        teacher.to(run.device).eval()
        loader = run.data.train_loader([modality], run.recipe.seed + 2)

        def features(x, tap=term.teacher_tap):
            return teacher(x)[1][tap]

        losses = fit_part(features, (batch[modality].to(run.device) for batch in loader), run.device)
        print(f"{step}{term.key}: the teacher's part fitted on {modality!r} ({len(losses)} epochs, "
              f"loss {losses[0]:.3f} → {losses[-1]:.3f})")


def _joint_mixup(alpha: float, seed: int) -> JointMixup | None:
    return JointMixup(alpha, seed, distributed.rank()) if alpha else None


def student_channels(run: Run, stage: int) -> int:
    """Channels of a student stage, from timm's feature_info on the meta device (no memory, no weights)."""
    spec = run.recipe.student
    with torch.device("meta"):
        probe = build_model(spec.model, run.recipe.data.channels(spec.modality), run.num_classes,
                            image_size=run.recipe.data.input_size(spec.modality))
    return probe.feature_info[stage]["num_chs"]


def train_student(run: Run, kind: str, teacher: TappedModel | None = None, losses=None, step: str = "",
                  signal: str = "paired", mixup: float | None = None, distill=None) -> dict:
    """Train a student from the shared initial weights: CE only when ``teacher`` is None.

    ``losses`` defaults to the recipe's; a comparison passes each variant's (and its
    ``mixup``, student.mixup's α, which defaults to the recipe's, and its ``distill``
    section, whose health policy and calibration steps replace the recipe's).
    ``signal`` (``controls.py``) may replace the teacher's outputs by their
    class means; shuffled pairing is ``run``'s training set's own doing.
    The stage is named ``student_<kind>`` in the run folder and the logs.
    """
    r, spec = run.recipe, run.recipe.student
    losses = r.distill.losses if losses is None else losses
    terms: list[DistillTerm] = []
    student_stages: list[int] = []
    if teacher is not None:
        built = build_terms(losses, lambda stage: teacher.model.feature_info[stage]["num_chs"],
                            lambda stage: student_channels(run, stage),
                            lambda: r.data.channels(r.teacher.modality), classes=run.num_classes)
        terms, student_stages = built.terms, built.student_stages
        trained = any(t.trains_teacher for t in terms)  # C2KD trains a copy: the run's teacher stays as it was
        teacher = run.tap(copy.deepcopy(teacher.model) if trained else teacher.model, built.teacher_stages)
        _fit_learned_parts_to_teacher(run, teacher, terms, step)
    if run.scratch_history is None and kind != "scratch":  # e.g. a resumed comparison, its scratch cell done
        scratch = run.folder.finished("student_scratch")
        run.scratch_history = scratch["result"]["history"] if scratch is not None else None
    done = run.folder.finished(f"student_{kind}")
    if done is not None:
        print(f"{step}{kind} student: already trained in this run folder")
        if kind == "scratch":
            run.scratch_history = done["result"]["history"]
        return done["result"]
    seed_everything(r.seed + 1)  # both students start from the same weights
    model = run.build(spec, student_stages)
    if teacher is None:
        title = f"{step}{kind} student (CE only)"
    else:
        weighted = " + ".join(f"{loss.name}×{loss.weight:g}" + (" (relative to CE)" if loss.relative else "")
                              for loss in losses)
        title = f"{step}{kind} student (CE + {weighted})"
    if (spec.mixup if mixup is None else mixup):
        title += f", joint mixup α={spec.mixup if mixup is None else mixup:g}"
    print(f"{title}: {spec.model} on {spec.modality!r}")
    result = run.fit(
        model, spec.modality, f"student_{kind}", r.schedule.epochs, r.seed + 1,
        teacher=teacher,
        teacher_modality=r.teacher.modality,
        terms=terms,
        teacher_cache=_teacher_outputs(run, teacher, signal) if terms else None,
        epoch_metrics=run.probe.measure if run.probe else None,
        mixup=_joint_mixup(spec.mixup if mixup is None else mixup, r.seed + 1),
        settings=distill,
    )
    alignment = {k: v for k, v in result.history[-1].items() if k.startswith("align/")}
    if run.probe is not None and run.probe.snapshot is not None:
        run.probe.snapshot.save(run.run_dir / "alignment" / f"student_{kind}.npz")
    summary = {
        "model": spec.model,
        "modality": spec.modality,
        "losses": ["ce"] + [t.key for t in terms],
        "params": count_parameters(model.model),
        "test_acc": result.test_acc,
        "seconds": result.seconds,
        "alignment": alignment,
        "history": result.history,
    }
    if run.holdout_set is not None:  # student.holdout: what decides which student the run delivers
        summary["holdout_acc"] = holdout_accuracy(run, model)
    if terms:
        summary["health"] = result.health
    if kind == "scratch":
        run.scratch_history = result.history
    run.folder.finish(f"student_{kind}", model, summary)
    return summary
