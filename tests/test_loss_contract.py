"""Every registered loss, found by the registry (no list here to update), meets the same contract.

Each loss also keeps its own hand-computed-value tests; these are the
properties any loss must have before a recipe may name it.
"""

import pytest
import torch

from pldistill.losses import all_losses
from pldistill.terms import loss_function
from pldistill.recipe import loss_entry

SPECS = all_losses()
T_SHAPE, S_SHAPE, CLASSES = (6, 4, 4), (5, 2, 2), 7  # mismatched widths and sizes, as across backbones


def _entry(spec):
    raw = {"name": spec.name, "weight": 1.0}
    if spec.inputs != "logits":
        raw["pairs"] = [{"teacher": 0, "student": 0}]
    return loss_entry(raw)


def _loss(spec, dtype=torch.float32):
    """The entry's function at its default parameters; learned parts sized for the shapes above.

    A loss on whole outputs (SSKD) is called on features whose logits are a fixed linear map of them,
    with labels, so every property below still tests it through its feature input.
    """
    fn = loss_function(_entry(spec), lambda _: T_SHAPE[0], lambda _: S_SHAPE[0], _entry(spec).pairs[0]
                       if spec.inputs != "logits" else None, classes=CLASSES)
    fn = fn.to(dtype) if isinstance(fn, torch.nn.Module) else fn
    return _on_outputs(fn, spec) if spec.inputs == "outputs" else fn


def _on_outputs(fn, spec):
    g = torch.Generator().manual_seed(7)
    w_t, w_s = torch.randn(T_SHAPE[0], CLASSES, generator=g), torch.randn(S_SHAPE[0], CLASSES, generator=g)
    copies = spec.views.copies if spec.views is not None else 1

    def logits(x, w):  # at least float32, like the losses' own arithmetic: bf16 features give exact logits
        x = x if x.dtype == torch.float64 else x.float()
        return x.mean((2, 3)) @ w.to(x.dtype)

    def call(teacher, student):
        labels = torch.arange(len(student) // copies) % CLASSES
        return fn((logits(teacher, w_t), teacher), (logits(student, w_s), student), labels)

    return call


def _inputs(spec, b: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if spec.inputs == "logits":
        return torch.randn(b, CLASSES, generator=g, dtype=dtype), torch.randn(b, CLASSES, generator=g, dtype=dtype)
    return torch.randn(b, *T_SHAPE, generator=g, dtype=dtype), torch.randn(b, *S_SHAPE, generator=g, dtype=dtype)


@pytest.fixture(params=sorted(SPECS), ids=sorted(SPECS))
def spec(request):
    return SPECS[request.param]


def test_registry_finds_every_loss_file_by_scan():
    import pkgutil

    import pldistill.losses as package

    registering = {m.name for m in pkgutil.iter_modules(package.__path__)
                   if "register_loss(" in open(f"{package.__path__[0]}/{m.name}.py").read() and m.name != "registry"}
    assert registering and len(SPECS) == len(registering)


def test_spec_is_consistent(spec):
    assert spec.display and spec.citation
    assert (spec.fn is None) != (spec.learned is None)
    if spec.relational:
        assert spec.min_batch >= 2
    assert set(spec.symbols) <= set(spec.params.model_fields)
    # the preset is a valid recipe entry on its own
    preset = {"name": spec.name, **spec.preset}
    if preset.get("pairs") == "auto":
        preset["pairs"] = [{"teacher": -1, "student": -1}]
    assert loss_entry(preset).name == spec.name


def test_finite_on_identical_samples_and_on_zero_activations(spec):
    fn = _loss(spec)
    t, s = _inputs(spec, 4)
    same_t, same_s = t[:1].expand_as(t).clone(), s[:1].expand_as(s).clone()
    for teacher, student in ((same_t, same_s), (torch.zeros_like(t), torch.zeros_like(s)), (t, s)):
        student = student.clone().requires_grad_()
        value = fn(teacher, student)
        assert value.dim() == 0 and torch.isfinite(value), (spec.name, value)
        value.backward()
        assert torch.isfinite(student.grad).all(), spec.name


def test_float64_gradcheck(spec):
    if spec.stops_gradient:
        pytest.skip(f"{spec.name} stops the gradient through the student's own outputs: its tests check it by hand")
    fn = _loss(spec, torch.float64)
    t, s = _inputs(spec, 4, torch.float64)
    s.requires_grad_()
    assert fn(t, s).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: fn(t, x), (s,))


def test_float32_result_under_bf16_inputs(spec):
    fn = _loss(spec)
    t, s = _inputs(spec, 4, torch.bfloat16)
    value = fn(t, s)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    reference = fn(t.float(), s.float())
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)  # bf16 inputs, float32 arithmetic


def test_mismatched_batches_are_refused_clearly(spec):
    fn = _loss(spec)
    t, _ = _inputs(spec, 4)
    _, s = _inputs(spec, 3)
    with pytest.raises(ValueError, match=r"(same batch|one label space|samples)"):
        fn(t, s)


def test_relational_losses_refuse_a_batch_of_one(spec):
    if not spec.relational:
        pytest.skip(f"{spec.name} is a mean over samples: a batch of one is defined")
    for b in sorted({1, spec.min_batch - 1}):
        t, s = _inputs(spec, b)
        with pytest.raises(ValueError, match=r"needs at least \d+ of them"):
            _loss(spec)(t, s)
    assert torch.isfinite(_loss(spec)(*_inputs(spec, spec.min_batch)))


def test_per_loss_keys_are_validated_with_their_names():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="temperature"):
        loss_entry({"name": "kd", "weight": 1.0, "temperature": -1})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        loss_entry({"name": "sp", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}], "temperature": 4})
    cc = loss_entry({"name": "cc", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}], "order": 3})
    assert cc.params() == {"gamma": 0.4, "order": 3}
