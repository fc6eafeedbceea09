"""Cross-modal retrieval: hand-computed metrics and loss, code format, and that training and CCA beat chance."""

import math
import time

import numpy as np
import pytest
import torch
import yaml

from pldistill.retrieval import (CCAHashing, CoupledHashing, MMSPHLoss, build_hashing_net, collect_outputs,
                                 direction_scores, hamming_distances, hamming_ranking, mean_average_precision,
                                 pack_codes, partner_recall_at_k, precision_at_k, random_codes, relevance,
                                 sign_codes, to_codes, train_coupled)
from pldistill.retrieval.metrics import average_precisions


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: thread hand-offs would cost more than the arithmetic (and a busy machine makes it worse)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# 3 queries, 4 database items, 4 bits; database labels 0 1 0 1, every query of class 0.
QUERIES = np.array([[1, 1, 1, -1], [1, 1, -1, -1], [-1, -1, 1, 1]])
DATABASE = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, 1, 1], [-1, -1, -1, -1]])
QUERY_LABELS, DATABASE_LABELS = np.array([0, 0, 0]), np.array([0, 1, 0, 1])


def test_hamming_ranking_by_hand_with_ties_broken_by_index():
    assert hamming_distances(QUERIES, DATABASE).tolist() == [[1, 0, 3, 3], [2, 1, 4, 2], [2, 3, 0, 2]]
    # query 0: items 2 and 3 tie at 3; query 1: items 0 and 3 tie at 2; query 2: items 0 and 3 tie at 2
    assert hamming_ranking(QUERIES, DATABASE).tolist() == [[1, 0, 2, 3], [1, 0, 3, 2], [2, 0, 3, 1]]


def test_packed_codes_rank_exactly_as_their_signs():
    rng = np.random.default_rng(0)
    q, d = to_codes(rng.standard_normal((50, 70))), to_codes(rng.standard_normal((80, 70)))  # 70: a partial byte
    assert pack_codes(q).dtype == np.uint8 and pack_codes(q).shape == (50, 9)
    assert np.array_equal(hamming_distances(pack_codes(q), pack_codes(d)), hamming_distances(q, d))
    assert np.array_equal(hamming_distances(q, d), (q[:, None, :] != d[None, :, :]).sum(-1))
    assert np.array_equal(hamming_ranking(pack_codes(q), pack_codes(d)), hamming_ranking(q, d))
    with pytest.raises(ValueError, match="packed"):
        hamming_distances(pack_codes(q), d)


def test_average_precision_precision_and_partner_recall_by_hand():
    ranking = hamming_ranking(QUERIES, DATABASE)
    relevant = relevance(ranking, QUERY_LABELS, DATABASE_LABELS)
    # relevant at ranks: query 0 → 2, 3; query 1 → 2, 4; query 2 → 1, 2
    assert relevant.tolist() == [[False, True, True, False], [False, True, False, True], [True, True, False, False]]
    ap = average_precisions(relevant)
    assert ap == pytest.approx([(1 / 2 + 2 / 3) / 2, (1 / 2 + 2 / 4) / 2, 1.0])
    assert mean_average_precision(relevant) == pytest.approx(25 / 36)
    assert precision_at_k(relevant, 1) == pytest.approx(1 / 3)
    assert precision_at_k(relevant, 2) == pytest.approx(2 / 3)
    # query i's partner is item i: query 0 finds item 0 second, the others first
    assert partner_recall_at_k(ranking, 1) == pytest.approx(2 / 3)
    assert partner_recall_at_k(ranking, 2) == 1.0
    assert average_precisions(np.zeros((1, 4), bool)).tolist() == [0.0]  # nothing relevant: AP 0


def test_direction_scores_bundle_the_metrics():
    labels = np.array([0, 1, 0])
    scores = direction_scores(QUERIES, DATABASE[:3], labels, k=1)
    relevant = relevance(hamming_ranking(QUERIES, DATABASE[:3]), labels, labels)
    assert scores["map"] == pytest.approx(mean_average_precision(relevant))
    assert scores["precision_at_k"] == pytest.approx(precision_at_k(relevant, 1))
    assert scores["rank_ms"] >= 0


