"""Controls that test what the teacher passes on: shuffled pairing within class and the class-mean teacher."""

import numpy as np
import pytest
import torch

from pldistill.data.protocol import Modality, ModalityView, PairedDataset
from pldistill.models import TappedModel, build_model
from pldistill.stages.controls import ClassMeanOutputs, ShuffledPairing, class_cycles, class_mean_outputs
from spies import record_loads


class Pairs(PairedDataset):
    """Sample i: 'a' and 'b' both hold i (so a test sees which sample each modality came from)."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.classes = [str(c) for c in sorted(set(self.labels))]
        self.modalities = {n: Modality(n, "vector", 2, (), ()) for n in ("a", "b")}

    def __len__(self):
        return len(self.labels)

    def label(self, index):
        return self.labels[index]

    def load(self, index, names):
        return {n: np.array([index, len(n)], np.float32) for n in names}


def test_class_cycles_keep_the_class_and_move_every_sample():
    labels = np.repeat(np.arange(4), [5, 2, 7, 1])
    partner = class_cycles(labels, seed=3)
    assert sorted(partner) == list(range(len(labels)))  # a permutation: every sample is some sample's partner
    assert (labels[partner] == labels).all()
    moved = labels != 3  # a class of one can only keep its sample
    assert (partner[moved] != np.flatnonzero(moved)).all()
    assert partner[labels == 3] == np.flatnonzero(labels == 3)
    np.testing.assert_array_equal(partner, class_cycles(labels, seed=3))
    assert not np.array_equal(partner, class_cycles(labels, seed=4))


def test_shuffled_pairing_moves_only_the_teachers_modality():
    base = Pairs([0, 0, 0, 1, 1, 1])
    shuffled = ShuffledPairing(base, ["b"], seed=0)
    for i in range(len(base)):
        out = shuffled.load(i, ["a", "b"])
        assert out["a"][0] == i  # the student's own input
        j = int(out["b"][0])
        assert j == shuffled.partner[i] and j != i and base.label(j) == base.label(i)
    view = ModalityView(shuffled, ["a", "b"])
    assert view[2]["label"] == 0 and view[2]["a"][0] == 2 and view[2]["b"][0] == shuffled.partner[2]
    assert shuffled.split_record()["shuffled_pairing"]["partner_index"] == shuffled.partner.tolist()


def test_class_mean_outputs_are_the_per_class_means_of_the_teacher():
    torch.manual_seed(0)
    base = Pairs([0, 1, 0, 2, 1, 0])
    teacher = TappedModel(build_model("mlp_4x2", 2, 3), [0, -1]).eval()
    means = class_mean_outputs(teacher, ModalityView(base, ["a"]), 3, torch.device("cpu"), batch_size=4)
    x = torch.stack([torch.from_numpy(base.load(i, ["a"])["a"]) for i in range(len(base))])
    with torch.no_grad():
        logits, feats = teacher(x)
    labels = torch.tensor(base.labels)
    for c in range(3):
        torch.testing.assert_close(means.logits[c], logits[labels == c].mean(0))
        torch.testing.assert_close(means.features[1][c], feats[1][labels == c].mean(0))
    got_logits, got_feats = means.lookup(torch.tensor([3, 0, 2]), torch.device("cpu"))
    torch.testing.assert_close(got_logits, means.logits[[2, 0, 0]])
    torch.testing.assert_close(got_feats[0], means.features[0][[2, 0, 0]])
    assert not teacher.training


def test_class_mean_lookup_is_the_same_for_every_sample_of_a_class():
    means = ClassMeanOutputs(np.array([1, 0, 1]), torch.eye(2), [torch.arange(4.0).view(2, 2)])
    logits, (feat,) = means.lookup(torch.tensor([0, 2, 1]), torch.device("cpu"))
    torch.testing.assert_close(logits, torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))
    torch.testing.assert_close(feat, torch.tensor([[2.0, 3.0], [2.0, 3.0], [0.0, 1.0]]))


def test_shuffled_pairing_refuses_a_stack_that_shares_the_students_input():
    class Stacked(Pairs):
        stacks = {"ab": ["a", "b"]}

        def inputs_of(self, names):
            return list(dict.fromkeys(p for n in names for p in self.stacks.get(n, [n])))

    with pytest.raises(ValueError, match="cannot come from two samples"):
        ShuffledPairing(Stacked([0, 0]), ["ab"], seed=0).load(0, ["a", "ab"])


def mfeat_recipe(root, **schedule) -> dict:
    return {
        "name": "mfeat_tiny",
        "data": {"kind": "uci_mfeat", "root": str(root), "views": ["fac", "zer"], "privileged": ["fac"],
                 "train_per_class": 20, "augment": {"hflip": False}},
        "teacher": {"model": "mlp_32x2", "modality": "fac"},
        "student": {"model": "mlp_16x2", "modality": "zer"},
        "distill": {"losses": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]},
                               {"name": "kd", "weight": 1.0, "temperature": 4.0}],
                    "same_modality_control": False},
        "schedule": {"epochs": 2, "batch_size": 32, "lr": 0.005, **schedule},
        "logging": {"probe_size": 0, "wandb": "disabled"},
    }


@pytest.fixture(scope="module")
def mfeat_root(tmp_path_factory):
    from real_layouts import write_mfeat

    return write_mfeat(tmp_path_factory.mktemp("mfeat"), signal=0.7)


def test_the_class_mean_student_never_reads_the_privileged_view_while_it_trains(tmp_path, mfeat_root):
    from pldistill.recipe import parse_recipe
    from pldistill.stages import Run, obtain_teacher, train_student
    from pldistill.tracking import NullTracker

    run = Run(parse_recipe(mfeat_recipe(mfeat_root)), tmp_path, NullTracker(), progress=False)
    teacher, _ = obtain_teacher(run)
    requested = record_loads(run.train_set)
    result = train_student(run, "class_mean", teacher, signal="class_mean")
    fac_reads = [n for n in requested if "fac" in n]
    assert len(fac_reads) == len(run.train_set) and all(n == ["fac"] for n in fac_reads)  # the means, once
    assert all(n == ["zer"] for n in requested[len(fac_reads):]) and len(requested) > len(fac_reads)
    assert "train/terms/kd" in result["history"][-1]


def test_a_comparison_reports_the_instance_gain_against_shuffled_pairing_and_class_means(tmp_path, mfeat_root):
    import json

    import yaml

    from pldistill.compare import run_comparison

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(mfeat_recipe(mfeat_root)))
    kd = [{"name": "kd", "weight": 1.0, "temperature": 4.0}]
    comparison = tmp_path / "cmp.yaml"
    comparison.write_text(yaml.safe_dump({"name": "controls", "base": "base.yaml", "seeds": [0, 1], "variants": {
        "kd": kd,
        "kd-shuffled": {"teacher_signal": "shuffled", "control_for": "kd", "losses": kd},
        "kd-class-mean": {"teacher_signal": "class_mean", "control_for": "kd", "losses": kd},
    }}))
    run_dir, summary = run_comparison(comparison, runs_dir=tmp_path / "runs", progress=False)
    gains = json.loads((run_dir / "comparison.json").read_text())["controlled_gains"]
    assert {(g["row"], g["control"]) for g in gains} == {("kd", "kd-shuffled"), ("kd", "kd-class-mean")}
    accs = {(c["seed"], c["row"]): c["test_acc"] for c in json.loads((run_dir / "comparison.json").read_text())["cells"]}
    for g in gains:
        paired = [accs[s, "kd"] - accs[s, g["control"]] for s in (0, 1)]
        assert g["mean"] == pytest.approx(sum(paired) / 2)
    table = (run_dir / "comparison.md").read_text()
    assert "kd − kd-shuffled (paired over 2 seeds)" in table and "the instance gain" in table
    assert "beyond its per-class mean outputs" in table and "same model and budget" not in table
    # a shuffled control of a same-modality teacher is refused at load: it would shuffle the student's input too
    comparison.write_text(yaml.safe_dump({"name": "bad", "base": "base.yaml", "variants": {
        "kd": kd, "kd-zer-shuffled": {"teacher_modality": "zer", "teacher_signal": "shuffled", "losses": kd}}}))
    from pldistill.recipe import RecipeError

    with pytest.raises(RecipeError, match="variants.kd-zer-shuffled.teacher_signal: shuffled pairing"):
        run_comparison(comparison, runs_dir=tmp_path / "runs", progress=False)


def test_a_run_with_instance_controls_prints_and_reports_them(tmp_path, mfeat_root):
    import json

    from pldistill.recipe import parse_recipe
    from pldistill.run import run_recipe

    raw = mfeat_recipe(mfeat_root, epochs=1)
    raw["distill"] = {**raw["distill"], "instance_controls": True}
    out = run_recipe(parse_recipe(raw), "<test>", runs_dir=tmp_path, progress=False)
    instance = json.loads((out.run_dir / "results.json").read_text())["instance_controls"]
    distilled = out.results["students"]["distilled"]["test_acc"]
    assert instance["instance_gain"] == pytest.approx(distilled - instance["shuffled"]["test_acc"])
    assert instance["beyond_class_mean"] == pytest.approx(distilled - instance["class_mean"]["test_acc"])
    printed = (out.run_dir / "results.md").read_text()
    assert "student (shuffled pairing)" in printed and "Instance gain (distilled − shuffled pairing)" in printed
    report = (out.run_dir / "report.html").read_text()
    assert "shuffled pairing" in report and "class-mean teacher" in report and "instance gain" in report
    split = json.loads((out.run_dir / "data_split.json").read_text())
    assert "uci_mfeat" in split  # the shuffled partners are the control's own; the run records its split
    raw["student"]["modality"] = "fac"
    raw["data"]["privileged"] = []
    raw["teacher"]["modality"] = "fac"
    with pytest.raises(Exception, match="distill.instance_controls: shuffled pairing"):
        parse_recipe(raw)
