"""Recipe composition: ``base:`` inheritance and command-line overrides, validated like one file."""

from pathlib import Path

import pytest
import yaml

from pldistill.cli import main
from pldistill.recipe import RecipeError, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


def write(path: Path, raw: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_child_recipe_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path / "parent.yaml", yaml.safe_load((RECIPES / "depth_to_rgb.yaml").read_text()))
    child = write(tmp_path / "child.yaml", {
        "base": "parent", "name": "child",
        "schedule": {"epochs": 3},
        "distill": {"losses": [{"name": "kd", "weight": 2.0}]},
    })
    parent, recipe = load_recipe(tmp_path / "parent.yaml"), load_recipe(child)
    assert recipe.name == "child" and recipe.schedule.epochs == 3
    assert recipe.schedule.batch_size == parent.schedule.batch_size and recipe.schedule.lr == parent.schedule.lr
    assert recipe.data == parent.data and recipe.teacher == parent.teacher  # untouched sections inherited
    assert [loss.name for loss in recipe.distill.losses] == ["kd"]  # a list is replaced, not appended to
    assert recipe.distill.same_modality_control == parent.distill.same_modality_control


def test_chains_of_bases_and_changing_a_sections_kind(tmp_path):
    write(tmp_path / "a.yaml", yaml.safe_load((RECIPES / "depth_to_rgb.yaml").read_text()))
    write(tmp_path / "sub" / "b.yaml", {"base": "../a.yaml", "name": "b", "seed": 7})
    c = write(tmp_path / "sub" / "c.yaml", {"base": "b", "name": "c", "data": {"num_train": 500}})
    recipe = load_recipe(c)
    assert (recipe.name, recipe.seed, recipe.data.num_train, recipe.data.num_test) == ("c", 7, 500, 1000)
    # a different data.kind replaces the base's data mapping instead of merging foreign keys into it
    (tmp_path / "img").mkdir()
    d = write(tmp_path / "sub" / "d.yaml", {"base": "b", "name": "d",
                                            "data": {"kind": "folders", "root": str(tmp_path / "img"),
                                                     "modalities": {"rgb": "image", "depth": "depth"}}})
    with pytest.raises(RecipeError) as err:
        load_recipe(d)
    assert "num_train" not in str(err.value) and "img" in str(err.value)  # the folder is missing its splits


def test_composition_errors_name_the_file_that_set_the_key(tmp_path):
    write(tmp_path / "a.yaml", {**yaml.safe_load((RECIPES / "depth_to_rgb.yaml").read_text()),
                                "schedule": {"epochs": 2, "batch_size": 8, "lr": 0.001, "optimiser": "sgd"}})
    b = write(tmp_path / "b.yaml", {"base": "a", "name": "b", "teacher": {"modality": "dpeth"}})
    with pytest.raises(RecipeError) as err:
        load_recipe(b)
    assert f"{tmp_path / 'a.yaml'}: schedule.optimiser: unknown key (did you mean 'optimizer'?)" in str(err.value)
    fixed = write(tmp_path / "c.yaml", {"base": "b", "name": "c", "schedule": {"optimiser": None}})
    with pytest.raises(RecipeError, match=r"c\.yaml: schedule\.optimiser: unknown key"):
        load_recipe(fixed)  # null is a value, not a deletion: the key still exists
    a_fixed = yaml.safe_load((tmp_path / "a.yaml").read_text())
    del a_fixed["schedule"]["optimiser"]
    write(tmp_path / "a.yaml", a_fixed)
    with pytest.raises(RecipeError, match=r"b\.yaml: teacher\.modality: .*no modality 'dpeth' \(did you mean 'depth'\?\)"):
        load_recipe(b)


