"""Teacher-output cache: the same training as a live teacher, without the teacher's forward or its inputs.

Without augmentation one view per sample, exact; with augmentation K replayed views per sample
(test_cached_views.py holds the replay's own tests).
"""

import h5py
import numpy as np
import pytest
import torch

from pldistill.recipe import RecipeError, parse_recipe
from pldistill.stages import Run, obtain_teacher, outputs_cache, train_student
from pldistill.teacher_cache import TeacherCache, open_teacher_cache
from pldistill.tracking import NullTracker
from spies import record_loads

OFF = {"hflip": False, "shift": 0.0, "scale": 0.0}


def tiny(teacher_cache: bool, augment=OFF, losses=None, **cache) -> dict:
    cache = {"teacher_cache_precision": "float32", **cache}  # float32: the cached run equals the live one
    return {
        "name": "cached",
        "data": {"kind": "synthetic_shapes", "num_train": 128, "num_test": 64, "image_size": 32, "augment": augment},
        "teacher": {"model": "resnet10t", "modality": "depth"},
        "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
        "distill": {"losses": losses or [
            {"name": "sp", "weight": 1000.0, "pairs": [{"teacher": -1, "student": -1}]},
            {"name": "at", "weight": 100.0, "pairs": [{"teacher": 2, "student": 2}]},
            {"name": "kd", "weight": 1.0, "temperature": 4.0},
        ], "same_modality_control": False, "teacher_cache": teacher_cache, **cache},
        "schedule": {"epochs": 2, "teacher_epochs": 1, "batch_size": 32, "lr": 0.002},
        "logging": {"probe_size": 0, "wandb": "disabled"},
    }


def test_augmentation_is_cached_and_only_views_that_would_all_be_equal_are_refused():
    moving = {"hflip": True, "shift": 0.1}
    assert parse_recipe(tiny(True, augment=moving)).distill.teacher_cache  # no longer refused
    parse_recipe(tiny(True, augment=moving, teacher_cache_views=4))
    parse_recipe(tiny(True))  # augmentation off: one view, by default
    with pytest.raises(RecipeError) as err:
        parse_recipe(tiny(True, teacher_cache_views=4))
    message = str(err.value)
    assert "distill.teacher_cache_views" in message and "data.augment is off" in message


def test_cached_teacher_trains_the_same_student_and_never_loads_the_teacher_inputs(tmp_path):
    live_recipe, cached_recipe = parse_recipe(tiny(False)), parse_recipe(tiny(True))
    run = Run(live_recipe, tmp_path, NullTracker(), progress=False)
    teacher, _ = obtain_teacher(run)
    live = train_student(run, "live", teacher)

    requested = record_loads(run.train_set)
    run.recipe = cached_recipe
    cached = train_student(run, "cached", teacher)

    # the cache pass reads depth once per sample; the student's 2 epochs never do
    cache_reads = [n for n in requested if "depth" in n]
    assert len(cache_reads) == len(run.train_set) and all(n == ["depth"] for n in cache_reads)
    assert all(n == ["rgb"] for n in requested[len(cache_reads):]) and len(requested) > len(cache_reads)

    for a, b in zip(live["history"], cached["history"]):
        terms = [k for k in a if k.startswith("train/terms/")]
        assert {"train/terms/sp/t-1-s-1", "train/terms/at/t2-s2", "train/terms/kd"} <= set(terms)
        for k in terms + ["train/loss"]:
            assert b[k] == pytest.approx(a[k], rel=1e-4), k
    assert cached["test_acc"] == pytest.approx(live["test_acc"], abs=1 / 64 + 1e-9)


def test_cache_file_holds_the_teachers_outputs_and_is_rebuilt_for_another_teacher(tmp_path):
    recipe = parse_recipe(tiny(True))
    run = Run(recipe, tmp_path, NullTracker(), progress=False)
    teacher, _ = obtain_teacher(run)
    from pldistill.models import TappedModel

    tapped = TappedModel(teacher.model, [-1, 2])
    cache = outputs_cache(run, tapped, seed=1)
    (path,) = (tmp_path / "teacher_cache").glob("*.h5")
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["logits", "stage2", "stage4"]  # -1: the last of resnet10t's 5 feature levels
        assert all(f[name].chunks is None and f[name].compression is None for name in f)  # memory-mappable
        assert f["logits"].shape == (128, 4)

    view = run.data.train_view(["depth"], seed=1)
    rows = torch.tensor([5, 77, 3])
    x = torch.stack([view[int(i)]["depth"] for i in rows])
    tapped.eval()
    with torch.no_grad():
        logits, (last, mid) = tapped(x)
    c_logits, (c_last, c_mid) = cache.lookup(rows, torch.device("cpu"))
    torch.testing.assert_close(c_logits, logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c_last, last, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c_mid, mid, rtol=1e-4, atol=1e-5)

    assert open_teacher_cache(path, tapped, 128) is not None
    assert open_teacher_cache(path, tapped, 129) is None  # another training set
    with torch.no_grad():
        next(teacher.model.parameters()).add_(0.01)
    assert open_teacher_cache(path, tapped, 128) is None  # another teacher: never read its features
    rebuilt = outputs_cache(run, tapped, seed=1)
    assert isinstance(rebuilt, TeacherCache) and rebuilt.path != path
    assert not np.allclose(rebuilt.lookup(rows, torch.device("cpu"))[0].numpy(), c_logits.numpy())
