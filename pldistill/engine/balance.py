"""Term weights stated relative to cross-entropy: one strength that means the same for every pair of models.

An absolute weight (SP's γ = 3000) means different things for different
teacher–student pairs: a term's value and gradient scale with the tapped
stages' statistics, the batch size and the loss's own normalisation. The
flagship's γ, right for MobileNetV3-small, made a RegNetX student 22.5 points
worse than scratch. ``relative: true`` states the weight as a multiple r of
CE's gradient on the student instead:

    w_k = r_k · Σ_s ‖∇_θ CE_s‖ / Σ_s ‖∇_θ L_k,s‖        over the first S steps s,

θ the student's parameters (not the losses' learned parts), L_k the unweighted
term, S = ``distill.calibration_steps``; after S steps w_k stays fixed, so the
rest of training is ordinary weighted distillation. Every term is measured
the same way, absolute or not, which gives its *effective* ratio
w_k ‖∇L_k‖ / ‖∇CE‖: what the health check reads when one term drowns CE.

The ratio can drift as training goes on: CE's gradient shrinks as the
student fits its labels while a relational term's need not, so a term that
was 1× CE at the start can drown CE later. So every later epoch measures it
again on its first P = ``distill.probe_steps`` steps (``grad_ratio_epoch/``):
the health check reads it, and with a loss entry's ``rebalance: every_epoch`` the
weights of those relative terms are set again from those P steps,

    w_k ← r_k · Σ_p ‖∇CE_p‖ / Σ_p ‖∇L_k,p‖,

which holds the term at r× CE for the whole run instead of only at its start.

A term may also *warm up* (a loss entry's ``warmup_epochs``): its weight is
multiplied by min(1, t / T_k), t the training step and T_k its warm-up in
steps, as DKD (Zhao et al., CVPR 2022, §3.3) ramps its weight over the first
epochs. A student that starts at chance learns its labels first; the term
then joins gradually instead of steering the first steps (docs/weights.md).

The measurement reuses the step's own forward pass (one extra backward per
term and CE, S + P·(epochs − 1) times); it changes no parameter and draws no
random number, so a run with absolute weights trains exactly as it would
without it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .. import distributed
from ..terms import DistillTerm
from .step import StepOutput


def gradient_norm(value: Tensor, params: Sequence[nn.Parameter]) -> float:
    """‖∂value/∂params‖₂ without touching ``.grad`` (the graph is kept for the real backward)."""
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return sum(float(g.float().pow(2).sum()) for g in grads if g is not None) ** 0.5


class TermBalance:
    """The weights the loop uses, calibrated on the first steps for relative terms and measured for all."""

    def __init__(self, terms: Sequence[DistillTerm], steps: int, probe_steps: int = 0, steps_per_epoch: int = 1):
        self.relative = {t.key: t.weight for t in terms if t.relative}  # key → r
        # relative terms weigh 0 (CE alone) until a step has measured them: the first step, unless it is not finite
        self.full = {t.key: 0.0 if t.relative else t.weight for t in terms}  # before any warm-up ramp
        self.warmup = {t.key: t.warmup_epochs * steps_per_epoch for t in terms if t.warmup_epochs > 0}  # in steps
        self.step = 0  # the training step the next weights are for (``at_step``)
        self.steps, self.probe_steps = steps, probe_steps
        self.rebalanced = [t.key for t in terms if t.relative and t.rebalance]  # set again every epoch
        self.grad_sums = {"ce": 0.0, **{t.key: 0.0 for t in terms}}  # unweighted gradient norms, summed
        self.seen = 0
        self.epoch_sums: dict[str, float] = {}  # this epoch's probe steps, likewise (after calibration)
        self.epoch_seen = 0
        self.epoch_ratios: dict[str, float] = {}  # weighted ratios on this epoch's probe steps, before any reset
        self.calibrated = dict(self.full)  # the weights the calibration steps set (what ratios() reports)

    @property
    def weights(self) -> dict[str, float]:
        """The weights this step trains with: the full weights, times each warming term's ramp."""
        return {k: w * min(1.0, self.step / self.warmup[k]) if k in self.warmup else w for k, w in self.full.items()}

    def at_step(self, step: int) -> None:
        """The loop's next step (the warm-up ramps read it)."""
        self.step = step

    @property
    def calibrating(self) -> bool:
        return self.seen < self.steps and len(self.grad_sums) > 1

    @property
    def probing(self) -> bool:
        return not self.calibrating and self.epoch_seen < self.probe_steps and len(self.grad_sums) > 1

    def start_epoch(self) -> None:
        """A new epoch: its first ``probe_steps`` steps measure the ratios again (not while still calibrating)."""
        self.epoch_sums = dict.fromkeys(self.grad_sums, 0.0)
        self.epoch_seen = self.probe_steps if self.calibrating else 0
        self.epoch_ratios = {}

    def _measure(self, out: StepOutput, params: Sequence[nn.Parameter]) -> list[float] | None:
        keys = list(self.grad_sums)
        norms = distributed.all_reduce_sum([gradient_norm(out.raw[k], params) for k in keys])
        # a diverging step is the divergence guard's to report; oneDNN's bf16 depthwise-conv weight gradient
        # can also come back NaN from autograd.grad alone (torch 2.14, CPU) while backward() is finite
        return norms if all(math.isfinite(n) for n in norms) else None

    def observe(self, out: StepOutput, params: Sequence[nn.Parameter]) -> StepOutput:
        """On calibration and probe steps: measure this step's gradients, update relative weights, reweigh."""
        if self.probing:
            return self._probe(out, params)
        if not self.calibrating:
            return out
        norms = self._measure(out, params)
        self.seen += 1
        if norms is None:
            return out.reweighed(self.weights) if self.relative else out
        for k, n in zip(self.grad_sums, norms):
            self.grad_sums[k] += n  # summed over ranks too: the ratio is that of the means
        for k, r in self.relative.items():
            if self.grad_sums[k] == 0 or self.grad_sums["ce"] == 0:
                raise FloatingPointError(
                    f"{k}: no finite gradient of it or of CE reached the student in the first {self.seen} step(s), "
                    "so a weight relative to CE cannot be set; give this loss an absolute weight (relative: false)"
                )
            self.full[k] = r * self.grad_sums["ce"] / self.grad_sums[k]
        self.calibrated = dict(self.full)
        return out.reweighed(self.weights) if self.relative else out

    def _probe(self, out: StepOutput, params: Sequence[nn.Parameter]) -> StepOutput:
        """A later epoch's probe step: measure; after the last one, record the ratios and maybe reset weights."""
        norms = self._measure(out, params)
        if not self.epoch_sums:  # observed without start_epoch (a bare loop): the probe starts here
            self.start_epoch()
        self.epoch_seen += 1
        if norms is not None:
            for k, n in zip(self.grad_sums, norms):
                self.epoch_sums[k] += n
        if self.epoch_seen < self.probe_steps or self.epoch_sums["ce"] == 0:
            return out
        ce = self.epoch_sums["ce"]
        weights = self.weights
        self.epoch_ratios = {k: weights[k] * g / ce for k, g in self.epoch_sums.items() if k != "ce"}
        for k in self.rebalanced:
            if self.epoch_sums[k] > 0:
                self.full[k] = self.relative[k] * ce / self.epoch_sums[k]
        return out.reweighed(self.weights) if self.rebalanced else out  # this step trains with the new weights

    def ratios(self) -> dict[str, float]:
        """Each term's weighted gradient norm over CE's on the calibration steps (its effective relative weight)."""
        ce = self.grad_sums["ce"]
        if not self.seen or ce == 0:
            return {}
        return {k: self.calibrated[k] * g / ce for k, g in self.grad_sums.items() if k != "ce"}

    def scale(self, factor: float) -> None:
        """Multiply every distillation weight by ``factor`` (the health check's ``on_harm: lower``).

        A relative term's r is scaled too, so that rebalancing every epoch keeps the lowered strength.
        """
        self.full = {k: w * factor for k, w in self.full.items()}
        self.relative = {k: r * factor for k, r in self.relative.items()}

    def epoch_metrics(self) -> dict[str, float]:
        """``weight/``, ``grad_ratio/`` (calibration steps) and ``grad_ratio_epoch/`` (this epoch's probe) per term."""
        record = {f"weight/{k}": w for k, w in self.weights.items()}
        record.update({f"grad_ratio/{k}": r for k, r in self.ratios().items()})
        record.update({f"grad_ratio_epoch/{k}": r for k, r in self.epoch_ratios.items()})
        return record

    def state_dict(self) -> dict:
        return {"weights": dict(self.full), "grad_sums": dict(self.grad_sums), "seen": self.seen,
                "relative": dict(self.relative), "calibrated": dict(self.calibrated)}

    def load_state_dict(self, state: dict) -> None:
        self.full = dict(state["weights"])
        self.grad_sums = dict(state["grad_sums"])
        self.seen = int(state["seen"])
        self.relative = dict(state.get("relative", self.relative))  # older files: r was never lowered
        self.calibrated = dict(state.get("calibrated", self.full))


def term_weights(record: dict) -> dict[str, dict[str, float | None]]:
    """Read back what ``TermBalance.epoch_metrics`` wrote into an epoch record: term → weight, grad_ratio."""
    return {k[len("weight/"):]: {"weight": v, "grad_ratio": record.get("grad_ratio/" + k[len("weight/"):])}
            for k, v in record.items() if k.startswith("weight/")}
