"""Command line: ``pldistill run RECIPE``. Errors are one clear line, not a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _name, _value in {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}.items():
    os.environ.setdefault(_name, _value)


def _run(args: argparse.Namespace) -> int:
    from .recipe import load_recipe
    from .run import run_recipe

    recipe = load_recipe(args.recipe)
    if args.seed is not None:
        recipe = recipe.model_copy(update={"seed": args.seed})
    out = run_recipe(recipe, args.recipe, runs_dir=args.runs_dir, progress=not args.quiet)
    print()
    print((out.run_dir / "results.md").read_text())
    print(f"run folder: {out.run_dir}")
    if out.results["wandb"]["sync"]:
        print(f"W&B run saved offline; to upload it: {out.results['wandb']['sync']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pldistill",
        description="Privileged-learning and cross-modal knowledge distillation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="train the teacher, the scratch and the distilled student; write a run folder",
        epilog="example: pldistill run recipes/depth_to_rgb.yaml --seed 1",
    )
    run.add_argument("recipe", type=Path, help="recipe YAML file, e.g. recipes/depth_to_rgb.yaml")
    run.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    run.add_argument("--runs-dir", type=Path, default=None, help="where run folders go (default: the recipe's)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .recipe import RecipeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RecipeError, CheckpointError, FileNotFoundError) as exc:
        print(f"pldistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pldistill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
