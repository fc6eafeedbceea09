"""The catalogue of bad inputs: each gets one clear line at the command line, before anything trains.

Every case runs ``pldistill run`` and checks the exit status (2), that stderr is a
single ``pldistill: error:`` line without a traceback, and the exact words of
the message. The README's "When things go wrong" section points here.
"""

import copy
import errno
import re

import pytest
import torch
import yaml

from pldistill.checkpoint import CheckpointError, save_atomic
from pldistill.cli import main
from pldistill.models import build_model

GOOD = {
    "name": "bad",
    "data": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 32, "image_size": 32},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 1, "batch_size": 16, "lr": 0.001},
}


def edit(path: str, value, **more):
    """A recipe with dotted keys set (or removed, for value=...); more keys as a__b=value."""
    raw = copy.deepcopy(GOOD)
    for key, v in {path: value, **{k.replace("__", "."): v for k, v in more.items()}}.items():
        *parents, last = key.split(".")
        node = raw
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if v is ...:
            del node[last]
        else:
            node[last] = v
    return yaml.safe_dump(raw)


def _weights(tmp_path, name, model, chans, classes):
    path = tmp_path / name
    torch.save(build_model(model, chans, classes).state_dict(), path)
    return str(path)


RECIPE_CASES = {
    "malformed YAML": (lambda t: "name: [unclosed\n", r"not valid YAML \(only plain data is allowed\)"),
    "not a mapping": (lambda t: "- a\n- b\n", r"the recipe must be a mapping of keys, got list"),
    "code-executing YAML tag": (lambda t: "name: !!python/object/apply:os.system ['echo hi']\n",
                                r"not valid YAML \(only plain data is allowed\)"),
    "unknown key": (lambda t: edit("schedule.epochz", 3), r"schedule\.epochz: unknown key \(did you mean 'epochs'\?\)"),
    "wrong type": (lambda t: edit("schedule.batch_size", "64"),
                   r"schedule\.batch_size: Input should be a valid integer \(got '64'\)"),
    "zero epochs": (lambda t: edit("schedule.epochs", 0), r"schedule\.epochs: Input should be greater than 0 \(got 0\)"),
    "negative batch size": (lambda t: edit("schedule.batch_size", -8),
                            r"schedule\.batch_size: Input should be greater than 0 \(got -8\)"),
    "zero learning rate": (lambda t: edit("schedule.lr", 0.0), r"schedule\.lr: Input should be greater than 0"),
    "missing section": (lambda t: edit("schedule", ...), r"schedule: required key is missing"),
    "unknown timm model": (lambda t: edit("student.model", "mobilenetv3_smal_100"),
                           r"student\.model: timm has no model named 'mobilenetv3_smal_100' \(did you mean "
                           r"'mobilenetv3_small_100'"),
    "unknown loss": (lambda t: edit("distill.losses.0.name", "crd"), r"distill\.losses\.0\.name: unknown loss 'crd' \(did you mean 'rkd'\?\); known losses"),
    "layer index out of range": (lambda t: edit("distill.losses.0.pairs.0.student", 7),
                                 r"distill\.losses\.0\.pairs\.0\.student: stage 7 is out of range; "
                                 r"mobilenetv3_small_100 has 5 stages"),
    "teacher modality the data lacks": (lambda t: edit("teacher.modality", "dpeth"),
                                        r"teacher\.modality: the dataset 'synthetic_shapes' has no modality "
                                        r"'dpeth' \(did you mean 'depth'\?\)"),
    "student fed the privileged modality": (lambda t: edit("student.modality", "depth"),
                                            r"student\.modality: 'depth' is privileged .* it does not exist at "
                                            r"inference, so the student cannot take it as input"),
    "batch too small for RKD": (lambda t: edit("distill.losses.0.name", "rkd", schedule__batch_size=2),
                                r"distill\.losses\.0: RKD compares samples within a batch and needs batches of "
                                r"at least 3; schedule\.batch_size is 2"),
    "attention transfer on a 1×1 layer": (lambda t: edit("distill.losses.0.name", "at", data__image_size=16),
                                          r"stage -1 of resnet10t is 1×1 at 16 px"),
    "KD with a teacher of another label space": (lambda t: edit(
        "distill.losses", [{"name": "kd", "weight": 1.0}], teacher__train=False,
        teacher__weights=_weights(t, "t10.pt", "resnet10t", 1, 10)),
        r"distill\.losses\.0: KD needs the teacher and the student to predict the same classes.*predicts 10"),
    "weights of another architecture": (lambda t: edit("student.weights", _weights(t, "r.pt", "resnet10t", 3, 4)),
                                        r"student\.weights: .*r\.pt: keys not in mobilenetv3_small_100"),
    "corrupt weights file": (lambda t: (t / "bad.pt").write_bytes(b"\x00garbage") and edit(
        "teacher.weights", str(t / "bad.pt")), r"teacher\.weights: .*bad\.pt: not a loadable tensor file"),
    "missing weights file": (lambda t: edit("teacher.weights", str(t / "none.pt")),
                             r"teacher\.weights: weights file .*none\.pt not found: pldistill never downloads"),
}


@pytest.mark.parametrize("case", list(RECIPE_CASES))
def test_bad_recipe_gets_one_clear_line(case, tmp_path, capsys):
    make, expected = RECIPE_CASES[case]
    path = tmp_path / "recipe.yaml"
    path.write_text(make(tmp_path))
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pldistill: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(expected, err), err
    assert not (tmp_path / "runs").exists()  # refused before a run folder or any training


def test_payload_in_a_weights_file_is_refused_without_running(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "pwned"),))

    torch.save({"w": Payload()}, tmp_path / "evil.pt")
    (tmp_path / "r.yaml").write_text(edit("teacher.weights", str(tmp_path / "evil.pt")))
    assert main(["run", str(tmp_path / "r.yaml")]) == 2
    assert "not a loadable tensor file" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()


def test_no_such_recipe_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert re.search(r"nope\.yaml: no such recipe file", capsys.readouterr().err)


def test_corrupt_progress_checkpoint_on_resume_is_named(tmp_path, capsys):
    from pldistill.recipe import parse_recipe

    run_dir = tmp_path / "runs" / "bad" / "20260101-000000"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(parse_recipe(GOOD).to_dict()))
    (run_dir / "checkpoints" / "teacher.progress.pt").write_bytes(b"truncated")
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"checkpoint .*teacher\.progress\.pt cannot be loaded safely", err), err


def test_disk_full_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "student.pt"
    save_atomic({"version": 1}, path)

    def full(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*student\.pt \(No space left on "
                                              r"device\); the previous version, if any, is untouched"):
        save_atomic({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["student.pt"]  # no temporary file left behind


def test_a_run_folder_that_already_exists_is_never_reused(tmp_path):
    from pldistill.stages import new_run_dir

    first, second = new_run_dir(tmp_path, "x"), new_run_dir(tmp_path, "x")  # same second
    assert first != second and first.is_dir() and second.is_dir()
