from pathlib import Path

import pytest
import yaml

from pldistill.recipe import RecipeError, load_recipe, parse_recipe

RECIPES = sorted(Path(__file__).parents[1].glob("recipes/**/*.yaml"))


def minimal() -> dict:
    return {
        "name": "t",
        "data": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 32},
        "teacher": {"model": "resnet10t", "modality": "depth"},
        "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
        "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
        "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.001},
    }


def write(tmp_path: Path, raw) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def test_every_shipped_recipe_validates():
    assert len(RECIPES) > 0
    for path in RECIPES:
        recipe = load_recipe(path)
        assert recipe.name == path.stem


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    raw = minimal()
    raw["schedule"]["epochz"] = 3
    path = write(tmp_path, raw)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    assert "schedule.epochz: unknown key (did you mean 'epochs'?)" in message


def test_wrong_type_names_the_key(tmp_path):
    raw = minimal()
    raw["schedule"]["batch_size"] = "sixty-four"
    with pytest.raises(RecipeError, match=r"schedule\.batch_size: .*integer.*sixty-four"):
        load_recipe(write(tmp_path, raw))


def test_non_positive_values_are_refused(tmp_path):
    raw = minimal()
    raw["schedule"]["lr"] = 0.0
    with pytest.raises(RecipeError, match=r"schedule\.lr: .*greater than 0"):
        load_recipe(write(tmp_path, raw))


def test_unknown_timm_model_is_refused_with_close_matches(tmp_path):
    raw = minimal()
    raw["student"]["model"] = "mobilenetv3_smal_100"
    with pytest.raises(RecipeError, match=r"student\.model: timm has no model named 'mobilenetv3_smal_100' \(did you mean 'mobilenetv3_small_100'"):
        load_recipe(write(tmp_path, raw))


def test_modality_the_dataset_lacks_is_refused(tmp_path):
    raw = minimal()
    raw["teacher"]["modality"] = "dpeth"
    with pytest.raises(RecipeError, match=r"teacher\.modality: the dataset 'synthetic_shapes' has no modality 'dpeth' \(did you mean 'depth'\?\)"):
        load_recipe(write(tmp_path, raw))


def test_layer_index_out_of_range_is_refused(tmp_path):
    raw = minimal()
    raw["distill"]["losses"][0]["pairs"][0]["student"] = 9
    with pytest.raises(RecipeError, match=r"distill\.losses\.0\.pairs\.0\.student: stage 9 is out of range; mobilenetv3_small_100 has 5 stages"):
        load_recipe(write(tmp_path, raw))


def test_missing_required_key(tmp_path):
    raw = minimal()
    del raw["teacher"]
    with pytest.raises(RecipeError, match=r"teacher: required key is missing"):
        load_recipe(write(tmp_path, raw))


def test_malformed_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "name: [unclosed\n"))


def test_yaml_that_would_execute_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, text))
    assert not marker.exists()


def test_teacher_hash_ignores_student_but_not_teacher_settings():
    base = parse_recipe(minimal())
    other_student = minimal()
    other_student["student"]["model"] = "regnetx_002"
    assert parse_recipe(other_student).teacher_hash() == base.teacher_hash()
    other_teacher = minimal()
    other_teacher["teacher"]["model"] = "resnet18"
    assert parse_recipe(other_teacher).teacher_hash() != base.teacher_hash()


def test_recipe_is_frozen():
    recipe = parse_recipe(minimal())
    with pytest.raises(Exception):
        recipe.seed = 3


def _with_losses(tmp_path, losses, batch_size=8):
    raw = minimal()
    raw["distill"]["losses"] = losses
    raw["schedule"]["batch_size"] = batch_size
    return write(tmp_path, raw)


def test_every_loss_name_is_accepted_with_the_right_inputs(tmp_path):
    pair = [{"teacher": -1, "student": -1}]
    losses = [{"name": n, "weight": 1.0, "pairs": pair} for n in ("sp", "at", "rkd", "cc")]
    losses.append({"name": "kd", "weight": 1.0, "temperature": 2.0})
    recipe = load_recipe(_with_losses(tmp_path, losses))
    assert [loss.name for loss in recipe.distill.losses] == ["sp", "at", "rkd", "cc", "kd"]


def test_kd_with_layer_pairs_is_refused(tmp_path):
    path = _with_losses(tmp_path, [{"name": "kd", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}])
    with pytest.raises(RecipeError, match=r"distill\.losses\.0: 'kd' compares logits; remove its 'pairs'"):
        load_recipe(path)


def test_feature_loss_without_pairs_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"'at' needs at least one layer pair"):
        load_recipe(_with_losses(tmp_path, [{"name": "at", "weight": 1.0}]))


def test_rkd_with_batches_too_small_for_angles_is_refused(tmp_path):
    path = _with_losses(tmp_path, [{"name": "rkd", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}], 2)
    with pytest.raises(RecipeError, match=r"RKD's angle term needs batches of at least 3"):
        load_recipe(path)


def test_unknown_loss_name_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"distill\.losses\.0\.name"):
        load_recipe(_with_losses(tmp_path, [{"name": "crd", "weight": 1.0}]))


def test_auto_pairs_spread_by_relative_depth_and_end_last_to_last():
    from pldistill.recipe import auto_pairs

    assert [(p.teacher, p.student) for p in auto_pairs(5, 5)] == [(1, 1), (3, 3), (4, 4)]
    assert [(p.teacher, p.student) for p in auto_pairs(12, 5)] == [(3, 1), (7, 3), (11, 4)]


def test_auto_pairs_are_resolved_at_load(tmp_path):
    recipe = load_recipe(_with_losses(tmp_path, [{"name": "fitnet", "weight": 1.0, "pairs": "auto"}]))
    assert [(p.teacher, p.student) for p in recipe.distill.losses[0].pairs] == [(1, 1), (3, 3), (4, 4)]
