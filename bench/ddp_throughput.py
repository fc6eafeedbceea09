"""Samples per second of the distilled-student stage: one process vs several (torchrun, DDP).

Flagship sizes (recipes/depth_to_rgb.yaml: 4000 training samples, global batch
64, 48 px, resnet10t depth teacher with random weights, mobilenetv3_small_100
RGB student, SP γ=3000 over the global batch). Each configuration is a real
``torchrun --standalone`` job that trains the distilled student through
``stages.train_student`` for a few epochs; the rate is training samples over the
median training time of the epochs after the first (evaluation excluded).
On a 2-core CPU the configurations share the same two cores: 1 process × 2
threads against 2 processes × 1 thread (and 1 × 1 as the per-core baseline).
Writes bench/results/ddp_throughput.{json,md}.

    .venv/bin/python bench/ddp_throughput.py        # ~2 min on 2 CPU cores
    .venv/bin/python bench/ddp_throughput.py --device cuda --precision bf16 --configs 1x1 2x1   # GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RECIPE = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"
CONFIGS = ["1x2", "2x1", "1x1"]  # processes x threads per process


def worker(epochs: int, out: Path, device: str, precision: str) -> None:
    """One rank of the job: the distilled-student stage, timed by fit's own per-epoch clock."""
    import torch

    from pldistill import distributed
    from pldistill.recipe import load_recipe
    from pldistill.stages import Run, train_student
    from pldistill.tracking import NullTracker

    recipe = load_recipe(RECIPE)
    losses = [loss.model_copy(update={"scope": "global"}) for loss in recipe.distill.losses]
    recipe = recipe.model_copy(update={
        "schedule": recipe.schedule.model_copy(update={"epochs": epochs, "device": device, "precision": precision}),
        "distill": recipe.distill.model_copy(update={"losses": losses}),
    })
    with distributed.process_group(device):
        run_dir = Path(distributed.share_text(tempfile.mkdtemp(prefix="ddp-bench-") if distributed.is_main() else ""))
        run = Run(recipe, run_dir, NullTracker(), progress=False)
        torch.manual_seed(0)
        teacher = run.build(recipe.teacher)  # random weights: the cost does not depend on what it learned
        summary = train_student(run, "distilled", teacher)
        if distributed.is_main():
            steps = len(run.data.train_loader([recipe.student.modality, recipe.teacher.modality], 0))
            out.write_text(json.dumps({
                "epoch_seconds": [row["train/seconds"] for row in summary["history"]],
                "samples_per_epoch": steps * recipe.schedule.batch_size,
                "world_size": distributed.world_size(),
                "threads": torch.get_num_threads(),
            }))
    distributed.exit_job(0)


def measure(processes: int, threads: int, epochs: int, device: str, precision: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rate.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   __file__, "--worker", "--epochs", str(epochs), "--out", str(out), "--device", device,
                   "--precision", precision]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        got = json.loads(out.read_text())
    timed = got["epoch_seconds"][1:]  # the first epoch warms up allocators and caches
    seconds = statistics.median(timed)
    return {"processes": processes, "threads_per_process": threads, "epoch_seconds": got["epoch_seconds"],
            "median_epoch_seconds": seconds, "samples_per_epoch": got["samples_per_epoch"],
            "samples_per_second": got["samples_per_epoch"] / seconds, "job_seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="PROCESSESxTHREADS, e.g. 1x2 2x1")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.epochs, args.out, args.device, args.precision)
        return 0
    import torch

    load = os.getloadavg()
    configs = [tuple(int(n) for n in c.split("x")) for c in args.configs]
    rows = [measure(p, t, args.epochs, args.device, args.precision) for p, t in configs]
    base = rows[0]["samples_per_second"]
    machine = f"{cpu_name()}, {os.cpu_count()} cores"
    command = " ".join(["python bench/ddp_throughput.py", *sys.argv[1:]])
    results = {"command": command, "device": args.device, "precision": args.precision, "machine": machine,
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
               "load_average_before": load, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ddp_throughput.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"# DDP throughput: distilled-student stage, {args.device}, {args.precision}",
        "",
        f"Command: `{results['command']}` (each row a `torchrun --standalone --nproc_per_node=N` job)  ",
        f"Machine: {machine}; torch {torch.__version__}; {results['date']}; "
        f"load average before: {load[0]:.2f} (shared machine).",
        "",
        "Flagship sizes: 4000 × 48 px samples, global batch 64, resnet10t depth teacher, mobilenetv3_small_100 "
        "RGB student, SP γ=3000 with `scope: global`; median of epochs 2–"
        f"{args.epochs} (training only, evaluation excluded).",
        "",
        f"| processes × threads | samples / epoch | median epoch s | samples/s | vs {rows[0]['processes']} × "
        f"{rows[0]['threads_per_process']} |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['processes']} × {r['threads_per_process']} | {r['samples_per_epoch']} | "
                     f"{r['median_epoch_seconds']:.2f} | {r['samples_per_second']:.0f} | "
                     f"{r['samples_per_second'] / base:.2f}× |")
    if args.device == "cpu":
        lines += [
            "",
            "Both the 1 × 2 and the 2 × 1 rows use the machine's two cores; 2 × 1 adds DDP's gradient all-reduce "
            "(gloo), the global-batch gather of SP features and a second copy of the frozen teacher. On two cores "
            "the point of multi-process training is that it is correct (tests/test_distributed.py), not that it "
            "is faster: here one process with two threads beats two processes with one thread each.",
            "",
            "GPU rows (1 GPU, `schedule.precision: bf16` vs `fp32`; several GPUs under torchrun) could not be "
            "measured: this machine has no GPU. On a GPU machine: `python bench/ddp_throughput.py --device cuda "
            "--precision fp32 --configs 1x1 2x1`, then the same with `--precision bf16`.",
        ]
    (RESULTS / "ddp_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
