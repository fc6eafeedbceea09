"""SP's floor under class pairing: how much of the teacher's b × b matrix a student cannot learn.

For finished class-paired comparisons (speech_to_digits, digits_to_speech), each
seed's trained teacher is run once over the training set with its own,
privileged inputs; partners are then redrawn within their class many times per
batch (experiments/class_pairing.py) to split the teacher's similarity matrix into
the part the batch's classes fix and the part the draw adds. The second part,
weighted by the recipe's γ, is what SP keeps charging however good the student
is; it is set beside the SP student's final training terms. Trains nothing.

    .venv/bin/python bench/sp_class_pairing.py                       # the newest folder of each
    .venv/bin/python bench/sp_class_pairing.py runs/speech_to_digits_losses/<stamp> ...

Needs the comparison folders (and the data they were trained on); without them
it says so and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine, provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # experiments/ (the diagnostics) lives beside the package, not in it
RESULTS = Path(__file__).parent / "results"
DEFAULT = ["runs/speech_to_digits_losses", "runs/digits_to_speech_losses"]


def relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if ROOT in path.parents else str(path)


def newest(parent: Path) -> Path | None:
    done = sorted(p.parent for p in parent.glob("*/comparison.json"))
    return done[-1] if done else None


def teacher_outputs(recipe, dataset, checkpoint: Path):
    """A run's teacher on ``dataset`` as the run evaluates it (its own inputs, resize only, no augmentation):
    logits, last-stage activations (flattened) and labels."""
    import torch
    from torch.utils.data import DataLoader

    from pldistill.checkpoint import load_checkpoint
    from pldistill.data import JointTransform, ModalityView
    from pldistill.models import TappedModel, build_model

    spec, data = recipe.teacher, recipe.data
    model = build_model(spec.model, data.channels(spec.modality), len(dataset.classes), None,
                        data.input_size(spec.modality))
    model.load_state_dict(load_checkpoint(checkpoint)["state_dict"])
    tapped = TappedModel(model, [-1]).eval()
    transform = (JointTransform({m: dataset.modalities[m] for m in dataset.inputs_of([spec.modality])}, hflip=False,
                                size=data.image_size) if data.needs_resize else None)
    view = ModalityView(dataset, [spec.modality], transform, data.depth_encoding)
    logits, features, labels = [], [], []
    with torch.inference_mode():
        for batch in DataLoader(view, batch_size=256):
            out, (f,) = tapped(batch[spec.modality])
            logits.append(out)
            features.append(f.flatten(1))
            labels.append(batch["label"])
    return torch.cat(logits), torch.cat(features), torch.cat(labels)


def final_terms(seed_dir: Path, row: str) -> dict:
    """The last logged training terms of a student row (weighted, as the loss adds them)."""
    last: dict = {}
    for line in (seed_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        terms = {k.split("/terms/")[1]: v for k, v in record.items() if k.startswith(f"student_{row}/train/terms/")}
        if terms:
            last = terms
    return last


def measure(folder: Path, batches: int, redraws: int) -> list[dict]:
    import yaml

    from pldistill.compare import load_comparison
    from pldistill.data import build_datasets

    from experiments.class_pairing import sp_class_pairing_floor

    info = json.loads((folder / "comparison.json").read_text())
    recorded = yaml.safe_load((folder / "comparison.yaml").read_text())
    comparison, base, variants = load_comparison(ROOT / info["file"], recorded.get("overrides") or [])
    gamma = next(loss.weight for loss in variants["sp"].distill.losses if loss.name == "sp")
    train, _ = build_datasets(base.data)  # seeds change the models, not the data: read it once
    rows = []
    for seed in comparison.seeds:
        seed_dir = folder / f"seed{seed}"
        started = time.perf_counter()
        _, features, labels = teacher_outputs(base, train, seed_dir / "checkpoints" / "teacher.pt")
        floor = sp_class_pairing_floor(features, labels, base.schedule.batch_size, batches, redraws, seed)
        terms = final_terms(seed_dir, "sp")
        sp_term = next((v for k, v in terms.items() if k.startswith("sp")), float("nan"))
        rows.append({"comparison": info["comparison"], "folder": relative(folder), "seed": seed, "gamma": gamma,
                     "teacher": f"{base.teacher.model} on {base.teacher.modality}",
                     "student": f"{base.student.model} on {base.student.modality}",
                     **floor.as_dict(), "weighted_floor": gamma * floor.floor, "weighted_target": gamma * floor.target,
                     "final_sp_term": sp_term, "final_ce_term": terms.get("ce", float("nan")),
                     "seconds": time.perf_counter() - started})
        print(f"{info['comparison']} seed {seed}: γ·floor {gamma * floor.floor:.2f} of γ·target "
              f"{gamma * floor.target:.2f} (within-class share {floor.within_share:.2f}); SP student's final "
              f"SP term {sp_term:.2f}, CE {rows[-1]['final_ce_term']:.2f}")
    return rows


def learned_share(row: dict) -> float:
    return (row["weighted_target"] - row["final_sp_term"]) / (row["weighted_target"] - row["weighted_floor"])


def markdown(rows: list[dict], command: str, machine: dict) -> str:
    import numpy as np

    lines = ["# SP under class pairing: the unlearnable floor", "", *provenance(command, machine), "",
             "Each seed's teacher runs once over the training set (its own inputs, no augmentation). For random "
             "batches of the recipe's size, every partner is redrawn within its class; *floor* is SP's loss of the "
             "best possible student, E‖G̃ − E[G̃ | classes]‖²/b², and *target* all the structure of the teacher's "
             "matrix, E‖G̃ − flat‖²/b² (both × γ, as the loss adds them). The last two columns are the SP "
             "student's own terms in its final epoch; *learned* is how much of the learnable part it took, "
             "(target − final SP term) / (target − floor): 0 is no better than a flat matrix, above 1 means it "
             "memorised some of the fixed training draws.", "",
             "| comparison | teacher → student | γ | γ·floor | γ·target | floor / target | within-class share "
             "(off-diagonal) | final SP term | learned | final CE term |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    readings = []
    for name in dict.fromkeys(r["comparison"] for r in rows):
        mine = [r for r in rows if r["comparison"] == name]

        def stat(key, scale=1.0, digits=2):
            values = np.array([r[key] for r in mine]) * scale
            return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"

        ratio = np.array([r["floor"] / r["target"] for r in mine])
        learned = np.array([learned_share(r) for r in mine])
        readings.append(f"{name}: the class pairing leaves {100 * ratio.mean():.0f}% of the teacher's matrix "
                        f"unlearnable, and the SP student took {100 * learned.mean():.0f}% of the learnable rest.")
        lines.append(f"| {name} (seeds {', '.join(str(r['seed']) for r in mine)}) | {mine[0]['teacher']} → "
                     f"{mine[0]['student']} | {mine[0]['gamma']:g} | {stat('weighted_floor')} | "
                     f"{stat('weighted_target')} | {ratio.mean():.2f} ± {ratio.std():.2f} | {stat('within_share')} | "
                     f"{stat('final_sp_term')} | {learned.mean():.2f} ± {learned.std():.2f} | {stat('final_ce_term')} |")
    lines += ["", " ".join(readings), "", "Folders: " + ", ".join(f"`{f}`" for f in dict.fromkeys(r["folder"] for r in rows)), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="finished class-paired comparison folders "
                        "(default: the newest of runs/speech_to_digits_losses and runs/digits_to_speech_losses)")
    parser.add_argument("--batches", type=int, default=50, help="random batches of classes per seed")
    parser.add_argument("--redraws", type=int, default=32, help="partner redraws per batch")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the saved .json")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads((RESULTS / "sp_class_pairing.json").read_text())
        (RESULTS / "sp_class_pairing.md").write_text(markdown(saved["rows"], saved["command"], saved["machine"]))
        return 0
    folders = args.folders or [f for f in (newest(ROOT / d) for d in DEFAULT) if f is not None]
    if not folders:
        print(f"no finished comparison in {' or '.join(DEFAULT)}: run the speech comparisons first (RESULTS.md); "
              "nothing written")
        return 0
    import torch

    machine = describe_machine(torch)  # before the run: its load average is the machine's, not ours
    rows = [r for folder in folders for r in measure(folder, args.batches, args.redraws)]
    RESULTS.mkdir(exist_ok=True)
    command = "python bench/sp_class_pairing.py " + " ".join(relative(f) for f in folders)
    (RESULTS / "sp_class_pairing.json").write_text(json.dumps({"command": command, "machine": machine, "rows": rows},
                                                              indent=1))
    (RESULTS / "sp_class_pairing.md").write_text(markdown(rows, command, machine))
    print(f"wrote {RESULTS / 'sp_class_pairing.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