def test_missing_base_and_cycles_are_one_line_errors(tmp_path):
    lonely = write(tmp_path / "x.yaml", {"base": "nowhere", "name": "x"})
    with pytest.raises(RecipeError, match=r"x\.yaml: base: no recipe 'nowhere' \(looked for .*nowhere\.yaml\)"):
        load_recipe(lonely)
    write(tmp_path / "p.yaml", {"base": "q", "name": "p"})
    write(tmp_path / "q.yaml", {"base": "p", "name": "q"})
    with pytest.raises(RecipeError, match=r"cycle: .*p\.yaml → .*q\.yaml → .*p\.yaml"):
        load_recipe(tmp_path / "p.yaml")
    with pytest.raises(RecipeError, match=r"base: must name a recipe"):
        load_recipe(write(tmp_path / "y.yaml", {"base": 3, "name": "y"}))


def test_overrides_set_any_key_with_the_files_validation():
    flagship = RECIPES / "depth_to_rgb.yaml"
    recipe = load_recipe(flagship, ["student.model=resnet10t", "distill.losses.sp.weight=1000",
                                    "schedule.epochs=2", "logging.probe_size=0", "data.augment.rotate=10"])
    assert recipe.student.model == "resnet10t" and recipe.distill.losses[0].weight == 1000.0
    assert (recipe.schedule.epochs, recipe.logging.probe_size, recipe.data.augment.rotate) == (2, 0, 10.0)
    assert load_recipe(flagship, ["distill.losses.0.pairs=[{teacher: 2, student: 3}]"]).distill.losses[0].pairs[0].student == 3
    both = load_recipe(flagship, ["distill.loss=sp+kd", "distill.losses.kd.temperature=2"]).distill.losses
    assert [(l.name, l.weight) for l in both] == [("sp", 3000.0), ("kd", 1.0)] and both[1].temperature == 2.0
    assert load_recipe(flagship, ["~logging"]).logging.probe_size == 256  # removed: the default applies
    for override, message in [
        ("schedule.epochs=-1", r"command line: schedule\.epochs: .*greater than 0"),
        ("schedule.epochz=3", r"command line: schedule\.epochz: unknown key \(did you mean 'epochs'\?\)"),
        ("distill.losses.kd.weight=1", r"no entry named 'kd' in this list"),
        ("distill.losses.4.weight=1", r"index 4 is out of range; the list has 1 entries"),
        ("schedule.epochs.x=1", r"schedule\.epochs is a value \(16\), not a mapping"),
        ("distill.loss=sp+nope", r"'sp\+nope' is not a loss preset"),
        ("schedule", r"an override is dotted\.key=value"),
        ("~schedule.nothing", r"there is no such key to remove"),
        ("student.modality=depth", r"command line: student\.modality: 'depth' is privileged"),
    ]:
        with pytest.raises(RecipeError, match=message):
            load_recipe(flagship, [override])


def test_cli_run_takes_overrides_and_reports_a_bad_one_in_one_line(capsys):
    code = main(["run", str(RECIPES / "depth_to_rgb.yaml"), "schedule.batch_size=many"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "command line: schedule.batch_size: Input should be a valid integer" in err


def test_shipped_composed_recipes_inherit_the_flagship():
    flagship = load_recipe(RECIPES / "depth_to_rgb.yaml")
    rgbd = load_recipe(RECIPES / "rgbd_to_rgb.yaml")
    assert rgbd.teacher.modality == "rgbd" and rgbd.data.channels("rgbd") == 4
    assert rgbd.student == flagship.student and rgbd.schedule == flagship.schedule
    transfer = load_recipe(RECIPES / "domain_transfer.yaml")
    assert transfer.teacher.data is not None and transfer.teacher.data.ambient != transfer.data.ambient
    assert transfer.student == flagship.student


def test_composition_never_imports_the_recipe_module():
    """recipe.py imports recipe_compose; the other way round would be a cycle (the reader is passed in)."""
    import ast

    import pldistill.recipe_compose as compose_module

    tree = ast.parse(Path(compose_module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {"recipe", "pldistill.recipe"} & imported, imported
