"""Every loss: float64 gradients match finite differences; half precision is computed in float32."""

import pytest
import torch

from pldistill.losses import FitNetHint, at_loss, cc_loss, kd_loss, rkd_loss, sp_loss
from pldistill.losses.rkd import rkd_angle_loss, rkd_distance_loss

torch.manual_seed(0)


def _f64(*shape, grad=False):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize(
    "name, loss, t_shape, s_shape",
    [
        ("kd", lambda t, s: kd_loss(t, s, temperature=3.0), (5, 4), (5, 4)),
        ("at, same size", at_loss, (3, 4, 3, 3), (3, 2, 3, 3)),
        ("at, student resized", at_loss, (3, 4, 4, 4), (3, 2, 2, 2)),
        ("rkd distance", rkd_distance_loss, (5, 3), (5, 6)),
        ("rkd angle", rkd_angle_loss, (5, 3), (5, 6)),
        ("rkd", rkd_loss, (4, 2, 2, 2), (4, 3, 1, 1)),
        ("cc", cc_loss, (4, 6), (4, 3)),
        ("sp", sp_loss, (4, 2, 3, 3), (4, 5, 2, 2)),
    ],
)
def test_gradcheck_float64(name, loss, t_shape, s_shape):
    teacher, student = _f64(*t_shape), _f64(*s_shape, grad=True)
    assert loss(teacher, student).dtype == torch.float64, name
    assert torch.autograd.gradcheck(lambda s: loss(teacher, s), (student,)), name


def test_fitnet_gradcheck_float64_through_student_and_regressor():
    hint = FitNetHint(student_channels=3, teacher_channels=2).double()
    teacher, student = _f64(2, 2, 4, 4), _f64(2, 3, 2, 2, grad=True)
    weight = hint.regressor.weight

    def f(s, w):
        return torch.func.functional_call(hint, {"regressor.weight": w}, (teacher, s))

    assert torch.autograd.gradcheck(f, (student, weight))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_activations_are_computed_in_float32(dtype):
    t, s = torch.randn(4, 8, 3, 3), torch.randn(4, 6, 3, 3)
    for loss in (sp_loss, at_loss, rkd_loss, cc_loss):
        low = loss(t.to(dtype), s.to(dtype))
        assert low.dtype == torch.float32
        # promoted before the matrices are formed: only input rounding separates it from float32
        assert low.item() == pytest.approx(loss(t.to(dtype).float(), s.to(dtype).float()).item(), rel=1e-6)


@pytest.mark.parametrize("loss", [sp_loss, cc_loss, rkd_loss, at_loss])
def test_no_nan_on_identical_samples_or_zero_activations(loss):
    identical = torch.ones(4, 3, 2, 2)
    zeros = torch.zeros(4, 3, 2, 2, requires_grad=True)
    value = loss(identical, zeros)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(zeros.grad).all()


@pytest.mark.parametrize("loss", [sp_loss, cc_loss, rkd_loss, rkd_distance_loss])
def test_relational_losses_refuse_a_batch_of_one_with_a_clear_message(loss):
    one = torch.randn(1, 5)
    with pytest.raises(ValueError, match="at least 2 of them, got 1; raise schedule.batch_size"):
        loss(one, one)


def test_pooled_losses_compare_global_average_embeddings():
    from pldistill.losses import global_pool, on_pooled

    t, s = torch.randn(6, 8, 3, 3), torch.randn(6, 4, 2, 2)
    assert global_pool(t).shape == (6, 8)
    torch.testing.assert_close(global_pool(t), t.mean(dim=(2, 3)))
    for loss in (sp_loss, rkd_loss, cc_loss):
        torch.testing.assert_close(on_pooled(loss)(t, s), loss(t.mean(dim=(2, 3)), s.mean(dim=(2, 3))))
    # pooling discards where things are: a spatial shuffle changes nothing
    shuffled = s.flatten(2)[:, :, torch.randperm(4)].reshape(6, 4, 2, 2)
    torch.testing.assert_close(on_pooled(sp_loss)(t, s), on_pooled(sp_loss)(t, shuffled))
