"""Experiment tracking: W&B (offline by default) and the local run folder.

The only module that imports wandb. Every logged row also goes to
``metrics.jsonl`` in the run folder, so nothing depends on W&B working: if
wandb is missing, fails to start or fails mid-run, training goes on and the
problem is reported once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


class Tracker:
    """``log`` rows, ``finish`` once; W&B mode comes from $WANDB_MODE, else the recipe."""

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        *,
        project: str,
        group: str,
        name: str,
        mode: str = "offline",
        tags: list[str] | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.mode = os.environ.get("WANDB_MODE", mode)
        self.sync_hint = ""
        jsonl = self.run_dir / "metrics.jsonl"
        # a resumed run appends: its W&B steps continue after the rows already written
        self.step = sum(1 for _ in open(jsonl)) if jsonl.exists() else 0
        self._jsonl = open(jsonl, "a")
        self._wandb_run = None
        self.wandb_dir: Path | None = None
        if self.mode == "disabled":
            return
        try:
            import wandb

            self._wandb_run = wandb.init(
                project=project,
                group=group,
                name=name,
                tags=tags,
                config=config,
                dir=str(self.run_dir),
                mode=self.mode,
                reinit="finish_previous",
                settings=wandb.Settings(console="off", silent=True),
            )
            self.wandb_dir = Path(self._wandb_run.dir).parent
        except Exception as exc:  # W&B must never stop training
            self._warn(f"W&B could not start ({type(exc).__name__}: {exc}); logging locally only")

    def _warn(self, message: str) -> None:
        print(f"pldistill: {message}", file=sys.stderr)

    def log(self, row: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps({"step": self.step, **row}) + "\n")
        self._jsonl.flush()
        if self._wandb_run is not None:
            try:
                self._wandb_run.log(row, step=self.step)
            except Exception as exc:
                self._warn(f"W&B logging failed ({exc}); continuing with local logs only")
                self._wandb_run = None
        self.step += 1

    def log_images(self, images: dict[str, Path]) -> None:
        """PNG files as W&B images (one history row); the files themselves stay in the run folder."""
        if self._wandb_run is None or not images:
            return
        try:
            import wandb

            self._wandb_run.log({k: wandb.Image(str(p)) for k, p in images.items()}, step=self.step)
            self.step += 1
        except Exception as exc:
            self._warn(f"W&B image logging failed ({exc}); the figures are in the run folder")

    def summary(self, values: dict[str, Any]) -> None:
        if self._wandb_run is not None:
            try:
                self._wandb_run.summary.update(values)
            except Exception as exc:
                self._warn(f"W&B summary failed ({exc})")

    def finish(self) -> None:
        self._jsonl.close()
        run, self._wandb_run = self._wandb_run, None
        if run is None:
            return
        try:
            run.finish()
        except Exception as exc:
            self._warn(f"W&B finish failed ({exc})")
            return
        if self.mode == "offline":
            self.sync_hint = f"wandb sync {self.wandb_dir}"


class NullTracker:
    """What ranks > 0 of a torchrun job log to: nothing (rank 0 logs the job's one run)."""

    mode = "disabled"
    sync_hint = ""
    wandb_dir = None

    def log(self, row: dict[str, Any]) -> None:
        pass

    def log_images(self, images: dict[str, Path]) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass
