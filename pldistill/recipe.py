"""Recipes: YAML → typed, validated, frozen objects. The only module that parses YAML.

A recipe is data: ``yaml.safe_load`` builds plain dicts, lists and scalars
(no tags that import or call code), and pydantic checks every key and type
against the classes below. Every problem is reported before any work starts as
``RecipeError("<file>: <dotted.key>: <what is wrong>")``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model, field_validator, model_validator

from .data.registry import data_kinds, data_union
from .errors import RecipeError
from .losses.registry import LossSpec, all_losses, loss_names, loss_spec
from .model_names import UnknownModelError, check_model_name
from .recipe_compose import CompositionError, apply_override, compose, parse_override
from .section import Section
from .data.views import CACHE_VIEWS


DataConfig = data_union()  # every data kind in pldistill/data/, chosen by data.kind


class ModelSpec(Section):
    """A timm model by name and the one modality it sees."""

    model: str
    modality: str
    weights: str | None = Field(None, description="local state-dict file; never downloaded")

    @field_validator("model")
    @classmethod
    def _known_to_timm(cls, name: str) -> str:
        try:
            check_model_name(name)
        except UnknownModelError as err:
            raise ValueError(str(err)) from None
        return name


class TeacherSpec(ModelSpec):
    """The teacher: trained here on the privileged modality, or used as-is from local weights."""

    train: bool = Field(True, description="false: use 'weights' as they are (a teacher trained elsewhere)")
    data: DataConfig | None = Field(
        None, description="domain transfer: train the teacher on this data (its source domain) instead of 'data'"
    )
    modality_dropout: float = Field(
        0.0, ge=0, lt=1, description="a teacher on a stack (data.stack): while it trains, each part of each "
        "sample is zeroed with this probability, never all parts, so its features also work from each part alone "
        "(ModDrop; engine/modality_dropout.py); 0: off"
    )

    @model_validator(mode="after")
    def _as_is_needs_weights(self) -> "TeacherSpec":
        if not self.train and self.modality_dropout:
            raise ValueError("modality_dropout acts while the teacher trains; train: false uses it as it is")
        if not self.train and self.weights is None:
            raise ValueError("train: false uses the teacher as it is, so it needs 'weights' (a local file)")
        if not self.train and self.data is not None:
            raise ValueError("train: false uses the teacher as it is, so it cannot be trained on 'data'; remove one")
        return self


class StudentSpec(ModelSpec):
    """The student: trained from the same initial weights with CE alone (scratch) and with distillation."""

    mixup: float = Field(
        0.0, ge=0, description="α of Beta(α, α): every student (scratch and distilled) trains on jointly mixed "
        "batches, one partner and one λ for every modality of a sample, so a teacher sees the mixed sample its "
        "student sees (engine/mixup.py; STKD needs it); 0: off"
    )
    holdout: float = Field(
        0.0, ge=0, lt=1, description="a class-stratified fraction of the training split that no student trains on "
        "(teachers still train on all of it): after training, the distilled student is delivered only if it scores "
        "at least the scratch student's accuracy on it, otherwise the scratch student is, and the run says why "
        "(stages/delivery.py; the test set never chooses); 0: off, the distilled student is delivered"
    )
    refit: bool = Field(
        True, description="with 'holdout': the students trained without the hold-out only decide which kind is "
        "delivered; the scratch and distilled students then train again on the whole training split, and the "
        "whole-split one of the chosen kind is delivered (the run's tables are those of a run without 'holdout'; two "
        "more students); false: the deciding students are delivered, each trained on less data"
    )


class LayerPair(Section):
    """Teacher and student stage indices (timm ``feature_info`` order; -1 = last)."""

    teacher: int
    student: int


class LossEntry(Section):
    """One distillation loss in a recipe: what every loss shares; each loss adds its own keys (its params)."""

    name: str = Field(description="a registered loss: docs/reference/losses.md lists them and their own keys")
    weight: float = Field(gt=0, description="the loss's weight in the total (γ for SP), or with 'relative' a "
                          "multiple of CE's gradient")
    relative: bool = Field(
        False, description="true: 'weight' is a multiple of cross-entropy's gradient norm on the student, measured "
        "on the first distill.calibration_steps batches and then fixed, so it means the same for any pair of "
        "models, stage and batch size; false: the absolute weight (the paper's γ for SP)"
    )
    rebalance: Literal["once", "every_epoch"] = Field(
        "once", description="with 'relative': the weight is set on the calibration steps and then fixed (once), "
        "or set again on every epoch's first distill.probe_steps batches, holding the term at its multiple of "
        "CE's gradient as CE's gradient shrinks (every_epoch)"
    )
    warmup_epochs: float = Field(
        0.0, ge=0, description="the weight ramps linearly from 0 to its full value over this many epochs (as DKD's "
        "warm-up), so a student that starts at chance learns its labels before the term steers it; 0: full weight "
        "from the first step"
    )
    pairs: list[LayerPair] | Literal["auto"] = Field(
        default_factory=list, description="layer pairs, or 'auto': 3 pairs spread by relative depth"
    )
    pool: bool = Field(False, description="compare globally average-pooled embeddings (b × c), not whole maps")
    project: bool = Field(
        False, description="pass the student's features through a learned 1×1 projector (training only) before "
        "the loss, so the loss does not constrain the tapped layer itself (losses/projector.py)"
    )
    scope: Literal["local", "global"] = Field(
        "local", description="relational losses under torchrun: relate each process's own batch (local, the "
        "paper's loss at the per-process batch) or the global batch gathered from every process (global)"
    )

    @property
    def spec(self) -> LossSpec:
        return loss_spec(self.name)

    def params(self) -> dict[str, Any]:
        """The loss's own keys and values (e.g. KD's temperature), as its function takes them."""
        return {k: getattr(self, k) for k in self.spec.params.model_fields}

    @model_validator(mode="after")
    def _pairs_fit_the_loss(self) -> "LossEntry":
        spec = self.spec
        on_logits = spec.inputs == "logits"
        if on_logits and self.pairs:
            raise ValueError(f"{self.name!r} compares logits; remove its 'pairs'")
        if self.pool and not spec.poolable:
            raise ValueError(f"'pool' applies to {loss_names(lambda s: s.poolable)}; {self.name!r} needs "
                             + ("logits" if on_logits else "spatial maps"))
        if spec.inputs != "features" and self.project:
            raise ValueError(f"'project' applies to feature losses; {self.name!r} compares {spec.inputs}")
        if not on_logits and not self.pairs:
            raise ValueError(f"{self.name!r} needs at least one layer pair, e.g. pairs: [{{teacher: -1, student: -1}}]")
        if self.rebalance == "every_epoch" and not self.relative:
            raise ValueError(f"{self.name!r}: 'rebalance: every_epoch' keeps a weight relative to CE; add "
                             "'relative: true' or remove 'rebalance'")
        if self.scope == "global" and not spec.relational:
            raise ValueError(f"'scope: global' applies to the relational losses {loss_names(lambda s: s.relational)}; "
                             f"{self.name!r} is a mean over samples, which gradient averaging across processes "
                             "already makes global")
        return self


def _entry_model(spec: LossSpec) -> type[LossEntry]:
    """``LossEntry`` plus the loss's own keys, tagged by its name (one branch of the recipe's union)."""
    own = {k: (f.annotation, f) for k, f in spec.params.model_fields.items()}
    return create_model(f"{spec.display}Entry", __base__=LossEntry, name=(Literal[spec.name], ...), **own)


# The recipe's loss entries: one branch per registered loss, chosen by ``name``.
LossEntries = Annotated[Union[tuple(_entry_model(s) for s in all_losses().values())], Field(discriminator="name")]
_LOSS_ENTRY = TypeAdapter(LossEntries)


def loss_entry(raw: dict) -> LossEntry:
    """Validate one ``distill.losses`` entry on its own (e.g. ``{name: kd, weight: 1}``)."""
    return _LOSS_ENTRY.validate_python(raw)


class Health(Section):
    """The health check of every distilled student against the scratch student, epoch by epoch (engine/health.py)."""

    dominance: float = Field(10.0, gt=0, description="a term whose weighted gradient is this many times CE's "
                             "(on the calibration steps, or on a later epoch's probe steps) is reported")
    ce_margin: float = Field(0.25, ge=0, description="training CE this fraction above the scratch student's, "
                             "for 'patience' epochs in a row, is reported")
    acc_points: float = Field(5.0, ge=0, description="test accuracy this many points below the scratch "
                              "student's, for 'patience' epochs in a row, is reported (never acted on)")
    patience: int = Field(3, gt=0, description="epochs in a row before a trailing student is reported")
    on_harm: Literal["warn", "stop", "lower"] = Field(
        "warn", description="on a dominating term or a trailing training CE: only report it (warn), end the "
        "stage (stop), or multiply every distillation weight by lower_factor (lower)"
    )
    lower_factor: float = Field(0.1, gt=0, lt=1)


class Distill(Section):
    losses: list[LossEntries] = Field(min_length=1)
    same_modality_control: bool = Field(
        True,
        description="also distil from a teacher of the same model and budget trained on the student's modality; "
        "the difference is the privileged gain",
    )
    instance_controls: bool = Field(
        False,
        description="also distil from the same teacher with shuffled pairing (it reads another training sample of "
        "the same class) and from its per-class mean outputs; distilled minus each is the instance gain "
        "(docs/controls.md)",
    )
    teacher_cache: bool = Field(
        False,
        description="run the frozen teacher once per augmented view of each training sample and read its tapped "
        "features from an HDF5 file while the student trains on the same views (docs/reliability.md)",
    )
    teacher_cache_views: int | None = Field(
        None, ge=1, le=256,
        description="views cached per training sample; each epoch the student draws one of them (default: "
        f"{CACHE_VIEWS} with data.augment on, 1 without)",
    )
    teacher_cache_precision: Literal["float16", "float32"] = Field(
        "float16", description="how the cached teacher outputs are stored (read back as float32)"
    )
    calibration_steps: int = Field(
        10, gt=0, description="the first training steps on which relative weights are set from the ratio of "
        "gradient norms (and every term's effective ratio to CE is measured)"
    )
    probe_steps: int = Field(
        2, ge=0, description="the first steps of every later epoch on which each term's gradient ratio to CE is "
        "measured again (grad_ratio_epoch/ in the history; the health check reads it); 0: never"
    )
    conflicts: Literal["keep", "project", "measure"] = Field(
        "keep", description="project: on every step, the part of the distillation terms' gradient on the student "
        "that opposes CE's is removed (one-sided PCGrad, engine/conflict.py), so to first order distillation never "
        "raises the batch's CE; measure: only record how often it opposes CE (conflict/ in the history); both cost one "
        "more backward pass per step"
    )
    health: Health = Health()


class Schedule(Section):
    epochs: int = Field(gt=0)
    teacher_epochs: int | None = Field(None, gt=0, description="defaults to epochs")
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.05, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    warmup_epochs: float = Field(1.0, ge=0, description="linear LR warm-up before cosine decay")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; off when null")
    channels_last: bool = True
    checkpoint_every: int = Field(1, gt=0, description="epochs between resumable training-state checkpoints")
    num_workers: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="forward passes under autocast: bf16 (CPU or GPU) or fp16 (CUDA, with loss scaling); "
        "losses stay float32"
    )


class Logging(Section):
    wandb: Literal["offline", "online", "disabled"] = "offline"
    project: str = "pldistill"
    runs_dir: str = "runs"
    probe_size: int = Field(256, ge=0, description="validation samples for alignment metrics each epoch; 0 = off")
    probe_knn: int = Field(10, gt=0, description="k of the mutual k-NN overlap")
    unbiased_cka: bool = Field(False, description="CKA with the unbiased HSIC estimator (Song et al. 2012)")

    @model_validator(mode="after")
    def _probe_fits_knn(self) -> "Logging":
        if 0 < self.probe_size <= self.probe_knn:
            raise ValueError(f"probe_size ({self.probe_size}) must exceed probe_knn ({self.probe_knn}), or be 0")
        return self


# Recipe.teacher_hash hashes every field of data, teacher and schedule (and the seed) except these,
# which cannot shape a trained teacher: bookkeeping, or where and how fast the same training runs
# (floating-point rounding, which loader worker draws which augmentation), never what it trains on or
# how. tests/test_teacher_hash.py makes every new field pick a side. (Replacing the include-list this
# was before invalidated the teachers cached until then, once.)
TEACHER_HASH_EXCLUDES: dict[str, dict[str, str]] = {
    "data": {
        "cache_dir": "where rendered samples are kept on disk, not what they are",
        "size_mismatch": "refuse only stops data that resize would train on: a run that starts reads the same",
        "privileged": "which modalities the student may not take; the teacher reads its own either way",
        "stack": "replaced by the one stack the teacher reads, if any: other stacks never reach its loader",
    },
    "teacher": {
        "train": "only trained teachers are cached (train: false uses the weights as they are)",
        "data": "a source-domain teacher is hashed with that data as 'data' (see stages.teacher)",
    },
    "schedule": {
        "epochs": "replaced by the teacher's own count, teacher_epochs or epochs",
        "teacher_epochs": "the same",
        "checkpoint_every": "when resumable state is saved; training goes on the same",
        "num_workers": "how many processes load the same batches",
        "device": "where it trains, not what: 'auto' resolves per machine",
        "channels_last": "the memory layout of the same tensors",
    },
}


class Recipe(Section):
    name: str
    seed: int = 0
    data: DataConfig
    teacher: TeacherSpec
    student: StudentSpec
    distill: Distill
    schedule: Schedule
    logging: Logging = Logging()

    def teacher_hash(self) -> str:
        """Hash of everything that can shape the teacher: equal hash → reusable teacher."""
        skip = {section: set(fields) for section, fields in TEACHER_HASH_EXCLUDES.items()}
        s, stack = self.schedule, self.data.stack
        keyed = {
            "data": {**self.data.model_dump(exclude=skip["data"]),
                     "stack": {m: stack[m] for m in stack if m == self.teacher.modality}},
            # modality dropout only shapes a teacher on a stack (a control's one-modality teacher ignores it);
            # at 0 it is left out, so teachers trained before the key existed keep their hash
            "teacher": self.teacher.model_dump(exclude=skip["teacher"] | (
                set() if self.teacher.modality_dropout and self.teacher.modality in stack else {"modality_dropout"})),
            "seed": self.seed,
            "schedule": {**s.model_dump(exclude=skip["schedule"]), "epochs": s.teacher_epochs or s.epochs},
        }
        return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _suggest(loc: tuple, root: type[BaseModel]) -> str:
    """'did you mean' for an unknown key: close matches among the allowed fields."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        inner = getattr(ann, "__args__", None)
        candidates = [ann, *(inner or ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_error(path: Path, err: dict, root: type[BaseModel] | None = None, sources=None) -> str:
    """One line: '<where the key was set>: <dotted.key>: <what is wrong>'."""
    loc = _without_loss_branch(tuple(err["loc"]))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found") and "name" in err.get("ctx", {}).get(
            "discriminator", ""):
        where = sources.of(loc) if sources else path
        key = ".".join(str(p) for p in (*loc, "name"))
        if err["type"] == "union_tag_not_found":
            return f"{where}: {key}: required key is missing"
        got = err["ctx"]["tag"]
        close = difflib.get_close_matches(str(got), list(all_losses()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: {key}: unknown loss {got!r}{hint}; known losses: {sorted(all_losses())}"
    kinds = data_kinds()
    if len(loc) >= 2 and loc[1] in kinds and loc[0] == "data":  # pydantic names the union's branch
        loc = ("data",) + loc[2:]
        if err["type"] == "extra_forbidden":
            where = sources.of(loc) if sources else path
            close = _suggest(loc[1:], kinds[err["loc"][1]])
            return f"{where}: {'.'.join(str(p) for p in loc)}: unknown key{close}"
    path = sources.of(loc) if sources else path
    key = ".".join(str(p) for p in loc) or "<top level>"
    if err["type"] == "extra_forbidden":
        return f"{path}: {key}: unknown key{_suggest(loc, root or Recipe)}"
    if err["type"] == "missing":
        return f"{path}: {key}: required key is missing"
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):  # a data section's kind (its discriminator)
        return f"{path}: {key}.kind: {_kind_problem(err, loc)}"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"  # a whole section says nothing new
    return f"{path}: {key}: {msg}{shown}"


def _without_loss_branch(loc: tuple) -> tuple:
    """pydantic puts the chosen loss's name in the path (distill.losses.0.sp.weight): drop it."""
    for i in range(len(loc) - 1):
        if loc[i] == "losses" and isinstance(loc[i + 1], int) and i + 2 < len(loc) and loc[i + 2] in all_losses():
            return loc[: i + 2] + loc[i + 3:]
    return loc


def _kind_problem(err: dict, loc: tuple) -> str:
    """What is wrong with a ``kind``, and the kinds that may go there."""
    known = err.get("ctx", {}).get("expected_tags")
    if known is None and loc in (("data",), ("teacher", "data")):
        known = ", ".join(repr(k) for k in data_kinds())
    choices = f"; use one of {known}" if known else ""
    if err["type"] == "union_tag_not_found":
        return f"required key is missing{choices}"
    return f"{err['ctx']['tag']!r} is not a data kind that fits here{choices}"


def parse_recipe(raw: Any, source: str | Path = "<recipe>", sources=None) -> Recipe:
    """Validate an already-parsed mapping; cross-field checks after the types.

    ``sources`` (from composition) says which file or command line set each key,
    so errors name the place to fix rather than the top recipe.
    """
    path = Path(source)
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: the recipe must be a mapping of keys, got {type(raw).__name__}")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError("\n".join(format_error(path, e, sources=sources) for e in exc.errors())) from None

    def at(*loc) -> str | Path:  # the file (or command line) that set this key
        return sources.of(loc) if sources else path

    try:  # real datasets: reads the files' headers (missing files fail here, before training)
        available = recipe.data.modalities
    except (OSError, ValueError, KeyError) as exc:
        raise RecipeError(f"{at('data')}: data: {' '.join(str(exc).split())}") from None
    for role in ("teacher", "student"):
        modality = getattr(recipe, role).modality
        if modality not in available:
            close = difflib.get_close_matches(modality, available, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(
                f"{at(role, 'modality')}: {role}.modality: the dataset {recipe.data.kind!r} has no modality "
                f"{modality!r}{hint}; it has {available}"
            )
    unknown = [m for m in recipe.data.privileged if m not in available]
    if unknown:
        raise RecipeError(f"{at('data', 'privileged')}: data.privileged: {unknown} are not modalities of {recipe.data.kind!r} ({available})")
    if recipe.student.modality in recipe.data.all_privileged:
        raise RecipeError(
            f"{at('student', 'modality')}: student.modality: {recipe.student.modality!r} is privileged (data.privileged: "
            f"{recipe.data.privileged}): it does not exist at inference, so the student cannot take it as input; "
            f"give the student one of {[m for m in available if m not in recipe.data.all_privileged]}, or remove "
            f"{recipe.student.modality!r} from data.privileged if it really is available at inference"
        )
    if recipe.teacher.data is not None:
        _check_teacher_domain(recipe, at("teacher", "data"))
    if recipe.teacher.modality_dropout and recipe.teacher.modality not in recipe.data.stack:
        raise RecipeError(
            f"{at('teacher', 'modality_dropout')}: teacher.modality_dropout zeroes whole parts of a stacked input, "
            f"but teacher.modality {recipe.teacher.modality!r} is not a stack; stack two modalities "
            "(data.stack: {rgbd: [rgb, depth]}) and give the teacher that name, or remove the key"
        )
    _check_mixup(recipe, at)
    views = recipe.distill.teacher_cache_views
    if recipe.distill.teacher_cache and views is not None and views > 1 and not recipe.data.augment.active():
        raise RecipeError(
            f"{at('distill', 'teacher_cache_views')}: distill.teacher_cache_views: {views} views of each sample "
            "would all be the same image, because data.augment is off; remove the key (1 view without "
            "augmentation) or turn augmentation on"
        )
    if recipe.distill.instance_controls:
        check_shuffleable(recipe, f"{at('distill', 'instance_controls')}: distill.instance_controls",
                          "or set distill.instance_controls: false")
    recipe = _resolve_auto_pairs(recipe)
    from .recipe_checks import check_recipe  # imports this module: a cycle at import time

    check_recipe(recipe, path)
    return recipe


def _check_mixup(recipe: Recipe, at) -> None:
    """Losses defined on mixed samples need the mix; a mixed teacher input cannot come from the outputs cache."""
    mixing = [loss.name for loss in recipe.distill.losses if loss.spec.needs_mixup]
    if mixing and not recipe.student.mixup:
        raise RecipeError(
            f"{at('student', 'mixup')}: {mixing} distil on jointly mixed samples, but student.mixup is 0; "
            "set student.mixup (α of Beta(α, α), e.g. 1.0)"
        )
    if recipe.student.mixup and recipe.distill.teacher_cache and recipe.distill.losses:
        raise RecipeError(
            f"{at('distill', 'teacher_cache')}: student.mixup shows the teacher mixed samples, which its cached "
            "outputs never saw; set distill.teacher_cache: false, or student.mixup: 0"
        )


def check_shuffleable(recipe: Recipe, where: str, alternative: str = "") -> None:
    """Shuffled pairing moves the teacher's input to another sample: the student must read none of it."""
    stack, teacher, student = recipe.data.stack, recipe.teacher.modality, recipe.student.modality
    shared = set(stack.get(teacher, [teacher])) & set(stack.get(student, [student]))
    if shared:
        raise RecipeError(f"{where}: shuffled pairing gives the teacher another sample's {teacher!r}, but the "
                          f"student reads {sorted(shared)} of it too; use a teacher on a modality the student "
                          f"does not read{', ' + alternative if alternative else ''} (shuffling a same-modality "
                          "teacher is the same-modality control)")


def _check_teacher_domain(recipe: Recipe, where) -> None:
    """A teacher trained on other data must read the same modality and predict the same classes."""
    source, target, m = recipe.teacher.data, recipe.data, recipe.teacher.modality
    try:
        available = source.modalities
    except (OSError, ValueError, KeyError) as exc:
        raise RecipeError(f"{where}: teacher.data: {' '.join(str(exc).split())}") from None
    if m not in available:
        raise RecipeError(f"{where}: teacher.modality: the teacher's data {source.kind!r} has no modality {m!r}; "
                          f"it has {available}")
    if source.classes != target.classes:
        raise RecipeError(
            f"{where}: teacher.data: its classes {source.classes} differ from data's {target.classes}; a teacher "
            "trained in another domain must predict the same classes, in the same order (or use teacher.weights "
            "with teacher.train: false and a feature loss)"
        )
    if source.channels(m) != target.channels(m) or source.input_size(m) != target.input_size(m):
        raise RecipeError(
            f"{where}: teacher.data: {m!r} is {source.channels(m)} channels at {source.input_size(m)} px there but "
            f"{target.channels(m)} channels at {target.input_size(m)} px in data; the teacher reads both, so they "
            "must match (set image_size / depth_encoding alike)"
        )


@functools.lru_cache(maxsize=None)
def _stage_count(model_name: str) -> int:
    # Built on the meta device: no memory, no weights, just the stage layout.
    import torch

    from .models import create_model

    with torch.device("meta"):
        return len(create_model(model_name).feature_info)


def auto_pairs(teacher_stages: int, student_stages: int, count: int = 3) -> list[LayerPair]:
    """``count`` pairs at matching relative depths, ending with last ↔ last."""
    count = min(count, teacher_stages, student_stages)
    return [
        LayerPair(
            teacher=math.ceil(k / count * teacher_stages) - 1,
            student=math.ceil(k / count * student_stages) - 1,
        )
        for k in range(1, count + 1)
    ]


def _resolve_auto_pairs(recipe: Recipe) -> Recipe:
    if not any(loss.pairs == "auto" for loss in recipe.distill.losses):
        return recipe
    n_t, n_s = _stage_count(recipe.teacher.model), _stage_count(recipe.student.model)
    losses = [
        loss.model_copy(update={"pairs": auto_pairs(n_t, n_s)}) if loss.pairs == "auto" else loss
        for loss in recipe.distill.losses
    ]
    return recipe.model_copy(update={"distill": recipe.distill.model_copy(update={"losses": losses})})


def read_yaml(path: Path, what: str = "recipe") -> Any:
    """Plain data from a YAML file (safe loader: no tags, nothing executes)."""
    if not path.is_file():
        raise RecipeError(f"{path}: no such {what} file")
    try:
        text = path.read_text()
        raw = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a text file; a {what} is YAML text") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # one line: yaml's message spans several
        raise RecipeError(f"{path}: not valid YAML (only plain data is allowed): {detail}") from None
    if raw is None:
        said = "is empty" if not text.strip() else "holds only comments"
        hint = "; start from a copy of recipes/depth_to_rgb.yaml" if what == "recipe" else ""
        raise RecipeError(f"{path}: the {what} file {said}{hint}")
    return raw


def compose_recipe(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Any, Any]:
    """The raw recipe after its ``base:`` chain and ``key=value`` overrides, and who set each key."""
    try:
        raw, sources = compose(Path(path), read_yaml)
        for text in overrides:
            if not isinstance(raw, dict):
                break  # parse_recipe reports the non-mapping recipe
            keys, value = parse_override(text)
            raw = apply_override(raw, keys, value, sources)
    except CompositionError as exc:
        raise RecipeError(str(exc)) from None
    return raw, sources


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, compose (``base:``, then ``overrides``) and validate a recipe; never executes anything in it."""
    raw, sources = compose_recipe(path, overrides)
    return parse_recipe(raw, Path(path), sources)
