"""Cached augmented views: each view replays the live joint transform exactly, the cache holds the
teacher's outputs for exactly that view, and the student stage never reads the privileged modality."""

import h5py
import numpy as np
import pytest
import torch

import pldistill.teacher_cache as teacher_cache_module
from pldistill.data import JointTransform, ModalityView
from pldistill.data.protocol import encode
from pldistill.data.resolution import ResolutionPairs
from pldistill.data.views import ReplayedViews, ViewReplay, ViewSampler
from pldistill.losses.kd import kd_loss
from pldistill.losses.sp import sp_loss
from pldistill.models import TappedModel
from pldistill.recipe import parse_recipe
from pldistill.stages import Run, obtain_teacher, outputs_cache, train_student
from pldistill.teacher_cache import CacheSpaceError, build_teacher_cache
from pldistill.tracking import NullTracker
from spies import record_loads
from test_teacher_cache import tiny

MOVING = {"hflip": True, "shift": 0.1, "scale": 0.1, "rotate": 10.0, "color_jitter": 0.3}


def augmented_run(tmp_path, views=3, precision="float16", epochs=2):
    recipe = parse_recipe(tiny(True, augment=MOVING, teacher_cache_views=views, teacher_cache_precision=precision,
                               losses=[{"name": "sp", "weight": 1000.0, "pairs": [{"teacher": -1, "student": -1}]},
                                       {"name": "kd", "weight": 1.0, "temperature": 4.0}]))
    recipe = recipe.model_copy(update={"schedule": recipe.schedule.model_copy(update={"epochs": epochs})})
    return Run(recipe, tmp_path, NullTracker(), progress=False)


def transform(run, names, seed=5):
    ds, aug = run.train_set, run.recipe.data.augment
    return JointTransform({m: ds.modalities[m] for m in names}, seed=seed, **aug.model_dump())


