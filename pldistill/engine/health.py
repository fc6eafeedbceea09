"""The health check: notice, while a distilled student trains, that distillation is hurting it.

"Distillation made my student worse than scratch" is the most common complaint
about KD; the run has what it needs to say so as it happens. The scratch
student trains first, from the same initial weights on the same batches, so
its history is a per-epoch reference. Two findings:

- ``dominates``: a term's weighted gradient is ``dominance``× CE's or more on
  the calibration steps, or on a later epoch's probe steps (``balance.py``:
  CE's gradient shrinks as the student fits, a term's need not), i.e. the
  student is optimised for the teacher's relations and hardly for its labels.
- ``trails``: for ``patience`` epochs in a row the distilled student's
  training CE is above the scratch student's by more than ``ce_margin``
  (relative), or its test accuracy below by more than ``acc_points``. A
  student that trains with another joint mixup than the scratch one (STKD)
  has a training CE on mixed samples, higher by construction: only its test
  accuracy is compared.

Each finding is printed in one line (the term, its magnitude, what to try)
and kept in the stage's results. ``on_harm: stop`` ends the stage early and
``on_harm: lower`` multiplies every distillation weight by ``lower_factor``
(again after every further ``patience`` epochs the training CE still trails);
both act on the training signals only (dominance, training CE), never on
test accuracy, so no decision of the run is taken on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tqdm.auto import tqdm

from .. import distributed
from .callbacks import Callback, TrainState
from .mixup import MIXUP_ALPHA

Action = Literal["warn", "stop", "lower"]


@dataclass(frozen=True)
class HealthPolicy:
    """The thresholds and the action; a recipe's ``distill.health`` holds their defaults and meanings."""

    dominance: float
    ce_margin: float
    acc_points: float
    patience: int
    on_harm: Action
    lower_factor: float


# What to try, by finding: a drowning term needs a smaller weight; a student that trails at a sane weight
# usually reads the wrong stage (speech_to_digits' 1 × 1 last stage, RESULTS.md).
ADVICE = {
    "dominates": "state the weight relative to CE (relative: true, weight 1) or lower it; "
                 "`pldistill calibrate RECIPE` tries several",
    "trails": "try another stage pair or a smaller weight: `pldistill calibrate RECIPE --stages T:S` tries them; "
              "student.holdout: 0.1 delivers the scratch student if distillation still trails on a hold-out",
}


class HealthCheck(Callback):
    """Compares each epoch with the scratch student's (``reference``) and the terms' measured ratios."""

    def __init__(self, policy: HealthPolicy, reference: list[dict] | None):
        self.policy = policy
        self.reference = {r["epoch"]: r for r in reference or []}
        self._replay = self._started = False
        self._streak = {"ce": 0, "acc": 0}
        self._reported: set[str] = set()

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if not self._started:  # a resumed stage: first rebuild the findings of the epochs trained before
            self._started = True
            for earlier in state.history[:-1]:
                self._check(state, earlier, replay=True)
        self._check(state, record, replay=False)

    def _check(self, state: TrainState, record: dict, replay: bool) -> None:
        if not state.balance.weights:  # a scratch student or a teacher: nothing to check
            return
        self._replay = replay
        epoch = record["epoch"]
        ratios: dict[str, float] = {}  # each term's larger: on the calibration steps or on this epoch's probe
        for prefix in ("grad_ratio/", "grad_ratio_epoch/"):
            for k, v in record.items():
                if k.startswith(prefix):
                    ratios[k[len(prefix):]] = max(ratios.get(k[len(prefix):], 0.0), v)
        for term, ratio in ratios.items():  # as measured with the weights of that moment (balance.py)
            if ratio >= self.policy.dominance and term not in self._reported:
                self._reported.add(term)
                value = record.get(f"train/terms/{term}", 0.0) / max(record.get("train/terms/ce", 0.0), 1e-12)
                self._find(state, "dominates", epoch, term, ratio,
                           f"{term}'s weighted gradient is {ratio:.0f}× CE's (its value {value:.0f}× CE's): the "
                           f"student barely learns its labels", acts=True)
        ref = self.reference.get(epoch)
        if ref is None:
            return
        own_ce, ref_ce = record.get("train/terms/ce"), ref.get("train/terms/ce", ref.get("train/loss"))
        same_kind = record.get(MIXUP_ALPHA, 0.0) == ref.get(MIXUP_ALPHA, 0.0)  # CE on mixed samples is higher
        ce_behind = (same_kind and own_ce is not None and ref_ce is not None
                     and own_ce > ref_ce * (1 + self.policy.ce_margin))
        acc_gap = 100 * (ref["val/acc"] - record["val/acc"])
        self._streak["ce"] = self._streak["ce"] + 1 if ce_behind else 0
        self._streak["acc"] = self._streak["acc"] + 1 if acc_gap > self.policy.acc_points else 0
        if self._streak["ce"] == self.policy.patience:
            self._find(state, "trails", epoch, "ce", own_ce / ref_ce,
                       f"training CE {own_ce:.3f} against the scratch student's {ref_ce:.3f} for "
                       f"{self.policy.patience} epochs", acts=True)
            if self.policy.on_harm == "lower":  # still behind after another patience epochs: lower again
                self._streak["ce"] = 0
        if self._streak["acc"] == self.policy.patience:
            self._find(state, "trails", epoch, "test acc", acc_gap,
                       f"test accuracy {100 * record['val/acc']:.1f}% is {acc_gap:.1f} points below the scratch "
                       f"student's for {self.policy.patience} epochs", acts=False)

    def _find(self, state: TrainState, kind: str, epoch: int, term: str, magnitude: float, what: str,
              acts: bool) -> None:
        action = self.policy.on_harm if acts else "warn"
        finding = {"epoch": epoch, "kind": kind, "term": term, "magnitude": magnitude, "action": action,
                   "message": f"health: {state.name} epoch {epoch}: {what}; {ADVICE[kind]}"}
        if action == "lower":
            finding["message"] += f" (distillation weights ×{self.policy.lower_factor:g} from here)"
        elif action == "stop":
            finding["message"] += " (stopped here)"
        state.health.append(finding)
        if self._replay:  # its action took effect before the stage was resumed (a lowered weight is restored)
            return
        if action == "lower":
            state.balance.scale(self.policy.lower_factor)
        elif action == "stop":
            state.stop = True
        if distributed.is_main():
            tqdm.write(finding["message"])
