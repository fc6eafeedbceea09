"""The real-data recipes: a clear error without their data (always), valid with it (../shared/data, when present)."""

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from pldistill.recipe import RecipeError, load_recipe
from real_layouts import SHARED, extract_members, first_per_folder, shared, skip_reason

RECIPES = Path(__file__).parents[1] / "recipes"
# recipe → (data key → its archive in ../shared/data)
REAL = {
    "cifar10_hires_to_lowres": {("source",): "cifar10-jpeg.tar.gz"},
    "dtd10_hires_to_lowres": {("source",): "dtd10-images.tar.gz"},
    "speech_to_digits": {("primary",): "mnist-png.tar.gz", ("partner",): "fsdd-recordings.tar.gz"},
    "digits_to_speech": {("primary",): "fsdd-recordings.tar.gz", ("partner",): "mnist-png.tar.gz"},
}


def _with_roots(name: str, roots: dict, dest: Path) -> Path:
    raw = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    for key, archive in REAL[name].items():
        section = raw["data"]
        for part in key:
            section = section[part]
        section["root"] = str(roots[archive])
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("name", sorted(REAL))
def test_without_its_data_a_recipe_says_which_key_and_what_to_pass(name, tmp_path, monkeypatch):
    shutil.copy(RECIPES / f"{name}.yaml", tmp_path / f"{name}.yaml")
    monkeypatch.chdir(tmp_path)  # the recipe's default data/<name> is relative: nothing there
    with pytest.raises(RecipeError) as info:
        load_recipe(f"{name}.yaml")
    message = str(info.value)
    key, archive = next(iter(REAL[name].items()))
    stem = archive.removesuffix(".tar.gz")
    assert message.startswith(f"{name}.yaml: data: {key[0]}.root: data/{stem}: no such folder or archive")
    assert f"../shared/data/" in message and archive in message and "\n" not in message


@pytest.fixture(scope="module")
def real_roots(tmp_path_factory):
    """Slices of the real archives in their own layout (MNIST/CIFAR: 3 files per folder; DTD, FSDD: whole)."""
    base = tmp_path_factory.mktemp("real")
    roots = {"dtd10-images.tar.gz": shared("dtd10-images.tar.gz"),
             "fsdd-recordings.tar.gz": shared("fsdd-recordings.tar.gz")}
    for archive in ("cifar10-jpeg.tar.gz", "mnist-png.tar.gz"):
        dest = base / archive.removesuffix(".tar.gz")
        keep = first_per_folder(3)
        extract_members(shared(archive), dest, lambda n: n.endswith(".csv") or keep(n))
        roots[archive] = dest
    for split in ("train", "test"):  # MNIST's CSVs, cut to the files extracted
        path = roots["mnist-png.tar.gz"] / f"{split}.csv"
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh)]
        kept = [r for r in rows[1:] if (path.parent / r[0]).is_file()]
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows([rows[0], *kept])
    return roots


@pytest.mark.skipif(not all(shared(a).exists() for r in REAL.values() for a in r.values()),
                    reason=skip_reason("{cifar10-jpeg,dtd10-images,mnist-png,fsdd-recordings}.tar.gz"))
@pytest.mark.parametrize("name", sorted(REAL))
def test_a_recipe_loads_on_the_real_layouts(name, real_roots, tmp_path):
    recipe = load_recipe(_with_roots(name, real_roots, tmp_path))
    assert len(recipe.data.classes) == 10 and recipe.teacher.modality in recipe.data.privileged
    assert recipe.teacher.model != recipe.student.model  # mismatched backbones
    assert recipe.data.augment.hflip == (name.endswith("lowres"))  # digits and spectrograms are never mirrored
    train, test = recipe.data.build()
    sample = train.load(0, [recipe.teacher.modality, recipe.student.modality])
    assert set(sample) == {recipe.teacher.modality, recipe.student.modality} and len(test) > 0


def test_shared_folder_is_where_the_tests_look():
    assert SHARED.name == "data" and SHARED.parent.name == "shared"


@pytest.mark.skipif(not all(shared(a).exists() for r in REAL.values() for a in r.values()),
                    reason=skip_reason("{cifar10-jpeg,dtd10-images,mnist-png,fsdd-recordings}.tar.gz"))
def test_real_data_comparisons_validate_with_their_data_path_as_an_override(real_roots):
    from pldistill.compare import load_comparison

    files = [p for p in sorted((RECIPES / "compare").glob("*.yaml"))
             if yaml.safe_load(p.read_text())["base"].removeprefix("../").removesuffix(".yaml") in REAL]
    assert len(files) >= len(REAL)
    for path in files:
        name = yaml.safe_load(path.read_text())["base"].removeprefix("../").removesuffix(".yaml")
        overrides = [f"data.{'.'.join(key)}.root={real_roots[archive]}" for key, archive in REAL[name].items()]
        comparison, base, variants = load_comparison(path, overrides)
        assert any(loss.name == "sp" for v in variants.values() for loss in v.distill.losses), path
        assert all(v.data == base.data for v in variants.values())
        assert comparison.overrides == overrides
