import torch

from pldistill.losses import sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.engine import Schedule, distill_step, fit
from pldistill.terms import DistillTerm
from random_pairs import RandomPairs


def _models():
    torch.manual_seed(0)
    teacher = TappedModel(build_model("resnet10t", 1, 3), [-1, 2])
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 3), [-1, 3])
    return teacher, student


def test_step_total_is_the_sum_of_its_weighted_terms():
    teacher, student = _models()
    teacher.eval()
    terms = [DistillTerm("sp/a", sp_loss, 100.0, 0, 0), DistillTerm("sp/b", sp_loss, 10.0, 1, 1)]
    out = distill_step(student, torch.randn(6, 3, 32, 32), torch.randint(0, 3, (6,)),
                       teacher, torch.randn(6, 1, 32, 32), terms)
    assert set(out.terms) == {"ce", "sp/a", "sp/b"}
    torch.testing.assert_close(out.total, sum(out.terms.values()))
    assert out.logits.shape == (6, 3)


def test_taps_return_the_requested_stages_in_order():
    teacher, _ = _models()
    _, feats = teacher(torch.randn(2, 1, 32, 32))
    assert [f.shape[1] for f in feats] == [512, 128]  # stage -1 then stage 2



def test_frozen_teacher_stays_in_eval_mode_and_unchanged_while_the_student_trains():
    teacher, student = _models()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loader = torch.utils.data.DataLoader(RandomPairs(n=48, size=32), batch_size=8, drop_last=True)
    fit(student, "rgb", loader, loader, schedule=Schedule(epochs=1, lr=1e-3, weight_decay=0.0),
        device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
        terms=[DistillTerm("sp", sp_loss, 100.0, 0, 0)])
    assert not teacher.training
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)  # BN running stats too


def test_kd_term_compares_teacher_and_student_logits():
    from functools import partial

    from pldistill.losses import kd_loss

    teacher, student = _models()
    teacher.eval()
    student.eval()  # deterministic forward so the term can be recomputed
    x_s, x_t, y = torch.randn(4, 3, 32, 32), torch.randn(4, 1, 32, 32), torch.randint(0, 3, (4,))
    term = DistillTerm("kd", partial(kd_loss, temperature=3.0), 0.5, -1, -1, inputs="logits")
    out = distill_step(student, x_s, y, teacher, x_t, [term])
    with torch.no_grad():
        expected = 0.5 * kd_loss(teacher(x_t)[0], student(x_s)[0], temperature=3.0)
    torch.testing.assert_close(out.terms["kd"], expected)


def test_fitnet_regressor_is_trained_with_the_student():
    from pldistill.losses import FitNetHint

    teacher, student = _models()
    hint = FitNetHint(student_channels=576, teacher_channels=512)
    before = hint.regressor.weight.detach().clone()
    loader = torch.utils.data.DataLoader(RandomPairs(n=48, size=32), batch_size=8, drop_last=True)
    fit(student, "rgb", loader, loader, schedule=Schedule(epochs=1, lr=1e-3, weight_decay=0.0),
        device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
        terms=[DistillTerm("fitnet", hint, 1.0, 0, 0)])
    assert not torch.equal(before, hint.regressor.weight)


def test_a_custom_callback_sees_every_epoch_record_once_and_adds_its_own_metrics():
    from pldistill.engine import Callback, DivergenceGuard

    class Recorder(Callback):
        def __init__(self):
            self.starts, self.steps, self.records = 0, 0, []

        def on_fit_start(self, state):
            self.starts += 1

        def check_step(self, state, out):
            self.steps += 1

        def epoch_metrics(self, state):
            return {"custom/epoch_seen": float(state.epoch)}

        def on_epoch_end(self, state, record):
            self.records.append(dict(record))

    _, student = _models()
    loader = torch.utils.data.DataLoader(RandomPairs(n=16, size=32), batch_size=8, drop_last=True)
    recorder = Recorder()
    result = fit(student, "rgb", loader, loader, schedule=Schedule(epochs=2, lr=1e-3, weight_decay=0.0),
                 device=torch.device("cpu"), callbacks=[DivergenceGuard(), recorder])
    assert recorder.starts == 1 and recorder.steps == 2 * len(loader)
    assert recorder.records == result.history  # once per epoch, the epoch's own record, in order
    assert [r["epoch"] for r in recorder.records] == [1, 2]
    assert [r["custom/epoch_seen"] for r in recorder.records] == [0.0, 1.0]  # epochs finished before this one
