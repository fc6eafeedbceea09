"""A stopped training run continues to exactly the weights of one that never stopped."""

import pytest
import torch
from torch.utils.data import DataLoader

from pldistill.data import JointTransform, ModalityView, SyntheticShapes
from pldistill.losses import FitNetHint, sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.engine import DivergenceGuard, ProgressCheckpoint, Schedule, fit, seed_everything, standard_callbacks
from pldistill.terms import DistillTerm


class Crash(Exception):
    pass


def _train(progress_file, crash_in_epoch=None, epochs=3):
    data = SyntheticShapes("train", 96, image_size=32, seed=0)
    transform = JointTransform({m: data.modalities[m] for m in ("rgb", "depth")}, shift=0.1, scale=0.1, seed=5)
    loader = DataLoader(ModalityView(data, ["rgb", "depth"], transform), batch_size=16, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(3))
    test = DataLoader(ModalityView(SyntheticShapes("test", 32, image_size=32, seed=0), ["rgb"]), batch_size=32)
    seed_everything(0)
    teacher = TappedModel(build_model("resnet10t", 1, 4), [-1, 2])
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 4), [-1, 2])
    terms = [DistillTerm("sp", sp_loss, 100.0, 0, 0), DistillTerm("fitnet", FitNetHint(24, 128), 1.0, 1, 1)]

    def crash(model):
        if crash_in_epoch is not None and len(seen) + 1 >= crash_in_epoch:
            raise Crash  # dies before this epoch's checkpoint is written
        seen.append(1)
        return {}

    seen = []
    callbacks = standard_callbacks(progress=False, epoch_metrics=crash, progress_file=progress_file)
    result = fit(student, "rgb", loader, test, schedule=Schedule(epochs=epochs, lr=0.002, weight_decay=0.05),
                 device=torch.device("cpu"), teacher=teacher, teacher_modality="depth", terms=terms,
                 callbacks=callbacks)
    return student, terms[1].fn, result


def test_fit_resumed_after_a_crash_ends_with_identical_weights_and_history(tmp_path):
    reference, ref_hint, ref_result = _train(None)
    progress = tmp_path / "student.progress.pt"
    with pytest.raises(Crash):
        _train(progress, crash_in_epoch=2)  # epoch 1 saved, epoch 2 lost
    assert torch.load(progress, weights_only=True)["epoch"] == 1
    resumed, hint, result = _train(progress)
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(ref_hint.regressor.weight, hint.regressor.weight, rtol=0, atol=0)
    strip = lambda h: [{k: v for k, v in row.items() if "seconds" not in k} for row in h]
    assert strip(result.history) == strip(ref_result.history)
    assert result.test_acc == ref_result.test_acc


