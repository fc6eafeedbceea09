"""Cross-field recipe checks: does each loss fit the layers, batches and label spaces it is given?

Run at load, after the types are valid and before anything trains. The model
layouts come from a forward pass on the meta device (no memory, no weights),
so a recipe that cannot work fails in a second with the key to change, instead
of after the teacher has trained for an hour.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import RecipeError
from .losses.registry import loss_names, loss_spec
from .models import (WeightsError, checked_state, classifier_outputs, create_model, feature_shapes, read_state_dict,
                     takes_vectors)
from .nets import net_names


def check_recipe(recipe, path: Path) -> None:
    """Every loss against the models' stage layouts, the batch size and the label spaces (a ``Recipe``)."""
    _check_model_inputs(recipe, path)
    _check_weights(recipe, path)
    shapes = {
        role: feature_shapes(spec.model, recipe.data.channels(spec.modality), recipe.data.input_size(spec.modality))
        for role, spec in (("teacher", recipe.teacher), ("student", recipe.student))
    }
    for i, loss in enumerate(recipe.distill.losses):
        where = f"{path}: distill.losses.{i}"
        spec = loss_spec(loss.name)
        minimum = spec.min_batch
        if recipe.schedule.batch_size < minimum:
            raise RecipeError(
                f"{where}: {spec.display} compares samples within a batch and needs batches of at least "
                f"{minimum}; schedule.batch_size is {recipe.schedule.batch_size}"
            )
        for j, pair in enumerate(loss.pairs):
            for role, layout in shapes.items():
                index, n = getattr(pair, role), len(layout)
                if not -n <= index < n:
                    model = getattr(recipe, role).model
                    raise RecipeError(
                        f"{where}.pairs.{j}.{role}: stage {index} is out of range; "
                        f"{model} has {n} stages (use 0..{n - 1} or -1..-{n})"
                    )
            if spec.spatial:
                _check_spatial_pair(recipe, spec, pair, shapes, f"{where}.pairs.{j}")
        if spec.inputs in ("logits", "outputs"):
            _check_label_space(recipe, spec, where)
        if spec.views is not None:
            _check_views(recipe, spec, where)
        if spec.inputs == "privileged" and recipe.distill.teacher_cache:
            raise RecipeError(f"{where}: {spec.phrase} reads the privileged input itself, which the teacher cache "
                              "never loads; set distill.teacher_cache: false")
        if spec.trains_teacher and (recipe.distill.teacher_cache or not recipe.teacher.train):
            why = ("its cached outputs cannot learn; set distill.teacher_cache: false" if recipe.distill.teacher_cache
                   else "a teacher used as it is (teacher.train: false) is never trained here")
            raise RecipeError(f"{where}: {spec.phrase} trains the teacher together with the student, and {why}")


def _check_views(recipe, spec, where: str) -> None:
    """A loss's batch views (SSKD's rotations) must apply to what the teacher and the student read."""
    kinds = recipe.data.layout()[0]
    for role in ("teacher", "student"):
        modality = getattr(recipe, role).modality
        kind = kinds[modality].kind
        if kind not in spec.views.kinds:
            raise RecipeError(
                f"{where}: {spec.display} trains on {spec.views.name} of every sample, applied alike to the teacher's "
                f"and the student's modality, but {role}.modality {modality!r} is a {kind} modality ({spec.views.why}); "
                f"{spec.views.name} apply to {list(spec.views.kinds)} modalities; use another loss"
            )
    if recipe.distill.teacher_cache:
        raise RecipeError(f"{where}: {spec.display} shows the teacher {spec.views.name} of each batch, which its "
                          "cached outputs never saw; set distill.teacher_cache: false")
    if recipe.student.mixup:
        raise RecipeError(f"{where}: {spec.display}'s {spec.views.name} and student.mixup would both reshape each "
                          "batch; use one of them (student.mixup: 0)")
    others = {loss_spec(e.name).views.name for e in recipe.distill.losses if loss_spec(e.name).views is not None}
    if len(others) > 1:
        raise RecipeError(f"{where}: the losses ask for different batch views {sorted(others)}; use one of them")


