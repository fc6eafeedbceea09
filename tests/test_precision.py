"""schedule.precision: bf16 autocast trains on CPU with float32 losses; fp16 is refused off CUDA; cached teachers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pldistill.losses import sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.recipe import load_recipe, parse_recipe
from pldistill.engine import Schedule, autocast, check_precision, distill_step, fit
from pldistill.terms import DistillTerm
from random_pairs import RandomPairs

CPU = torch.device("cpu")



def _models():
    torch.manual_seed(0)
    teacher = TappedModel(build_model("test_efficientnet_gn", 1, 3, None, 16), [-1]).eval()
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    return teacher, student


def test_bf16_forward_keeps_every_loss_term_in_float32():
    teacher, student = _models()
    batch = RandomPairs(8)[:8]
    with autocast(CPU, "bf16"):
        out = distill_step(student, batch["rgb"], batch["label"], teacher, batch["depth"],
                           [DistillTerm("sp", sp_loss, 100.0, 0, 0)])
    assert out.logits.dtype == torch.bfloat16  # autocast really ran the forward in bf16
    assert {k: v.dtype for k, v in out.terms.items()} == {"ce": torch.float32, "sp": torch.float32}
    assert out.total.dtype == torch.float32


def test_bf16_run_trains_on_cpu():
    teacher, student = _models()
    before = [p.detach().clone() for p in student.parameters()]
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    result = fit(student, "rgb", loader, loader, schedule=Schedule(epochs=2, lr=3e-3, weight_decay=0.0,
                                                                   precision="bf16"),
                 device=CPU, teacher=teacher, teacher_modality="depth", terms=[DistillTerm("sp", sp_loss, 100.0, 0, 0)])
    first, last = result.history[0], result.history[-1]
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values())
    assert last["train/loss"] < first["train/loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))
    assert all(p.dtype == torch.float32 for p in student.parameters())  # weights stay float32 under autocast


def test_fp16_off_cuda_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*use bf16"):
        check_precision("fp16", CPU)
    check_precision("bf16", CPU)


def test_precision_reaches_the_teacher_hash_only_away_from_fp32():
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml")
    assert recipe.schedule.precision == "fp32"
    assert recipe.teacher_hash() == "73407364ddc64092"  # the golden hash: cached teachers stay valid
    raw = recipe.to_dict()
    raw["schedule"]["precision"] = "bf16"
    assert parse_recipe(raw).teacher_hash() != recipe.teacher_hash()
    raw["schedule"]["precision"] = "fp32"
    raw["distill"]["losses"][0]["scope"] = "global"  # the student's loss: not the teacher's business
    assert parse_recipe(raw).teacher_hash() == recipe.teacher_hash()