def test_augmentation_generators_round_trip():
    data = SyntheticShapes("train", 8, image_size=32, seed=0)
    t = JointTransform({"rgb": data.modalities["rgb"]}, shift=0.2, scale=0.2, seed=1)
    sample = data.load(0, ["rgb"])
    state = t.rng_state()
    first = [t(sample)["rgb"] for _ in range(3)]
    t.set_rng_state(state)
    again = [t(sample)["rgb"] for _ in range(3)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert not (first[0] == first[1]).all()


# -- a whole run killed with SIGKILL and resumed --------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from pldistill.cli import main  # noqa: E402

KILL_RECIPE = {
    "name": "killed",
    "data": {"kind": "synthetic_shapes", "num_train": 256, "num_test": 128, "image_size": 32,
             "augment": {"shift": 0.1, "scale": 0.1}},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 1000.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "logging": {"probe_size": 64},
}


def _cli(recipe, root, cache):
    env = dict(os.environ, PLDISTILL_CACHE=str(cache), WANDB_MODE="disabled")
    cmd = [sys.executable, "-m", "pldistill", "run", str(recipe), "--runs-dir", str(root), "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(root):
    files = list(root.glob("killed/*/metrics.jsonl"))
    return sum(1 for _ in open(files[0])) if files else 0


def _run_here(recipe, root, cache, monkeypatch, capsys, *args) -> tuple[int, str]:
    """The same command in this process (no second start-up of torch and timm): exit status and output."""
    monkeypatch.setenv("PLDISTILL_CACHE", str(cache))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    code = main(["run", str(recipe), "--runs-dir", str(root), "--quiet", *args])
    return code, capsys.readouterr().out


def _shortest_gap_between_rows(run, root) -> float:
    """Runs ``run()`` while a thread times each new metrics row: the kill delay must stay below one epoch."""
    stamps, done = [], threading.Event()

    def watch():
        seen = 0
        while not done.is_set():
            rows = _rows(root)
            if rows > seen:
                seen, stamps[:] = rows, stamps + [time.time()]
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert run() == 0
    finally:
        done.set()
        watcher.join()
    return min(b - a for a, b in zip(stamps, stamps[1:]))


def test_run_killed_at_a_random_step_resumes_to_the_same_weights_and_results(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "killed.yaml"
    recipe.write_text(yaml.safe_dump(KILL_RECIPE))
    # each cache dir starts empty: both runs train their teacher. Only the victim needs a process of its own.
    epoch_gap = _shortest_gap_between_rows(
        lambda: _run_here(recipe, tmp_path / "ref", tmp_path / "cache_ref", monkeypatch, capsys)[0], tmp_path / "ref")

    # 10 epoch rows, control included: killing after row <= 9 within half the shortest epoch this
    # machine ran lands mid-run wherever it runs (a fixed delay outlived the last epoch on a fast CI)
    chooser = random.Random()
    after_rows, delay = chooser.randint(1, 9), chooser.uniform(0.0, 0.5 * epoch_gap)
    where = f"killed after metrics row {after_rows} + {delay:.2f} s"
    victim = _cli(recipe, tmp_path / "run", tmp_path / "cache_run")
    deadline = time.time() + 300
    while _rows(tmp_path / "run") < after_rows and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    assert victim.poll() is None, f"the run ended before the kill; {where}"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    (run_dir,) = (tmp_path / "run" / "killed").iterdir()
    assert not (run_dir / "results.json").exists(), where

    code, out = _run_here(recipe, tmp_path / "run", tmp_path / "cache_run", monkeypatch, capsys)  # finds it itself
    assert code == 0, out
    assert f"found an interrupted run of this recipe: {run_dir}" in out
    assert [p.name for p in (tmp_path / "run" / "killed").iterdir()] == [run_dir.name]

    (ref_dir,) = (tmp_path / "ref" / "killed").iterdir()
    for stage in ("teacher", "student_scratch", "student_distilled", "control/teacher", "control/student_distilled"):
        folder, _, name = stage.rpartition("/")
        a = torch.load(ref_dir / folder / "checkpoints" / f"{name}.pt", weights_only=True)["state_dict"]
        b = torch.load(run_dir / folder / "checkpoints" / f"{name}.pt", weights_only=True)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), f"{stage} differs; {where}"
    assert not list(run_dir.glob("checkpoints/*.progress.pt"))
    ref, res = (json.loads((d / "results.json").read_text()) for d in (ref_dir, run_dir))
    strip = lambda h: [{k: v for k, v in row.items() if "seconds" not in k} for row in h]
    for kind in ("scratch", "distilled"):
        assert res["students"][kind]["test_acc"] == ref["students"][kind]["test_acc"], where
        assert strip(res["students"][kind]["history"]) == strip(ref["students"][kind]["history"]), where
    assert res["teacher"]["test_acc"] == ref["teacher"]["test_acc"]


def test_resume_refuses_finished_runs_and_other_recipes(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "killed" / "20260101-000000"
    run_dir.mkdir(parents=True)
    from pldistill.recipe import parse_recipe

    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(parse_recipe(KILL_RECIPE).to_dict()))
    recipe = tmp_path / "other.yaml"
    recipe.write_text(yaml.safe_dump(dict(KILL_RECIPE, seed=4)))
    assert main(["run", str(recipe), "--resume", str(run_dir)]) == 2
    assert "started with a different recipe (seed differ)" in capsys.readouterr().err
    (run_dir / "results.json").write_text("{}")
    assert main(["run", "--resume", str(run_dir)]) == 2
    assert "this run already finished" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_divergence_stops_naming_the_term_and_step_and_keeps_the_last_good_epoch(tmp_path):
    data = SyntheticShapes("train", 64, image_size=32, seed=0)
    loader = DataLoader(ModalityView(data, ["rgb", "depth"]), batch_size=16, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    test = DataLoader(ModalityView(SyntheticShapes("test", 32, image_size=32, seed=0), ["rgb"]), batch_size=32)
    calls = []

    def explodes_in_epoch_two(t, s):
        calls.append(1)
        value = sp_loss(t, s)
        return value * float("nan") if len(calls) > 5 else value  # 4 steps per epoch: step 5 is epoch 2

    progress = tmp_path / "student.progress.pt"
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 4), [-1])
    teacher = TappedModel(build_model("resnet10t", 1, 4), [-1])
    with pytest.raises(FloatingPointError, match=r"student: loss term\(s\) \['sp/t-1-s-1'\] became non-finite at "
                                                 r"step 5"):
        fit(student, "rgb", loader, test, schedule=Schedule(epochs=3, lr=0.001, weight_decay=0.0),
            device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
            terms=[DistillTerm("sp/t-1-s-1", explodes_in_epoch_two, 1.0, 0, 0)],
            name="student", callbacks=[DivergenceGuard(), ProgressCheckpoint(progress)])
    kept = torch.load(progress, weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_progress_keeps_the_fp16_loss_scale_it_had_learned(tmp_path):
    from pldistill.resume import load_progress, save_progress

    def parts():
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(list(range(4)), batch_size=2, generator=torch.Generator().manual_seed(0))
        return {"model": model, "learned": torch.nn.ModuleList(), "optimizer": opt, "loader": loader,
                "scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
                "scaler": torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)}

    before = parts()
    for _ in range(3):  # three overflowing steps: each is skipped and halves the scale
        loss = before["model"](torch.tensor([[float("inf"), 1.0]])).sum()
        before["scaler"].scale(loss).backward()
        before["scaler"].step(before["optimizer"])
        before["scaler"].update()
    assert before["scaler"].get_scale() == 2.0 ** 13
    save_progress(tmp_path / "p.pt", **before, epoch=1, step=3, seconds=0.0, history=[])
    after = parts()
    load_progress(tmp_path / "p.pt", **after)
    assert after["scaler"].get_scale() == 2.0 ** 13 and after["scaler"].state_dict() == before["scaler"].state_dict()
    legacy = torch.load(tmp_path / "p.pt", weights_only=True)
    legacy.pop("scaler")  # a file written before the scale was kept still resumes, at the initial scale
    torch.save(legacy, tmp_path / "old.pt")
    old = parts()
    load_progress(tmp_path / "old.pt", **old)
    assert old["scaler"].get_scale() == 2.0 ** 16
