"""Does each real-data teacher generalise or memorise? Its soft targets on train against test images.

For the newest finished comparison of each real-data recipe, every seed's
teacher runs once over the training and the test set (its own, privileged
inputs, no augmentation). Per split: accuracy, mean true-class probability and
the mean probability mass its T = 4 soft targets put on the other classes
(experiments/teacher_signal.py), which is what KD has to pass on beyond the label.
Set beside each comparison's SP and KD gains over scratch. Trains nothing.

    .venv/bin/python bench/teacher_generalisation.py                     # the newest folder of each
    .venv/bin/python bench/teacher_generalisation.py runs/dtd10_hires_to_lowres_losses/<stamp> ...

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
from sp_class_pairing import newest, relative, teacher_outputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # experiments/ (the diagnostics) lives beside the package, not in it
RESULTS = Path(__file__).parent / "results"
DEFAULT = ["runs/speech_to_digits_losses", "runs/digits_to_speech_losses", "runs/cifar10_hires_to_lowres_losses",
           "runs/dtd10_hires_to_lowres_losses"]
TEMPERATURE = 4.0  # the recipes' KD temperature


def measure(folder: Path) -> list[dict]:
    import yaml

    from pldistill.compare import load_comparison
    from pldistill.data import build_datasets

    from experiments.teacher_signal import signal_summary

    info = json.loads((folder / "comparison.json").read_text())
    recorded = yaml.safe_load((folder / "comparison.yaml").read_text())
    comparison, base, _ = load_comparison(ROOT / info["file"], recorded.get("overrides") or [])
    train, test = build_datasets(base.data)
    accuracy = {(c["row"], c["seed"]): c["test_acc"] for c in info["cells"]}
    rows = []
    for seed in comparison.seeds:
        started = time.perf_counter()
        checkpoint = folder / f"seed{seed}" / "checkpoints" / "teacher.pt"
        splits = {}
        for name, dataset in (("train", train), ("test", test)):
            logits, _, labels = teacher_outputs(base, dataset, checkpoint)
            splits[name] = signal_summary(logits, labels, TEMPERATURE)
        scratch = accuracy[("scratch", seed)]
        rows.append({"comparison": info["comparison"], "folder": relative(folder), "seed": seed,
                     "teacher": f"{base.teacher.model} on {base.teacher.modality}", "train_size": len(train),
                     **{f"{split}_{k}": v for split, summary in splits.items() for k, v in summary.items()},
                     **{f"{row}_gain": accuracy[(row, seed)] - scratch for row in ("sp", "kd")
                        if (row, seed) in accuracy},
                     "seconds": time.perf_counter() - started})
        r = rows[-1]
        print(f"{info['comparison']} seed {seed}: teacher acc train {r['train_acc']:.3f} test {r['test_acc']:.3f}; "
              f"non-label mass at T={TEMPERATURE:g} train {r['train_non_label_mass']:.3f} "
              f"test {r['test_non_label_mass']:.3f}")
    return rows


def markdown(rows: list[dict], command: str, machine: dict) -> str:
    import numpy as np

    lines = ["# Teachers that generalise and teachers that memorise", "", *provenance(command, machine), "",
             "Each seed's teacher runs once over the training and the test set (its own inputs, no augmentation). "
             f"*Non-label mass* is the mean probability its T = {TEMPERATURE:g} soft targets put on the classes other "
             "than the label: what KD passes on beyond the label. Distillation reads the teacher on the *training* "
             "images; the ratio train / test says how much of what the teacher would say on new images it still "
             "says on those. Gains are the comparison's, paired with scratch, in points.", "",
             "| comparison | teacher | train images | acc train / test | true-class prob. train / test | "
             f"non-label mass (T = {TEMPERATURE:g}) train / test | train / test | SP gain | KD gain |",
             "|---|---|---:|---|---|---|---:|---:|---:|"]

    for name in dict.fromkeys(r["comparison"] for r in rows):
        mine = [r for r in rows if r["comparison"] == name]

        def mean(key, scale=1.0):
            return float(np.mean([r[key] for r in mine if key in r])) * scale

        def pm(key, scale=100.0, digits=1):
            values = np.array([r[key] for r in mine if key in r]) * scale
            return f"{values.mean():+.{digits}f} ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else "–"

        ratio = mean("train_non_label_mass") / mean("test_non_label_mass")
        lines.append(
            f"| {name} (seeds {', '.join(str(r['seed']) for r in mine)}) | {mine[0]['teacher']} | "
            f"{mine[0]['train_size']} | {mean('train_acc', 100):.1f} / {mean('test_acc', 100):.1f} | "
            f"{mean('train_true_class_prob'):.3f} / {mean('test_true_class_prob'):.3f} | "
            f"{mean('train_non_label_mass'):.3f} / {mean('test_non_label_mass'):.3f} | {ratio:.2f} | "
            f"{pm('sp_gain')} | {pm('kd_gain')} |")
    lines += ["", "Folders: " + ", ".join(f"`{f}`" for f in dict.fromkeys(r["folder"] for r in rows)), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="finished comparison folders (default: the newest of "
                        + ", ".join(DEFAULT) + ")")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the saved .json")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads((RESULTS / "teacher_generalisation.json").read_text())
        (RESULTS / "teacher_generalisation.md").write_text(markdown(saved["rows"], saved["command"], saved["machine"]))
        return 0
    folders = args.folders or [f for f in (newest(ROOT / d) for d in DEFAULT) if f is not None]
    if not folders:
        print(f"no finished comparison in {', '.join(DEFAULT)}: run the real-data comparisons first (RESULTS.md); "
              "nothing written")
        return 0
    import torch

    machine = describe_machine(torch)
    rows = [r for folder in folders for r in measure(folder)]
    RESULTS.mkdir(exist_ok=True)
    command = "python bench/teacher_generalisation.py " + " ".join(relative(f) for f in folders)
    (RESULTS / "teacher_generalisation.json").write_text(
        json.dumps({"command": command, "machine": machine, "rows": rows}, indent=1))
    (RESULTS / "teacher_generalisation.md").write_text(markdown(rows, command, machine))
    print(f"wrote {RESULTS / 'teacher_generalisation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