def test_a_view_replays_the_joint_transform_bit_for_bit_whichever_modalities_it_reads(tmp_path):
    run = augmented_run(tmp_path)
    ds, replay = run.train_set, ViewReplay(3, 11)
    student = ReplayedViews(ModalityView(ds, ["rgb"], transform(run, ["rgb"], seed=1)), replay)
    teacher = ReplayedViews(ModalityView(ds, ["depth"], transform(run, ["depth"], seed=2)), replay)
    joint = transform(run, ["rgb", "depth"], seed=3)
    for row in [0, 1, 2, 40, 41, 383]:
        joint.reseed(replay.seed_of(row))
        live = joint(ds.load(row // 3, ["rgb", "depth"]))  # the live joint transform, same view parameters
        s, t = student[row], teacher[row]
        assert s["index"] == t["index"] == row and s["label"] == ds.label(row // 3)
        assert torch.equal(s["rgb"], encode(live["rgb"], ds.modalities["rgb"]))
        assert torch.equal(t["depth"], encode(live["depth"], ds.modalities["depth"]))
    assert not torch.equal(student[0]["rgb"], student[1]["rgb"])  # two views of one sample differ
    assert torch.equal(student[0]["rgb"], student[0]["rgb"])  # and each replays identically


def test_a_resolution_pairs_view_feeds_the_same_crop_to_both_sides(tmp_path):
    run = augmented_run(tmp_path)
    pairs = ResolutionPairs(run.train_set, "rgb", factor=2)
    replay = ViewReplay(4, 0)
    make = lambda m: JointTransform({m: pairs.modalities[m]}, seed=9, hflip=True, shift=0.1, scale=0.1)
    hires = ReplayedViews(ModalityView(pairs, ["rgb_hires"], make("rgb_hires")), replay)
    lowres = ReplayedViews(ModalityView(pairs, ["rgb"], make("rgb")), replay)
    for row in [0, 5, 10]:
        view = make("rgb_hires")
        view.reseed(replay.seed_of(row))
        crop = view({"rgb_hires": pairs.load(row // 4, ["rgb_hires"])["rgb_hires"]})["rgb_hires"]
        assert torch.equal(hires[row]["rgb_hires"], encode(crop, pairs.modalities["rgb_hires"]))
        assert torch.equal(lowres[row]["rgb"], encode(pairs.degrade(crop), pairs.modalities["rgb"]))


def test_view_sampler_draws_a_view_per_sample_and_epoch_the_same_on_every_rank_and_after_resume():
    replay, n = ViewReplay(4, 7), 100
    first = ViewSampler(range(n), n, replay)
    epoch0 = list(first)
    assert sorted(r // 4 for r in epoch0) == list(range(n))  # every sample once, one of its views
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != epoch0 and sorted(r // 4 for r in epoch1) == list(range(n))
    assert len({r % 4 for r in epoch0}) == 4
    resumed = ViewSampler(range(n), n, replay)
    resumed.set_epoch(1)
    assert list(resumed) == epoch1
    # two ranks, each with half the samples: the views of a sample do not depend on the rank
    halves = [ViewSampler(range(r, n, 2), n, replay) for r in (0, 1)]
    assert sorted(sum((list(h) for h in halves), [])) == sorted(epoch0)


def test_cached_outputs_and_loss_terms_equal_the_live_teachers_on_the_same_view(tmp_path):
    run = augmented_run(tmp_path, views=3, precision="float16")
    teacher, _ = obtain_teacher(run)
    tapped = TappedModel(teacher.model, [-1])
    cache = outputs_cache(run, tapped, seed=1)
    assert cache.replay.count == 3 and len(cache) == 128
    with h5py.File(cache.path, "r") as f:
        assert f["logits"].shape == (384, 4) and f["logits"].dtype == np.float16

    rows = torch.tensor([0, 1, 2, 200, 383, 77])
    view = ReplayedViews(run.data.train_view(["depth"], seed=1), cache.replay)
    x = torch.stack([view[int(r)]["depth"] for r in rows])
    tapped.eval()
    with torch.no_grad():
        logits, (last,) = tapped(x)
    c_logits, (c_last,) = cache.lookup(rows, torch.device("cpu"))
    assert c_logits.dtype == torch.float32
    torch.testing.assert_close(c_logits, logits, rtol=2e-3, atol=2e-3)  # float16 rounding only
    torch.testing.assert_close(c_last, last, rtol=2e-3, atol=2e-3)
    student = torch.randn(len(rows), 8, 2, 2)
    assert sp_loss(c_last, student).item() == pytest.approx(sp_loss(last, student).item(), rel=1e-3)
    s_logits = torch.randn(len(rows), 4)
    assert kd_loss(c_logits, s_logits).item() == pytest.approx(kd_loss(logits, s_logits).item(), rel=1e-3, abs=1e-5)


def test_an_augmented_cached_student_reads_only_its_own_modality_and_sees_many_views(tmp_path):
    run = augmented_run(tmp_path, views=4, epochs=3)
    teacher, _ = obtain_teacher(run)
    requested = record_loads(run.train_set)
    seen: list[int] = []
    lookup = teacher_cache_module.TeacherCache.lookup

    def spy(self, index, *args, **kwargs):
        seen.extend(index.tolist())
        return lookup(self, index, *args, **kwargs)

    teacher_cache_module.TeacherCache.lookup = spy
    try:
        result = train_student(run, "cached", teacher)
    finally:
        teacher_cache_module.TeacherCache.lookup = lookup
    builds = [n for n in requested if "depth" in n]
    assert len(builds) == 4 * len(run.train_set) and all(n == ["depth"] for n in builds)  # one pass per view
    assert all(n == ["rgb"] for n in requested[len(builds):])  # the student's 3 epochs never read depth
    assert len(seen) == 3 * 4 * 32 and len({r % 4 for r in seen}) == 4  # rows of every view were drawn
    per_epoch = [seen[i * 128:(i + 1) * 128] for i in range(3)]
    assert per_epoch[0] != per_epoch[1]
    history = result["history"]
    assert all(np.isfinite(h["train/terms/sp/t-1-s-1"]) for h in history)
    assert history[-1]["train/loss"] < history[0]["train/loss"]  # it trains


def test_changed_views_or_augmentation_never_read_an_old_cache(tmp_path):
    run = augmented_run(tmp_path, views=2)
    teacher, _ = obtain_teacher(run)
    tapped = TappedModel(teacher.model, [-1])
    first = outputs_cache(run, tapped, seed=1)
    assert outputs_cache(run, tapped, seed=1).path == first.path  # reused as it is
    more = run.recipe.model_copy(update={"distill": run.recipe.distill.model_copy(update={"teacher_cache_views": 3})})
    run.recipe = more
    assert outputs_cache(run, tapped, seed=1).path != first.path
    data = more.data.model_copy(update={"augment": more.data.augment.model_copy(update={"rotate": 20.0})})
    run.recipe = more.model_copy(update={"data": data})
    other = outputs_cache(run, tapped, seed=1)
    assert other.path != first.path and other.replay.count == 3


def test_an_interrupted_build_resumes_from_its_finished_rows_and_writes_the_same_file(tmp_path):
    run = augmented_run(tmp_path, views=2, precision="float32")
    teacher, _ = obtain_teacher(run)
    tapped = TappedModel(teacher.model, [-1])
    view = run.data.train_view(["depth"], seed=1)
    replay = ViewReplay(2, 1)
    clean = build_teacher_cache(tapped, view, tmp_path / "clean.h5", torch.device("cpu"), replay,
                                batch_size=32, progress=False, precision="float32")

    calls = {"n": 0}
    forward = tapped.forward

    def crashing(x):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed while writing batch 4 of 8
        return forward(x)

    path = tmp_path / "resumed.h5"
    tapped.forward = crashing
    with pytest.raises(KeyboardInterrupt):
        build_teacher_cache(tapped, view, path, torch.device("cpu"), replay, batch_size=32, progress=False,
                            precision="float32")
    assert not path.exists() and path.with_name(path.name + ".partial").exists()
    with h5py.File(path.with_name(path.name + ".partial"), "r") as f:
        assert f.attrs["rows_done"] == 96
    calls["n"] = -100
    resumed = build_teacher_cache(tapped, view, path, torch.device("cpu"), replay, batch_size=32, progress=False,
                                  precision="float32")
    assert calls["n"] == -100 + 5  # only the 5 batches not yet written
    assert not path.with_name(path.name + ".partial").exists()
    rows = torch.arange(256)
    for a, b in zip(clean.lookup(rows, torch.device("cpu"))[1], resumed.lookup(rows, torch.device("cpu"))[1]):
        assert torch.equal(a, b)


def test_the_build_refuses_to_start_when_the_disk_cannot_hold_the_file(tmp_path, monkeypatch):
    run = augmented_run(tmp_path, views=16)
    teacher, _ = obtain_teacher(run)
    free = type("Usage", (), {"free": 10_000})()
    monkeypatch.setattr(teacher_cache_module.shutil, "disk_usage", lambda _: free)
    with pytest.raises(CacheSpaceError) as err:
        outputs_cache(run, TappedModel(teacher.model, [-1]), seed=1)
    message = str(err.value)
    assert "128 samples × 16 views" in message and "9.8 KB free" in message
    assert "distill.teacher_cache_views" in message
    assert not list((tmp_path / "teacher_cache").glob("*.h5*"))  # nothing half-written left behind
