"""The teacher hash covers every field that can shape a teacher; only an explicit list is left out.

Adding a field to Schedule, the teacher's spec or any data kind fails the first tests here until the field
is put on one side: into HASHED below (it can change how the teacher trains) or into
pldistill.recipe.TEACHER_HASH_EXCLUDES with the reason it cannot.
"""

import typing
from pathlib import Path

import pytest

from pldistill.recipe import TEACHER_HASH_EXCLUDES, Recipe, Schedule, TeacherSpec, load_recipe

FLAGSHIP = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"

DATA_COMMON = {"kind", "image_size", "augment", "depth_encoding"}
HASHED = {
    "schedule": {"batch_size", "lr", "weight_decay", "optimizer", "warmup_epochs", "grad_clip", "precision"},
    "teacher": {"model", "modality", "weights", "modality_dropout"},  # dropout: only on a stack, only when > 0
    "data": {  # per kind, on top of DATA_COMMON
        "synthetic_shapes": {"num_train", "num_test", "noise", "camouflage", "ambient", "contrast", "seed"},
        "nyu_depth_v2": {"path", "split_file", "train_split", "test_split", "classes_protocol"},
        "folders": {"root", "modalities_", "labels", "depth_scale", "train_split", "test_split"},
        "packed": {"train", "test"},
        "image_classes": {"root", "modality", "grayscale", "labels", "train_split", "test_split",
                          "limit_per_class", "test_limit_per_class", "subset_seed"},
        "dtd": {"root", "modality", "split_seed", "train_on"},
        "uci_mfeat": {"root", "views", "test_per_class", "train_per_class", "split_seed"},
        "speech_digits": {"root", "modality", "size", "duration", "n_fft", "fmax"},
        "sunrgbd": {"root", "depth", "classes_protocol", "test_list", "test_fraction", "split_seed", "max_depth"},
        "class_paired": {"primary", "partner", "pairing_seed"},
        "resolution_pairs": {"source", "modality", "factor", "blur", "noise"},
    },
}


def data_kinds() -> dict[str, type]:
    """Every member of the ``data`` union, by its ``kind`` (found through Recipe, wherever the classes live)."""
    annotation = Recipe.model_fields["data"].annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    members = typing.get_args(annotation)
    assert members, annotation
    return {typing.get_args(cls.model_fields["kind"].annotation)[0]: cls for cls in members}


def test_every_schedule_field_is_hashed_or_excluded():
    fields, hashed, excluded = set(Schedule.model_fields), HASHED["schedule"], set(TEACHER_HASH_EXCLUDES["schedule"])
    assert not hashed & excluded
    assert fields == hashed | excluded, f"put {sorted(fields - hashed - excluded)} on one side"


def test_every_teacher_field_is_hashed_or_excluded():
    fields, hashed, excluded = set(TeacherSpec.model_fields), HASHED["teacher"], set(TEACHER_HASH_EXCLUDES["teacher"])
    assert not hashed & excluded
    assert fields == hashed | excluded, f"put {sorted(fields - hashed - excluded)} on one side"


def test_every_field_of_every_data_kind_is_hashed_or_excluded():
    kinds = data_kinds()
    assert set(kinds) == set(HASHED["data"]), "a data kind came or went: list its hashed fields in HASHED"
    excluded = set(TEACHER_HASH_EXCLUDES["data"])
    for kind, cls in kinds.items():
        hashed = DATA_COMMON | HASHED["data"][kind]
        fields = set(cls.model_fields)
        assert not hashed & excluded, kind
        missing = fields - hashed - excluded
        assert not missing, f"data kind {kind!r}: put {sorted(missing)} on one side"
        assert hashed <= fields, f"data kind {kind!r}: {sorted(hashed - fields)} are gone; remove them here"


def test_every_exclusion_gives_its_reason():
    for section, fields in TEACHER_HASH_EXCLUDES.items():
        assert all(isinstance(why, str) and why for why in fields.values()), section


# -- the hash follows the sides ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flagship() -> Recipe:
    return load_recipe(FLAGSHIP)


def changed(recipe: Recipe, section: str, **update) -> Recipe:
    return recipe.model_copy(update={section: getattr(recipe, section).model_copy(update=update)})


