"""Controls that test what the teacher passes on: shuffled pairing within class and the class-mean teacher."""

import numpy as np
import pytest
import torch

from pldistill.data.protocol import Modality, ModalityView, PairedDataset
from pldistill.models import TappedModel, build_model
from pldistill.stages.controls import ClassMeanOutputs, ShuffledPairing, class_cycles, class_mean_outputs


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