def test_a_thousand_by_thousand_ranking_takes_well_under_a_second():
    rng = np.random.default_rng(1)
    q, d = to_codes(rng.standard_normal((1000, 64))), to_codes(rng.standard_normal((1000, 64)))
    for codes in ((q, d), (pack_codes(q), pack_codes(d))):
        started = time.perf_counter()
        ranking = hamming_ranking(*codes)
        assert time.perf_counter() - started < 0.5
        assert ranking.shape == (1000, 1000)


def test_codes_are_signs_with_zero_as_plus_one():
    codes = to_codes(np.array([[-0.3, 0.0, 2.0]]))
    assert codes.dtype == np.int8 and codes.tolist() == [[-1, 1, 1]]
    assert set(np.unique(random_codes(100, 16, seed=3))) == {-1, 1}
    assert np.array_equal(random_codes(5, 8, seed=3), random_codes(5, 8, seed=3))
    # a ReLU embedding is all ≥ 0: centred, its bits split
    assert sign_codes(np.array([[0.0, 2.0], [2.0, 0.0]]), np.array([1.0, 1.0])).tolist() == [[-1, 1], [1, -1]]


def test_mmsph_loss_by_hand():
    x = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    y = torch.tensor([[0.5, 0.0], [0.0, 0.6]])
    labels = torch.tensor([0, 1])
    hinge = (1 - math.sqrt(0.25 + 0.36)) ** 2  # x0–y1 and y0–y1: dissimilar at distance √0.61 < m = 1
    # cross pairs: x0–y0 similar, identical: 0; x0–y1: hinge; x1–y0: (1 − 0.5)²; x1–y1 similar: 0.6²
    cross = 0.5 * (0 + hinge + 0.25 + 0.36) / 4
    intra_x = 0.5 * 0.25  # x0–x1 (both orders): dissimilar at 0.5
    intra_y = 0.5 * hinge
    loss = MMSPHLoss(margin=1.0, cross=1.0, intra_x=0.5, intra_y=2.0)
    terms = loss.terms(x, y, labels)
    assert float(terms["cross"]) == pytest.approx(cross)
    assert float(terms["intra_x"]) == pytest.approx(intra_x)
    assert float(terms["intra_y"]) == pytest.approx(intra_y)
    assert float(loss(x, y, labels)) == pytest.approx(cross + 0.5 * intra_x + 2.0 * intra_y)


def test_identical_positives_and_negatives_beyond_the_margin_cost_nothing():
    codes = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]], requires_grad=True)
    loss = MMSPHLoss(margin=3.0)  # the two classes sit 4 apart
    value = loss(codes, codes.detach().clone(), torch.tensor([0, 1]))
    value.backward()
    assert float(value.detach()) == 0.0
    assert torch.count_nonzero(codes.grad) == 0  # the hinge is inactive: no gradient either


def test_the_margin_in_bits_is_the_distance_of_codes_differing_in_that_many_bits():
    loss = MMSPHLoss.for_bits(8)  # b/2 = 4 bits: m = 2·√4
    assert loss.margin == pytest.approx(4.0)
    a = torch.ones(1, 8)
    four, three = a.clone(), a.clone()
    four[0, :4], three[0, :3] = -1, -1
    labels = torch.tensor([0, 1])
    assert float(loss.terms(torch.cat([a, four]), torch.cat([a, four]), labels)["intra_x"]) == 0.0
    assert float(loss.terms(torch.cat([a, three]), torch.cat([a, three]), labels)["intra_x"]) == pytest.approx(
        0.5 * (4 - math.sqrt(12)) ** 2)