SCHEDULE_CHANGES = {"batch_size": 32, "lr": 0.01, "weight_decay": 0.0, "optimizer": "sgd", "warmup_epochs": 0.0,
                    "grad_clip": 1.0, "precision": "bf16"}


@pytest.mark.parametrize("field", sorted(HASHED["schedule"]))
def test_a_hashed_schedule_field_changes_the_hash(flagship, field):
    assert getattr(flagship.schedule, field) != SCHEDULE_CHANGES[field]
    assert changed(flagship, "schedule", **{field: SCHEDULE_CHANGES[field]}).teacher_hash() != flagship.teacher_hash()


@pytest.mark.parametrize("update", [{"checkpoint_every": 5}, {"num_workers": 4}, {"device": "cpu"},
                                    {"channels_last": False}, {"teacher_epochs": 16}])
def test_an_excluded_schedule_field_keeps_the_hash(flagship, update):
    assert changed(flagship, "schedule", **update).teacher_hash() == flagship.teacher_hash()


def test_the_teachers_epoch_count_is_what_counts(flagship):
    assert flagship.schedule.teacher_epochs is None
    assert changed(flagship, "schedule", epochs=8).teacher_hash() != flagship.teacher_hash()
    assert changed(flagship, "schedule", teacher_epochs=8).teacher_hash() != flagship.teacher_hash()
    with_own = changed(flagship, "schedule", teacher_epochs=16)
    assert changed(with_own, "schedule", epochs=3).teacher_hash() == flagship.teacher_hash()


@pytest.mark.parametrize("update", [{"model": "resnet18"}, {"modality": "rgb"}, {"weights": "teacher.pt"}])
def test_a_hashed_teacher_field_changes_the_hash(flagship, update):
    assert changed(flagship, "teacher", **update).teacher_hash() != flagship.teacher_hash()


def test_an_excluded_teacher_field_or_the_student_keeps_the_hash(flagship):
    assert changed(flagship, "teacher", train=False).teacher_hash() == flagship.teacher_hash()
    assert changed(flagship, "student", model="resnet10t").teacher_hash() == flagship.teacher_hash()
    assert changed(flagship, "distill", same_modality_control=False).teacher_hash() == flagship.teacher_hash()


@pytest.mark.parametrize("update", [{"num_train": 100}, {"num_test": 10}, {"noise": 0.1}, {"camouflage": 0.1},
                                    {"ambient": 0.1}, {"contrast": 0.1}, {"seed": 1}, {"image_size": 32},
                                    {"depth_encoding": "colour"}])
def test_a_hashed_data_field_changes_the_hash(flagship, update):
    assert changed(flagship, "data", **update).teacher_hash() != flagship.teacher_hash()


def test_augmentation_and_the_seed_change_the_hash(flagship):
    augment = flagship.data.augment.model_copy(update={"rotate": 10.0})
    assert changed(flagship, "data", augment=augment).teacher_hash() != flagship.teacher_hash()
    assert flagship.model_copy(update={"seed": 1}).teacher_hash() != flagship.teacher_hash()


@pytest.mark.parametrize("update", [{"cache_dir": "elsewhere"}, {"privileged": ["depth", "rgb"]},
                                    {"stack": {"rgbd": ["rgb", "depth"]}}])
def test_an_excluded_data_field_keeps_the_hash(flagship, update):
    assert changed(flagship, "data", **update).teacher_hash() == flagship.teacher_hash()


def test_only_the_stack_the_teacher_reads_is_hashed(flagship):
    stacked = changed(flagship, "data", stack={"rgbd": ["rgb", "depth"]})
    on_stack = changed(stacked, "teacher", modality="rgbd")
    assert on_stack.teacher_hash() != changed(flagship, "teacher", modality="rgbd").teacher_hash()
    reordered = changed(on_stack, "data", stack={"rgbd": ["depth", "rgb"]})
    assert reordered.teacher_hash() != on_stack.teacher_hash()
    another = changed(on_stack, "data", stack={"rgbd": ["rgb", "depth"], "dd": ["depth", "rgb"]})
    assert another.teacher_hash() == on_stack.teacher_hash()
    # the RGB control teacher reads no stack: adding or changing one never retrains it
    control = changed(flagship, "teacher", modality="rgb")
    assert changed(control, "data", stack={"rgbd": ["rgb", "depth"]}).teacher_hash() == control.teacher_hash()
