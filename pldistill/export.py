"""Ship the student: safetensors weights plus the config timm needs to rebuild it.

    pldistill export runs/depth_to_rgb/20261125-101500 --out exported/depth_to_rgb

writes timm's own local-folder format (``timm.models.save_for_hf``), so the
student loads with timm alone, no pldistill and no teacher:

    import timm
    model = timm.create_model("local-dir:exported/depth_to_rgb", pretrained=True).eval()

``config.json`` holds the architecture, the class names (``label_names``),
the input size, mean and std, and a ``pldistill`` block saying which modality
the student reads and how an image becomes its input. Only the student's
weights are written: the teacher and every privileged modality stay behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import timm
import torch
from timm.models import save_for_hf

from .checkpoint import load_checkpoint
from .errors import PldistillError
from .models import size_kwargs

STUDENTS = ("distilled", "scratch")
DELIVERED = "delivered"  # the run's own choice: distilled, unless student.holdout declined distillation


class ExportError(PldistillError, ValueError):
    """A run folder that cannot be exported; the message says why and what to do."""


def _run_facts(run_dir: Path) -> dict:
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        raise ExportError(
            f"{run_dir}: no results.json; export needs a finished run folder (finish it with "
            f"`pldistill run --resume {run_dir}`)"
        )
    results = json.loads(results_file.read_text())
    if "modalities" not in results["dataset"]:
        raise ExportError(f"{run_dir}: made by an older pldistill that did not record input encodings; re-run it")
    return results


def export_student(run_dir: str | Path, out: str | Path | None = None, which: str = DELIVERED) -> Path:
    """Write ``model.safetensors`` + ``config.json`` for the run's student; return the folder.

    ``delivered`` is the distilled student unless the run declined distillation on its
    hold-out (``student.holdout``, ``results.json``'s ``delivered``), then the scratch one.
    """
    run_dir = Path(run_dir)
    if which not in (DELIVERED, *STUDENTS):
        raise ExportError(f"--student must be one of {(DELIVERED, *STUDENTS)}, got {which!r}")
    results = _run_facts(run_dir)
    if which == DELIVERED:
        which = (results.get("delivered") or {}).get("student", "distilled")
    checkpoint = run_dir / "checkpoints" / f"student_{which}.pt"
    state = load_checkpoint(checkpoint)
    name, modality = state["model"], state["modality"]
    spec = results["dataset"]["modalities"][modality]
    if spec["kind"] != "image":
        raise ExportError(f"the student reads {modality!r} ({spec['kind']}); export handles image students only")
    classes = results["dataset"]["classes"]
    size = spec["input_size"]
    model = timm.create_model(name, pretrained=False, in_chans=spec["channels"], num_classes=len(classes),
                              **size_kwargs(name, size))
    model.load_state_dict(state["state_dict"])  # strict: exactly the student that was evaluated
    data_config = {"input_size": (spec["channels"], size, size), "mean": tuple(spec["mean"]),
                   "std": tuple(spec["std"]), "crop_pct": 1.0, "interpolation": "bilinear"}
    student = results["students"][which]
    info = {
        "modality": modality,
        "channels": spec["channels"],
        "input_size": size,
        "mean": spec["mean"],
        "std": spec["std"],
        "preprocess": "decode to uint8 (RGB, or grayscale when channels is 1), resize to input_size × input_size "
                      "with area interpolation, scale to [0, 1], subtract mean, divide by std",
        "recipe": results["recipe"],
        "seed": results["seed"],
        "student": which,
        "test_acc": student["test_acc"],
        "losses": student["losses"],
        "teacher": {"model": results["teacher"]["model"], "modality": results["teacher"]["modality"],
                    "note": "used in training only; not part of this export"},
        "source_run": str(run_dir),
        "delivery": results.get("delivered"),  # student.holdout's choice and its reason; null without one
    }
    out = Path(out) if out is not None else Path("exported") / f"{results['recipe']}-seed{results['seed']}-{which}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # write beside the target, then swap it in: a crash never leaves half an export
        # the architecture's default cfg names ImageNet weights and their licence: not what these weights are
        provenance = {"tag": f"pldistill-{results['recipe']}", "license": "that of the training data"}
        save_for_hf(model, str(tmp), model_config={"label_names": classes, "pldistill": info,
                                                   "pretrained_cfg": provenance},
                    safe_serialization=True, data_config=data_config)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_exported(folder: str | Path) -> tuple[torch.nn.Module, dict]:
    """(timm model in eval mode, config.json): what ``predict`` uses — timm alone rebuilds the model."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file() or not (folder / "model.safetensors").is_file():
        raise ExportError(f"{folder}: not an exported student (needs config.json and model.safetensors); "
                          "make one with `pldistill export RUN_DIR --out FOLDER`")
    config = json.loads(config_file.read_text())
    if "pldistill" not in config:
        raise ExportError(f"{folder}/config.json: no 'pldistill' block; not written by `pldistill export`")
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    return model.eval(), config