def _two_classes(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    sign = np.where(labels == 1, 1.0, -1.0)[:, None]
    x = (1.5 * sign * np.ones(8) + rng.standard_normal((n, 8))).astype(np.float32)
    y = (1.5 * sign * np.linspace(-1, 1, 5) + rng.standard_normal((n, 5))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(labels)


def test_a_tiny_training_retrieves_across_modalities_far_better_than_random_codes():
    torch.manual_seed(0)
    x, y, labels = _two_classes(256, seed=0)
    batches = [{"a": x[i:i + 32], "b": y[i:i + 32], "label": labels[i:i + 32]} for i in range(0, 256, 32)]
    coupled = CoupledHashing("a", "b", {"a": build_hashing_net("mlp_16x1", 8, 8),
                                        "b": build_hashing_net("mlp_16x1", 5, 8)})
    history = train_coupled(coupled, batches, MMSPHLoss.for_bits(8), epochs=30, lr=0.01)
    assert history[-1] < 0.5 * history[0]
    coupled.eval()
    tx, ty, tl = _two_classes(200, seed=1)
    test = [{"a": tx, "b": ty, "label": tl}]
    codes_a = to_codes(collect_outputs(coupled.nets["a"], test, "a")[0])
    codes_b = to_codes(collect_outputs(coupled.nets["b"], test, "b")[0])
    assert codes_a.shape == (200, 8) and set(np.unique(codes_a)) <= {-1, 1}
    lab = tl.numpy()
    learned = mean_average_precision(relevance(hamming_ranking(codes_a, codes_b), lab, lab))
    chance = mean_average_precision(relevance(hamming_ranking(random_codes(200, 8, 0), random_codes(200, 8, 1)),
                                              lab, lab))
    assert chance < 0.6 and learned > 0.85, (learned, chance)


def test_cca_codes_find_partners_of_correlated_data_far_more_often_than_random():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((400, 4))
    x = shared @ rng.standard_normal((4, 20)) + 0.3 * rng.standard_normal((400, 20))
    y = shared @ rng.standard_normal((4, 10)) + 0.3 * rng.standard_normal((400, 10))
    cca = CCAHashing(bits=4).fit(x[:300], y[:300])
    learned = partner_recall_at_k(hamming_ranking(cca.codes_x(x[300:]), cca.codes_y(y[300:])), 5)
    chance = partner_recall_at_k(hamming_ranking(random_codes(100, 4, 0), random_codes(100, 4, 1)), 5)
    assert learned > 0.35 and learned > 3 * chance, (learned, chance)
    with pytest.raises(ValueError, match="at most 10 components"):
        CCAHashing(bits=12).fit(x[:300], y[:300])


def test_the_experiment_writes_a_table_json_and_figure_with_every_row(tmp_path):
    from experiments.cross_modal_retrieval import main
    from pldistill.models import TappedModel, build_model
    from pldistill.stages.folder import RunFolder
    from real_layouts import write_mfeat

    root = write_mfeat(tmp_path / "mfeat", signal=1.5)
    recipe = {"name": "retrieval_tiny",
              "data": {"kind": "uci_mfeat", "root": str(root), "views": ["fac", "zer"], "privileged": ["fac"],
                       "test_per_class": 4, "train_per_class": 10, "augment": {"hflip": False}},
              "teacher": {"model": "mlp_16x1", "modality": "fac"}, "student": {"model": "mlp_8x1", "modality": "zer"},
              "distill": {"losses": [{"name": "kd", "weight": 1.0, "temperature": 4.0}]},
              "schedule": {"epochs": 1, "batch_size": 20, "lr": 0.01}, "logging": {"wandb": "disabled"}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"  # a finished run's folder, written as a run writes it
    (run / "checkpoints").mkdir(parents=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    for stage, spec, width in (("teacher", recipe["teacher"], 216), ("student_distilled", recipe["student"], 47)):
        model = build_model(spec["model"], width, 10)
        RunFolder(run).finish(stage, TappedModel(model), {"model": spec["model"], "modality": spec["modality"]})
    out = tmp_path / "out"
    main([str(path), "--seeds", "0", "1", "--bits", "8", "--k", "5", "--epochs", "2", "--runs", str(run),
          "--out", str(out)])
    result = yaml.safe_load((out / "retrieval_tiny" / "retrieval.json").read_text())  # JSON is YAML
    rows = {r["row"]: r for r in result["rows"]}
    assert list(rows)[:3] == ["MMSPH", "random codes", "CCA"] and len(rows) == 4
    sign = next(name for name in rows if name.startswith("sign of distilled embeddings"))
    assert "logits" in sign and len(rows[sign]["per_seed"]) == 1  # widths 16 vs 8: the shared class space
    assert len(rows["MMSPH"]["per_seed"]) == 2 and result["test_pairs"] == 40
    for row in rows.values():
        assert 0 <= row["mean"]["map_p2r"] <= 1 and row["mean"]["rank_ms"] >= 0
    table = (out / "retrieval_tiny" / "retrieval.md").read_text()
    assert "| MMSPH | 2 |" in table and "mAP fac→zer" in table and "partner R@5 zer→fac" in table
    assert (out / "retrieval_tiny" / "retrieval.png").stat().st_size > 5000
