"""C2KD: customised cross-modal KD through proxies and on-the-fly selection (Huo et al., CVPR 2024).

Huo, Xu, Guo, Wang & Guo, *C2KD: Bridging the Modality Gap for Cross-Modal
Knowledge Distillation*, CVPR 2024. The pretrained teacher keeps training
with the student (bidirectional distillation), and neither network imitates
the other directly: each has a *proxy*, a small head on one of its stages
(pooled, 1×1 conv–BN–LeakyReLU(0.1), linear → class logits), and knowledge
crosses between the proxies only. With z_t, z_s the teacher's and student's
logits, p_t, p_s their proxies' logits and KL(a ← b) = KL(σ(b̄) ‖ σ(a)) (b̄:
no gradient, batch mean), the loss is

    L_T = CE(z_t, y) + KL(p_t ← z_t) + KL(z_t ← p_t) + NT(p_t ← p_s)      the teacher side
    L_S =              KL(p_s ← z_s) + KL(z_s ← p_s) + NT(p_s ← p_t)      the student side

(the student's own CE(z_s, y) is the trainer's CE term). NT is the
on-the-fly selection distillation (OFSD) on non-target classes: the target
class's logit is set to 0 in both, and the per-sample KL is kept only where
the two proxies rank the classes alike, Kendall's τ(p_t, p_s) > κ,

    NT(a ← b) = 1/n Σ_i [τ_i > κ] · KL(σ(b̄_i ⊙ m_i) ‖ σ(a_i ⊙ m_i)),   m_i = 1 − onehot(y_i),

which filters the samples whose soft labels the modality gap has misaligned.
The entry's weight multiplies L_T + L_S; every inner weight is 1 and every
temperature 1, as in the authors' public code (its AVE script), which also
sets κ = 0 and taps the stage before the last (layer3 of a ResNet-18).

Teacher training: the spec declares ``trains_teacher``, so the trainer runs
the teacher in training mode with gradients and optimises it with the
student (a copy of it: the run's frozen teacher, used by every other row,
is never changed). Kendall's τ here is τ-a over all class pairs (the code
calls scipy's τ-b; they differ only on tied logits). Not established from
the paper, and chosen: the proxies' width is the tapped stage's; the code
trains with SGD and a poly schedule over 100 epochs, here the recipe's
optimiser and schedule train all four parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from .checks import same_batch
from .pooling import global_pool
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["C2KD", "c2kd_loss", "kendall_tau", "non_target_kl", "proxy_head"]


def kendall_tau(a: Tensor, b: Tensor) -> Tensor:
    """Kendall's τ-a per row of two (n, C) score matrices: concordant minus discordant class pairs, over C(C−1)/2."""
    same_batch(a, b, "Kendall's τ")
    da = torch.sign(a.unsqueeze(2) - a.unsqueeze(1))  # (n, C, C): ordering of every class pair
    db = torch.sign(b.unsqueeze(2) - b.unsqueeze(1))
    c = a.shape[1]
    return (da * db).sum((1, 2)) / (c * (c - 1))  # each unordered pair counted twice, as is the denominator


def _kl_to(learner: Tensor, target: Tensor) -> Tensor:
    """KL(σ(target) ‖ σ(learner)) per sample; the target carries no gradient."""
    return F.kl_div(F.log_softmax(learner, 1), F.softmax(target.detach(), 1), reduction="none").sum(1)


def non_target_kl(learner: Tensor, target: Tensor, labels: Tensor, keep: Tensor) -> Tensor:
    """NT(learner ← target): KL over the logits with the true class's set to 0, on the kept samples, /n."""
    off_target = 1.0 - F.one_hot(labels, learner.shape[1]).to(learner.dtype)
    return (keep.to(learner.dtype) * _kl_to(learner * off_target, target * off_target)).mean()


def c2kd_loss(t_logits: Tensor, t_proxy: Tensor, s_logits: Tensor, s_proxy: Tensor, labels: Tensor,
              kappa: float = 0.0) -> Tensor:
    """L_T + L_S of the module docstring, from both networks' logits and both proxies' logits."""
    t_logits, t_proxy, s_logits, s_proxy = (at_least_float32(x) for x in (t_logits, t_proxy, s_logits, s_proxy))
    keep = kendall_tau(t_proxy.detach(), s_proxy.detach()) > kappa
    teacher = (F.cross_entropy(t_logits, labels) + _kl_to(t_proxy, t_logits).mean() + _kl_to(t_logits, t_proxy).mean()
               + non_target_kl(t_proxy, s_proxy, labels, keep))
    student = (_kl_to(s_proxy, s_logits).mean() + _kl_to(s_logits, s_proxy).mean()
               + non_target_kl(s_proxy, t_proxy, labels, keep))
    return teacher + student


def proxy_head(channels: int, classes: int) -> nn.Module:
    """Pooled stage → 1×1 conv–BN–LeakyReLU(0.1) → linear: a network's proxy (the code's Tea/Stu)."""
    return nn.Sequential(nn.Unflatten(1, (channels, 1)), nn.Unflatten(2, (1, 1)),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                         nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(channels, classes))


class C2KD(nn.Module):
    """Both proxies (trained with the student and the teacher); called on both networks' outputs and the labels."""

    def __init__(self, student_channels: int, teacher_channels: int, classes: int, kappa: float = 0.0):
        super().__init__()
        self.kappa = kappa
        self.student_proxy = proxy_head(student_channels, classes)
        self.teacher_proxy = proxy_head(teacher_channels, classes)

    def forward(self, teacher: tuple[Tensor, Tensor], student: tuple[Tensor, Tensor], labels: Tensor) -> Tensor:
        (t_logits, t_feat), (s_logits, s_feat) = teacher, student
        with torch.autocast(device_type=s_logits.device.type, enabled=False):
            dtype = self.student_proxy[-1].weight.dtype
            t_proxy = self.teacher_proxy(global_pool(t_feat.to(dtype)))  # pooled in the proxies' precision
            s_proxy = self.student_proxy(global_pool(s_feat.to(dtype)))
            return c2kd_loss(t_logits, t_proxy, s_logits, s_proxy, labels, self.kappa)


class C2KDParams(LossParams):
    kappa: float = Field(0.0, ge=-1, le=1, description="κ: a sample's non-target knowledge crosses between the "
                         "proxies only where their Kendall τ exceeds it (the code's krc, 0)")


register_loss(LossSpec(
    name="c2kd", display="C2KD", what="customised cross-modal KD through proxies",
    citation="Huo, Xu, Guo, Wang & Guo, C2KD: Bridging the Modality Gap for Cross-Modal Knowledge Distillation, "
             "CVPR 2024",
    learned=C2KD, inputs="outputs", params=C2KDParams, needs_classes=True, trains_teacher=True, stops_gradient=True,
    symbols={"kappa": "κ"}, min_batch=2,
    preset={"weight": 1.0, "pairs": [{"teacher": -2, "student": -2}]},
))
