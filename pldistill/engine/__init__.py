"""The training engine: the step contract, the loop, its callbacks, and device/precision set-up.

    step.py       distill_step, StepOutput: one forward pass → weighted loss terms
    loop.py       fit, FitResult: the epochs, with callbacks as the only extension points
    callbacks.py  Callback and the standard ones (divergence guard, progress checkpoint, metrics, log, printer)
    optim.py      Schedule (the optimiser settings), optimiser + LR schedule + loss scaler, DDP wrapping
    evaluate.py   evaluate: test accuracy on one modality
    device.py     pick_device, seed_everything, check_precision, autocast, to_device
"""

from .callbacks import (Callback, ConsolePrinter, DivergenceGuard, EpochMetrics, MetricsLog, ProgressCheckpoint,
                        TrainState, standard_callbacks)
from .device import PRECISIONS, autocast, check_precision, pick_device, seed_everything, to_device
from .evaluate import evaluate
from .loop import FitResult, fit
from .optim import Schedule
from .step import StepOutput, distill_step

__all__ = [
    "Callback", "ConsolePrinter", "DivergenceGuard", "EpochMetrics", "FitResult", "MetricsLog", "PRECISIONS",
    "ProgressCheckpoint", "Schedule", "StepOutput", "TrainState", "autocast", "check_precision", "distill_step",
    "evaluate", "fit", "pick_device", "seed_everything", "standard_callbacks", "to_device",
]
