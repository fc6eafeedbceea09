"""Command line: ``pldistill run RECIPE``. Errors are one clear line, not a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

for _name, _value in {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}.items():
    os.environ.setdefault(_name, _value)


def _run(args: argparse.Namespace) -> int:
    from .recipe import RecipeError, load_recipe

    if args.recipe is None and args.resume is None:
        raise RecipeError("give a recipe file, or --resume RUN_DIR")
    if args.recipe is None and not (args.resume / "recipe.yaml").exists():
        from .stages.folder import ResumeError

        raise ResumeError(f"{args.resume}: not a run folder (no recipe.yaml); nothing to resume")
    if args.recipe is not None and "=" in str(args.recipe):
        raise RecipeError(f"{args.recipe}: the recipe file comes first, then key=value overrides")
    recipe_path = args.recipe or args.resume / "recipe.yaml"
    overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    recipe = load_recipe(recipe_path, overrides)  # a bad recipe is refused before the training code loads
    from .distributed import process_group
    from .run import find_interrupted, run_recipe

    resume = args.resume
    if resume is None and not args.fresh:
        resume = find_interrupted(recipe, args.runs_dir)
        if resume is not None:
            print(f"found an interrupted run of this recipe: {resume} (use --fresh to start over)")
    with process_group(recipe.schedule.device):  # under torchrun: the job's process group; otherwise nothing
        out = run_recipe(recipe, recipe_path, runs_dir=args.runs_dir, progress=not args.quiet, resume=resume)
    if not out.results:  # ranks > 0 of a torchrun job: rank 0 writes and prints the results
        return 0
    print()
    print((out.run_dir / "results.md").read_text())
    print(f"run folder: {out.run_dir}")
    if out.results["wandb"]["sync"]:
        print(f"W&B run saved offline; to upload it: {out.results['wandb']['sync']}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import run_sweep

    root, _ = run_sweep(args.recipe, grid=args.grid, overrides=args.overrides, seeds=args.seeds,
                        runs_dir=args.runs_dir, progress=not args.quiet)
    print()
    print((root / "sweep.md").read_text())
    print(f"sweep folder: {root} (run the same command again to skip finished runs)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import run_comparison

    run_dir, _ = run_comparison(args.file, runs_dir=args.runs_dir, resume=args.resume,
                                seeds=args.seeds, progress=not args.quiet, overrides=args.overrides,
                                only=args.rows)
    print()
    print((run_dir / "comparison.md").read_text())
    print(f"comparison folder: {run_dir} (plot: {run_dir / 'comparison.png'})")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .calibrate import run_calibration, write_override

    run_dir, results = run_calibration(args.recipe, args.overrides, weights=args.weights, stages=args.stages,
                                       epochs=args.epochs, holdout=args.holdout, runs_dir=args.runs_dir,
                                       progress=not args.quiet)
    print()
    print((run_dir / "calibration.md").read_text())
    if args.write is not None and results["chosen"] is not None:
        print(f"wrote {write_override(results, args.recipe, args.write)}: run it with `pldistill run {args.write}`")
    print(f"calibration folder: {run_dir}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .html_report import build_report, compare_runs

    for run_dir in args.run_dirs:
        print(f"report: {build_report(run_dir)}")
    if len(args.run_dirs) > 1:
        print(f"side by side: {compare_runs(args.run_dirs, args.out)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .data.check import checked_datasets
    from .recipe import load_recipe

    recipe = load_recipe(args.recipe, list(args.overrides))
    sections = {"data": recipe.data, **({"teacher.data": recipe.teacher.data} if recipe.teacher.data else {})}
    for key, data in sections.items():
        train, test = checked_datasets(data, progress=not args.quiet, summary=True)
        print(f"{key}: {data.kind}, {len(train)} train + {len(test)} test samples, "
              f"modalities {sorted(train.modalities)}, {len(train.classes)} classes")
    print(f"{args.recipe}: the recipe and its data are ready to run")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from .data.packed import PackedDatasetError, pack
    from .recipe import RecipeError, load_recipe

    recipe = load_recipe(args.recipe)
    train, test = recipe.data.build()
    out = args.out or Path("packed") / recipe.name
    written = {}
    try:
        for split, dataset in (("train", train), ("test", test)):
            written[split] = pack(dataset, out / f"{split}.h5", compression=args.compression,
                                  progress=not args.quiet)
            print(f"packed {len(dataset)} {split} samples of {recipe.data.kind} → {written[split]}")
    except PackedDatasetError as exc:
        raise RecipeError(f"{args.recipe}: data: {exc}") from None
    print("use them in a recipe with:")
    print(f"data:\n  kind: packed\n  train: {written['train']}\n  test: {written['test']}\n"
          f"  image_size: {recipe.data.image_size}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_student

    out = export_student(args.run_dir, args.out, args.student)
    which = json.loads((out / "config.json").read_text())["pldistill"]["student"]
    print(f"exported the {which} student to {out} (model.safetensors + config.json)")
    print(f'load it with timm alone: timm.create_model("local-dir:{out}", pretrained=True)')
    print(f"classify images: pldistill predict {out} IMAGE…")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import json

    from .predict import predict

    predictions = predict(args.export_dir, args.images, top=args.top)
    for p in predictions:
        if args.json:
            print(json.dumps({"path": p.path, "label": p.label, "index": p.index, "probability": p.probability,
                              "top": p.top}))
        else:
            others = "  ".join(f"{label} {prob:.2f}" for label, prob in p.top[1:])
            print(f"{p.path}\t{p.label}\t{p.probability:.3f}" + (f"\t{others}" if others else ""))
    return 0


TOP_EXAMPLES = """examples:
  pldistill run recipes/depth_to_rgb.yaml                          teacher, scratch and distilled student
  pldistill run recipes/depth_to_rgb.yaml schedule.epochs=4 distill.losses.0.weight=2
                                                                   any recipe key overridden, validated
  pldistill sweep recipes/depth_to_rgb.yaml --grid distill.loss=sp,kd,sp+kd --seeds 3
                                                                   a grid × seeds, one mean ± std table
  pldistill compare recipes/compare/depth_to_rgb_losses.yaml       every loss on one recipe, one table
  pldistill check recipes/depth_to_rgb.yaml                        the recipe and every data file, read once
  pldistill report runs/depth_to_rgb/<stamp>                       (re)draw a run's report.html
  pldistill pack recipes/nyu_depth_to_rgb.yaml                     real data → packed HDF5 splits
  pldistill export runs/depth_to_rgb/<stamp> --out exported/s      the student as safetensors + timm config
  pldistill predict exported/s photo.png                           classify images with the student alone
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pldistill",
        description="Privileged-learning and cross-modal knowledge distillation: a teacher trained on a "
                    "privileged modality (depth, RGB-D, high resolution) teaches a student that only gets the "
                    "cheap one. `pldistill COMMAND --help` shows each command's options and examples.",
        epilog=TOP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="train the teacher, the scratch and the distilled student; write a run folder",
        epilog="examples: pldistill run recipes/depth_to_rgb.yaml --seed 1\n"
               "          pldistill run recipes/depth_to_rgb.yaml student.model=resnet10t distill.losses.0.weight=2\n"
               "          pldistill run recipes/depth_to_rgb.yaml distill.loss=sp+kd ~logging.project\n"
               "          pldistill run --resume runs/depth_to_rgb/20261125-101500",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("recipe", type=Path, nargs="?", help="recipe YAML file, e.g. recipes/depth_to_rgb.yaml")
    run.add_argument("overrides", nargs="*", metavar="key=value",
                     help="override any recipe key, validated like the file: schedule.epochs=4, "
                          "distill.losses.0.weight=2, distill.loss=sp+kd (paper-default presets), ~key removes")
    run.add_argument("--resume", type=Path, default=None,
                     help="continue this interrupted run folder (its recipe.yaml is used when no recipe is given)")
    run.add_argument("--fresh", action="store_true",
                     help="start a new run folder even if an interrupted run of the same recipe exists")
    run.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    run.add_argument("--runs-dir", type=Path, default=None, help="where run folders go (default: the recipe's)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_run)
    sweep = sub.add_parser(
        "sweep",
        help="run a recipe over a grid of overrides × seeds (ordinary run folders); one mean ± std table",
        epilog="examples: pldistill sweep recipes/depth_to_rgb.yaml --grid distill.loss=sp,kd,sp+kd --seeds 3\n"
               "          pldistill sweep recipes/domain_transfer.yaml --seeds 3\n"
               "          pldistill sweep recipes/depth_to_rgb.yaml schedule.epochs=8 "
               "--grid distill.losses.0.weight=0.5,1,2 --grid student.model=resnet10t,mobilenetv3_small_100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("recipe", type=Path, help="recipe YAML file")
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every cell")
    sweep.add_argument("--grid", action="append", default=[], metavar="key=v1,v2",
                       help="one axis of the grid (repeat for a cartesian product)")
    sweep.add_argument("--seeds", type=int, default=3, help="seeds per cell: the recipe's seed, +1, … (default 3)")
    sweep.add_argument("--runs-dir", type=Path, default=None, help="where the sweep folder goes (default: the recipe's)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    sweep.set_defaults(func=_sweep)
    compare = sub.add_parser(
        "compare",
        help="train every loss variant of a base recipe over several seeds; print one table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  pldistill compare recipes/compare/depth_to_rgb_losses.yaml --seeds 0 1\n"
               "  pldistill compare recipes/compare/cifar10_hires_to_lowres_losses.yaml "
               "data.source.root=../shared/data/cifar10-jpeg.tar.gz",
    )
    compare.add_argument("file", type=Path, help="comparison YAML, e.g. recipes/compare/depth_to_rgb_losses.yaml")
    compare.add_argument("overrides", nargs="*", metavar="key=value",
                         help="applied to the base recipe, e.g. data.source.root=../shared/data/cifar10-jpeg.tar.gz")
    compare.add_argument("--seeds", type=int, nargs="+", default=None, help="override the file's seeds")
    compare.add_argument("--resume", type=Path, default=None,
                         help="an interrupted comparison folder: train only the missing rows")
    compare.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                         help="train only these variants in this call (with the scratch student and the teachers "
                              "they need); the table still shows every row trained so far")
    compare.add_argument("--runs-dir", type=Path, default=None, help="where the folder goes (default: the base recipe's)")
    compare.add_argument("--quiet", action="store_true", help="no progress output")
    compare.set_defaults(func=_compare)
    calibrate = sub.add_parser(
        "calibrate",
        help="few-epoch pilots over distillation weights (and stages): which keep the student at or above scratch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples: pldistill calibrate recipes/depth_to_rgb.yaml student.model=regnetx_002\n"
               "          pldistill calibrate recipes/depth_to_rgb.yaml --weights 0.5 1 2 --stages 2:2 "
               "--write my_recipe.yaml\n"
               "Pilots are judged on a hold-out of the training split; the test set is never read.",
    )
    calibrate.add_argument("recipe", type=Path, help="recipe YAML file")
    calibrate.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, as for run")
    calibrate.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0],
                           help="weights relative to CE to try (default: 0.25 0.5 1 2)")
    calibrate.add_argument("--stages", nargs="*", default=[], metavar="T:S[,T:S]",
                           help="also try these teacher:student stage pairs for feature losses, e.g. 2:2 -1:-1")
    calibrate.add_argument("--epochs", type=int, default=3, help="epochs per pilot (default 3)")
    calibrate.add_argument("--holdout", type=float, default=0.2,
                           help="fraction of the training split the pilots are judged on (default 0.2)")
    calibrate.add_argument("--write", type=Path, default=None,
                           help="write the chosen setting as a recipe that extends RECIPE")
    calibrate.add_argument("--runs-dir", type=Path, default=None, help="where the folder goes (default: the recipe's)")
    calibrate.add_argument("--quiet", action="store_true", help="no progress bars")
    calibrate.set_defaults(func=_calibrate)
    report = sub.add_parser(
        "report",
        help="(re)build report.html of run folders; with several, also a side-by-side page",
        epilog="example: pldistill report runs/depth_to_rgb/20261125-101500 runs/depth_to_rgb/20261125-103000",
    )
    report.add_argument("run_dirs", type=Path, nargs="+", help="finished run folders (with results.json)")
    report.add_argument("--out", type=Path, default=Path("runs/_compared"),
                        help="folder for the side-by-side page (default: runs/_compared)")
    report.set_defaults(func=_report)
    check = sub.add_parser(
        "check",
        help="validate a recipe and read every file of its data once; list every defect (nothing trains)",
        epilog="examples: pldistill check recipes/depth_to_rgb.yaml\n"
               "          pldistill check recipes/cifar10_hires_to_lowres.yaml data.source.root=my/cifar10.tar.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("recipe", type=Path, help="recipe YAML file")
    check.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, as for run")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_check)
    pack = sub.add_parser(
        "pack",
        help="write a recipe's train and test splits as packed HDF5 files (fast random reads)",
        epilog="example: pldistill pack recipes/nyu_depth_to_rgb.yaml --out packed/nyu",
    )
    pack.add_argument("recipe", type=Path, help="recipe whose data section names the source")
    pack.add_argument("--out", type=Path, default=None, help="output folder (default: packed/<recipe name>)")
    pack.add_argument("--compression", default="lzf",
                      help="none | lzf (default: ~1.4x uncompressed read time, half the size) | gzip-0..9")
    pack.add_argument("--quiet", action="store_true", help="no progress bar")
    pack.set_defaults(func=_pack)
    export = sub.add_parser(
        "export",
        help="write a run's student as safetensors + timm config (loads with timm alone; no teacher)",
        epilog="example: pldistill export runs/depth_to_rgb/20261125-101500 --out exported/depth_to_rgb\n"
               "then, in Python with timm only:\n"
               "  timm.create_model('local-dir:exported/depth_to_rgb', pretrained=True)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("run_dir", type=Path, help="a finished run folder (with results.json)")
    export.add_argument("--out", type=Path, default=None,
                        help="output folder (default: exported/<recipe>-seed<N>-<student>)")
    export.add_argument("--student", choices=["delivered", "distilled", "scratch"], default="delivered",
                        help="which student to export (default: the one the run delivers: distilled, unless "
                             "student.holdout declined distillation)")
    export.set_defaults(func=_export)
    predict = sub.add_parser(
        "predict",
        help="classify images with an exported student; reads the student's modality only",
        epilog="examples: pldistill predict exported/depth_to_rgb photo.png more/photos/\n"
               "          pldistill predict exported/depth_to_rgb photo.png --top 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("export_dir", type=Path, help="a folder written by `pldistill export`")
    predict.add_argument("images", nargs="+", help="image files or folders of images")
    predict.add_argument("--top", type=int, default=1, help="also list the next most likely classes")
    predict.add_argument("--json", action="store_true", help="one JSON object per image")
    predict.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import PldistillError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # PldistillError: every error of ours (a DistributedError's own cause is in the failed process's output)
    except (PldistillError, FileNotFoundError, FloatingPointError) as exc:
        print(f"pldistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pldistill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