def _check_spatial_pair(recipe, spec, pair, shapes: dict, where: str) -> None:
    """Spatial losses (AT, FitNets) compare where in the image a layer responds: both sides need real maps."""
    what = spec.phrase
    for role, layout in shapes.items():
        index = getattr(pair, role)
        shape = layout[index]
        model = getattr(recipe, role).model
        sizes = ", ".join(f"{k}: {'×'.join(map(str, s[1:]))}" for k, s in enumerate(layout) if len(s) == 3)
        if len(shape) != 3:
            raise RecipeError(
                f"{where}.{role}: {what} needs a (channels, height, width) feature map, but stage {index} of "
                f"{model} gives {shape}; use one of {_flat_losses()} for token or vector features"
            )
        if spec.needs_extent and shape[1] * shape[2] == 1:
            raise RecipeError(
                f"{where}.{role}: stage {index} of {model} is 1×1 at {recipe.data.input_size(getattr(recipe, role).modality)} px, so its "
                f"map is a constant and {what} would always be 0; pick a stage with a "
                f"spatial map (stage: size = {sizes}) or a larger data.image_size"
            )


def _flat_losses() -> list[str]:
    """Feature losses defined on any tensor (vectors, tokens), not only on spatial maps."""
    return loss_names(lambda s: s.inputs == "features" and not s.spatial)


def _check_label_space(recipe, spec, where: str) -> None:
    """Logit losses (KD) compare class probabilities: the teacher must predict the student's classes."""
    if recipe.teacher.train:
        return  # trained here, on the student's labels
    classes = recipe.data.classes
    outputs = classifier_outputs(recipe.teacher.model, read_state_dict(recipe.teacher.weights))
    if outputs != len(classes):
        teacher_has = "has no classifier" if outputs is None else f"predicts {outputs} classes"
        raise RecipeError(
            f"{where}: {spec.display} needs the teacher and the student to predict the same classes, but the teacher "
            f"(teacher.weights, used as-is with teacher.train: false) {teacher_has} and {recipe.data.kind} "
            f"has {len(classes)}; use a feature loss ({', '.join(loss_names(lambda s: s.inputs == 'features'))}) "
            "or train the teacher on these "
            "classes (teacher.train: true)"
        )


def _check_weights(recipe, path: Path) -> None:
    for role in ("teacher", "student"):
        spec = getattr(recipe, role)
        if spec.weights is None:
            continue
        try:
            with torch.device("meta"):  # the layout only: nothing is allocated or run
                model = create_model(spec.model, recipe.data.channels(spec.modality), len(recipe.data.classes),
                                     recipe.data.input_size(spec.modality))
            checked_state(model, spec.model, spec.weights, quiet=True)
        except WeightsError as err:
            raise RecipeError(f"{path}: {role}.weights: {err}") from None


def _check_model_inputs(recipe, path: Path) -> None:
    """A vector modality needs a vector model (pldistill/nets), an image-like one a timm model."""
    modalities = recipe.data.layout()[0]
    for role in ("teacher", "student"):
        spec = getattr(recipe, role)
        vector = modalities[spec.modality].kind == "vector"
        if vector and not takes_vectors(spec.model):
            raise RecipeError(
                f"{path}: {role}.model: {spec.modality!r} is a feature vector ({modalities[spec.modality].channels} "
                f"values, no height or width), which {spec.model!r} (a timm image model) cannot read; use one of "
                f"pldistill's vector models: {', '.join(net_names())}"
            )
        if takes_vectors(spec.model) and not vector:
            raise RecipeError(
                f"{path}: {role}.model: {spec.model!r} reads feature vectors, but {spec.modality!r} is "
                f"{modalities[spec.modality].kind}; use a timm model for it (e.g. resnet10t)"
            )
