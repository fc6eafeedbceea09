"""A run, end to end: teacher → scratch student → distilled student → results.

Reads top to bottom: build data, obtain the teacher (train it, or reuse the
cached one with the same teacher hash), train the restricted-modality student
twice from the same initialisation (CE only, then CE + distillation), evaluate
both on the restricted modality alone, and write the run folder:

    runs/<recipe>/<timestamp>/
        recipe.yaml        the recipe as resolved (every default filled in)
        checkpoints/       teacher.pt, student_scratch.pt, student_distilled.pt
        metrics.jsonl      every logged row (also sent to W&B)
        results.json       machine-readable results (schema in the README)
        results.md         the results table
        wandb/             the offline W&B run
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from . import __version__, distributed
from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .data import JointTransform, ModalityView, build_datasets
from .data.splits import write_split_record
from .data.synthetic_shapes import default_cache_dir
from .errors import PldistillError
from .losses.terms import DistillTerm, build_terms
from .probe import AlignmentProbe
from .models import TappedModel, build_model, classifier_outputs, count_parameters, read_state_dict
from .recipe import Recipe, RecipeError
from .losses.registry import loss_spec
from .html_report import build_report
from .report import results_markdown
from .tracking import NullTracker, Tracker
from .teacher_cache import TeacherCache, build_teacher_cache, cache_path, open_teacher_cache, weights_digest
from .train import FitResult, autocast, check_precision, evaluate, fit, pick_device, seed_everything

RESULTS_SCHEMA_VERSION = 1


@dataclass
class RunOutput:
    run_dir: Path
    results: dict


def _new_run_dir(root: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ["", *(f"-{i}" for i in range(1, 100))]:
        path = root / name / f"{stamp}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run folder under {root / name}")


def _loader(view: ModalityView, batch_size: int, train: bool, seed: int, workers: int) -> DataLoader:
    """Shuffled batches in one process; under torchrun this rank's share of each global batch (train,
    ``batch_size`` is global) or of the test set (evaluation: every sample once over all ranks)."""
    sampler = distributed.train_sampler(view, seed) if train else distributed.eval_sampler(view)
    return DataLoader(
        view,
        batch_size=distributed.per_rank_batch(batch_size) if train else batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,  # a batch of one breaks BatchNorm and relational losses
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=workers > 0,
    )


class Run:
    """Holds what the three stages share: data, device, tracker, run folder."""

    def __init__(self, recipe: Recipe, run_dir: Path, tracker: Tracker, progress: bool = True, log_prefix: str = "",
                 datasets: tuple | None = None):
        self.recipe = recipe
        self.log_prefix = log_prefix  # e.g. "control/": the same-modality control logs beside the main run
        self.run_dir = run_dir
        self.tracker = tracker
        self.progress = progress
        self.device = pick_device(recipe.schedule.device)
        try:
            check_precision(recipe.schedule.precision, self.device)
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
        # a control run shares its parent's data: pass (train, test) rather than reading them again
        self.train_set, self.test_set = datasets or distributed.main_first(lambda: build_datasets(recipe.data))
        self.num_classes = len(self.train_set.classes)
        self.probe: AlignmentProbe | None = None

    def attach_probe(self, teacher: TappedModel) -> None:
        """Measure every student against ``teacher`` on a fixed validation slice, each epoch."""
        r = self.recipe
        if r.logging.probe_size == 0 or not distributed.is_main():  # rank 0 alone measures and logs
            return
        pairs = [(p.teacher, p.student) for loss in r.distill.losses for p in loss.pairs]
        self.probe = AlignmentProbe(
            self.test_set, teacher, r.teacher.modality, r.student.modality,
            list(dict.fromkeys(pairs)) or [(-1, -1)], r.logging.probe_size, r.logging.probe_knn,
            self.device, r.schedule.channels_last, r.logging.unbiased_cka,
            transform=self.eval_transform(list(dict.fromkeys([r.student.modality, r.teacher.modality]))),
            depth_encoding=r.data.depth_encoding,
        )

    # -- data views ------------------------------------------------------------
    def train_view(self, modalities: list[str], seed: int, with_index: bool = False) -> ModalityView:
        ds, aug = self.train_set, self.recipe.data.augment
        own = seed + 10_007 * distributed.rank()  # each process its own augmentations; rank 0 keeps the recipe's
        transform = JointTransform(
            {m: ds.modalities[m] for m in ds.inputs_of(modalities)}, seed=own, size=self._resize, **aug.model_dump()
        )
        return ModalityView(ds, modalities, transform, self.recipe.data.depth_encoding, with_index=with_index)

    def train_loader(self, modalities: list[str], seed: int, with_index: bool = False) -> DataLoader:
        s = self.recipe.schedule
        return _loader(self.train_view(modalities, seed, with_index), s.batch_size, True, seed, s.num_workers)

    def teacher_cache(self, teacher: TappedModel, seed: int) -> TeacherCache:
        """The teacher's outputs on every training sample, computed once per teacher (distill.teacher_cache).

        Built with the training transform (augmentation is off, so it only resizes)
        and kept in the run folder; every student of this run reads the same file.
        """
        s = self.recipe.schedule
        digest = weights_digest(teacher.model)
        path = cache_path(self.run_dir / "teacher_cache", teacher, digest)

        def open_or_build() -> TeacherCache:
            cache = open_teacher_cache(path, teacher, len(self.train_set), digest)
            if cache is not None:
                return cache
            view = self.train_view([self.recipe.teacher.modality], seed, with_index=True)
            loader = DataLoader(view, batch_size=256, shuffle=False, num_workers=s.num_workers)
            started = time.perf_counter()
            cache = build_teacher_cache(teacher, loader, path, self.device, s.channels_last,
                                        lambda: autocast(self.device, s.precision), self.progress, digest)
            if self.progress:
                print(f"  teacher cache: {len(view)} samples in {time.perf_counter() - started:.1f} s → {path}")
            return cache

        return distributed.main_first(open_or_build)

    def test_loader(self, modality: str) -> DataLoader:
        """Evaluation sees one modality only: privileged arrays are never read."""
        s = self.recipe.schedule
        view = ModalityView(self.test_set, [modality], self.eval_transform([modality]),
                            self.recipe.data.depth_encoding)
        return _loader(view, 256, False, 0, s.num_workers)

    @property
    def _resize(self) -> int | None:
        return self.recipe.data.image_size if self.recipe.data.needs_resize else None

    def eval_transform(self, modalities: list[str]) -> JointTransform | None:
        """Evaluation: no augmentation, only the resize real files need."""
        if self._resize is None:
            return None
        ds = self.test_set
        return JointTransform({m: ds.modalities[m] for m in ds.inputs_of(modalities)}, hflip=False, size=self._resize)

    def _fit(self, model: TappedModel, modality: str, prefix: str, epochs: int, seed: int, **kw) -> FitResult:
        s = self.recipe.schedule
        cached = kw.get("teacher_cache") is not None  # the teacher's inputs are never loaded
        wanted = [modality] + ([kw["teacher_modality"]] if kw.get("terms") and not cached else [])
        modalities = list(dict.fromkeys(wanted))  # same-modality teacher: load it once
        return fit(
            model,
            modality,
            self.train_loader(modalities, seed, with_index=cached),
            self.test_loader(modality),
            epochs=epochs,
            lr=s.lr,
            weight_decay=s.weight_decay,
            optimizer=s.optimizer,
            warmup_epochs=s.warmup_epochs,
            grad_clip=s.grad_clip,
            device=self.device,
            channels_last=s.channels_last,
            log=lambda row, _step: self.tracker.log(row),
            prefix=self.log_prefix + prefix,
            progress=self.progress,
            progress_file=self._progress_file(prefix),
            checkpoint_every=s.checkpoint_every,
            precision=s.precision,
            **kw,
        )

    def _progress_file(self, stage: str) -> Path:
        return self.run_dir / "checkpoints" / f"{stage}.progress.pt"

    def _finished(self, stage: str) -> dict | None:
        """A stage this run folder already completed (a resumed run skips it).

        Rank 0 reads the checkpoint; every rank gets its results (weights: rank 0 only).
        """
        path = self.run_dir / "checkpoints" / f"{stage}.pt"
        state: dict = {}

        def read() -> dict | None:
            if path.exists():
                state.update(load_checkpoint(path))
            return state.get("result")

        result = distributed.on_main(read)
        return None if result is None else {**state, "result": result}

    def _build(self, spec, stages=()) -> TappedModel:
        channels = self.recipe.data.channels(spec.modality)
        size = self.recipe.data.input_size(spec.modality)
        return TappedModel(build_model(spec.model, channels, self.num_classes, spec.weights, size), stages)

    # -- stages ----------------------------------------------------------------
    def teacher(self, step: str = "") -> tuple[TappedModel, dict]:
        r, spec = self.recipe, self.recipe.teacher
        key = r.teacher_hash()
        cached = default_cache_dir() / "teachers" / f"{spec.model}-{spec.modality}-{key}.pt"
        seed_everything(r.seed)
        if not spec.train:
            return self._teacher_as_is(step)
        if spec.data is not None:
            return self._teacher_from_source_domain(step)
        model = self._build(spec)
        info = {"model": spec.model, "modality": spec.modality, "teacher_hash": key}
        done = self._finished("teacher")
        if done is not None:
            if "state_dict" in done:  # rank 0 read it; the other ranks receive it below
                model.model.load_state_dict(done["state_dict"])
            distributed.share_module(model.model)
            print(f"{step}teacher: already trained in this run folder")
            return model, done["result"]
        reused = distributed.on_main(lambda: self._cached_teacher(model, cached, key))
        if reused is not None:
            distributed.share_module(model.model)
            info.update(reused)
        if "reused" not in info:
            epochs = r.schedule.teacher_epochs or r.schedule.epochs
            print(f"{step}teacher {spec.model} on {spec.modality!r} for {epochs} epochs")
            result = self._fit(model, spec.modality, "teacher", epochs, r.seed)
            state = {
                "state_dict": model.model.state_dict(),
                "test_acc": result.test_acc,
                "history": result.history,
                "teacher_hash": key,
            }
            if distributed.is_main():
                save_atomic(state, cached)
            info.update(test_acc=result.test_acc, seconds=result.seconds, reused=False, history=result.history)
        info["params"] = count_parameters(model.model)
        self._finish_stage("teacher", model, info)
        return model, info

    def _cached_teacher(self, model: TappedModel, cached: Path, key: str) -> dict | None:
        """Load the cached teacher of this hash into ``model``: its results, or None (none, or unusable)."""
        if not cached.exists():
            return None
        try:
            state = load_checkpoint(cached)
            model.model.load_state_dict(state["state_dict"])
        except (CheckpointError, KeyError, RuntimeError) as exc:
            print(f"cached teacher {cached} unusable ({exc}); training a new one")
            cached.unlink(missing_ok=True)
            return None
        print(f"reusing cached teacher {cached} (same teacher hash {key})")
        return {"test_acc": state["test_acc"], "seconds": 0.0, "reused": True, "history": state["history"]}

    def _finish_stage(self, stage: str, model: TappedModel, result: dict) -> None:
        """Final weights plus the stage's results in one atomic file; then drop the progress file."""
        if not distributed.is_main():  # rank 0 writes the run folder
            return
        save_atomic({"state_dict": model.model.state_dict(), "model": result["model"],
                     "modality": result["modality"], "result": result},
                    self.run_dir / "checkpoints" / f"{stage}.pt")
        self._progress_file(stage).unlink(missing_ok=True)

    def _teacher_from_source_domain(self, step: str) -> tuple[TappedModel, dict]:
        """Domain transfer: train (or reuse) the teacher on ``teacher.data``, then measure it on ours.

        The teacher is cached under the hash of its source-domain recipe, so it is
        shared with any run that trains the same teacher there.
        """
        r = self.recipe
        source = r.model_copy(update={"data": r.teacher.data, "teacher": r.teacher.model_copy(update={"data": None})})
        model, info = Run(source, self.run_dir, self.tracker, self.progress, self.log_prefix).teacher(step)
        model.to(self.device)
        info = {**info, "domain": "source", "source_data": r.teacher.data.model_dump(mode="json"),
                "target_test_acc": evaluate(model, self.test_loader(r.teacher.modality), r.teacher.modality,
                                            self.device, r.schedule.channels_last)}
        print(f"  teacher: {100 * info['test_acc']:.1f}% in its source domain, "
              f"{100 * info['target_test_acc']:.1f}% on this recipe's data (no adaptation)")
        return model, info

    def _teacher_as_is(self, step: str) -> tuple[TappedModel, dict]:
        """A teacher trained elsewhere (``train: false``): loaded, evaluated when it shares our classes."""
        spec = self.recipe.teacher
        outputs = classifier_outputs(spec.model, read_state_dict(spec.weights))
        channels = self.recipe.data.channels(spec.modality)
        model = TappedModel(build_model(spec.model, channels, outputs or self.num_classes, spec.weights,
                                        self.recipe.data.input_size(spec.modality)))
        print(f"{step}teacher {spec.model} used as-is from {spec.weights} (teacher.train: false)")
        same_labels = outputs == self.num_classes
        test_acc = None
        if same_labels:
            model.to(self.device)
            test_acc = evaluate(model, self.test_loader(spec.modality), spec.modality, self.device,
                                self.recipe.schedule.channels_last)
        info = {"model": spec.model, "modality": spec.modality, "teacher_hash": None, "weights": str(spec.weights),
                "test_acc": test_acc, "seconds": 0.0, "reused": True, "history": [],
                "params": count_parameters(model.model)}
        if not same_labels:
            info["note"] = f"predicts {outputs} classes, not this dataset's {self.num_classes}: no test accuracy"
        return model, info

    def _student_channels(self, stage: int) -> int:
        """Channels of a student stage, from timm's feature_info on the meta device (no memory, no weights)."""
        spec = self.recipe.student
        with torch.device("meta"):
            probe = build_model(spec.model, self.recipe.data.channels(spec.modality), self.num_classes,
                                image_size=self.recipe.data.input_size(spec.modality))
        return probe.feature_info[stage]["num_chs"]

    def student(self, kind: str, teacher: TappedModel | None = None, losses=None, step: str = "") -> dict:
        """Train a student from the shared initial weights: CE only when ``teacher`` is None.

        ``losses`` defaults to the recipe's; a comparison passes each variant's.
        """
        r, spec = self.recipe, self.recipe.student
        losses = r.distill.losses if losses is None else losses
        terms: list[DistillTerm] = []
        student_stages: list[int] = []
        if teacher is not None:
            built = build_terms(losses, lambda stage: teacher.model.feature_info[stage]["num_chs"],
                                self._student_channels)
            terms, student_stages = built.terms, built.student_stages
            teacher = TappedModel(teacher.model, built.teacher_stages)
        done = self._finished(f"student_{kind}")
        if done is not None:
            print(f"{step}{kind} student: already trained in this run folder")
            return done["result"]
        seed_everything(r.seed + 1)  # both students start from the same weights
        model = self._build(spec, student_stages)
        if teacher is None:
            title = f"{step}{kind} student (CE only)"
        else:
            weighted = " + ".join(f"{loss.name}×{loss.weight:g}" for loss in losses)
            title = f"{step}{kind} student (CE + {weighted})"
        print(f"{title}: {spec.model} on {spec.modality!r}")
        result = self._fit(
            model,
            spec.modality,
            f"student_{kind}",
            r.schedule.epochs,
            r.seed + 1,
            teacher=teacher,
            teacher_modality=r.teacher.modality,
            terms=terms,
            teacher_cache=self.teacher_cache(teacher, r.seed + 1) if terms and r.distill.teacher_cache else None,
            epoch_metrics=self.probe.measure if self.probe else None,
        )
        alignment = {k: v for k, v in result.history[-1].items() if k.startswith("align/")}
        if self.probe is not None and self.probe.snapshot is not None:
            self.probe.snapshot.save(self.run_dir / "alignment" / f"student_{kind}.npz")
        summary = {
            "model": spec.model,
            "modality": spec.modality,
            "losses": ["ce"] + [t.key for t in terms],
            "params": count_parameters(model.model),
            "test_acc": result.test_acc,
            "seconds": result.seconds,
            "alignment": alignment,
            "history": result.history,
        }
        self._finish_stage(f"student_{kind}", model, summary)
        return summary


def _same_modality_control(run: Run, distilled: dict) -> dict:
    """The same teacher model and budget on the student's own modality, and the same distillation from it.

    Without this row a distillation gain cannot be credited to the privileged
    modality: it may come from merely having a (stronger) teacher.
    """
    recipe = run.recipe
    spec = recipe.teacher.model_copy(update={"modality": recipe.student.modality})
    sub = Run(recipe.model_copy(update={"teacher": spec}), run.run_dir / "control", run.tracker, run.progress,
              log_prefix="control/", datasets=(run.train_set, run.test_set))
    teacher, info = sub.teacher(step="[4/5] control ")
    student = sub.student("distilled", teacher, step="[5/5] control ")
    return {"teacher": info, "student": student,
            "privileged_gain": distilled["test_acc"] - student["test_acc"]}


def _report(run_dir: Path, tracker: Tracker) -> None:
    """report.html and its figures, also sent to W&B; a drawing failure never costs the results."""
    try:
        page = build_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results are already on disk
        print(f"pldistill: could not draw the report ({type(exc).__name__}: {exc}); "
              f"rebuild it later with: pldistill report {run_dir}")
        return
    tracker.log_images({f"figures/{p.stem}": p for p in sorted((run_dir / "figures").glob("*.png"))})
    print(f"report: {page}")


class ResumeError(PldistillError, ValueError):
    """A run folder that cannot be resumed with this recipe."""


def _recipe_differences(run_dir: Path, resolved: dict) -> list[str]:
    saved = yaml.safe_load((run_dir / "recipe.yaml").read_text())

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved), flat(resolved)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def find_interrupted(recipe: Recipe, runs_dir: str | Path | None = None) -> Path | None:
    """The newest run folder of this exact recipe that never finished, if any."""
    root = Path(runs_dir or recipe.logging.runs_dir) / recipe.name
    resolved = recipe.to_dict()
    for run_dir in sorted(root.glob("*"), reverse=True):
        if (run_dir / "recipe.yaml").exists() and not (run_dir / "results.json").exists():
            if not _recipe_differences(run_dir, resolved):
                return run_dir
    return None


def _prepare_resume(run_dir: Path, resolved: dict) -> None:
    if not (run_dir / "recipe.yaml").exists():
        raise ResumeError(f"{run_dir}: not a run folder (no recipe.yaml); nothing to resume")
    if (run_dir / "results.json").exists():
        raise ResumeError(f"{run_dir}: this run already finished (results.json exists); start a new run instead")
    changed = _recipe_differences(run_dir, resolved)
    if changed:
        raise ResumeError(
            f"{run_dir}: the run folder was started with a different recipe ({', '.join(changed[:5])} differ); "
            "resume with the same recipe and seed, or start a new run"
        )


def _stages(run: Run) -> tuple[dict, dict, dict, dict | None]:
    """Teacher, scratch student, distilled student and the control: the training every rank does."""
    recipe = run.recipe
    control_wanted = (recipe.distill.same_modality_control and recipe.teacher.train
                      and recipe.teacher.modality != recipe.student.modality)
    steps = 5 if control_wanted else 3
    teacher, teacher_info = run.teacher(step=f"[1/{steps}] ")
    run.attach_probe(teacher)
    scratch = run.student("scratch", step=f"[2/{steps}] ")
    distilled = run.student("distilled", teacher, step=f"[3/{steps}] ")
    control = _same_modality_control(run, distilled) if control_wanted else None
    return teacher_info, scratch, distilled, control


def _check_batch(recipe: Recipe, recipe_path: str | Path) -> None:
    """Under torchrun: the global batch splits evenly, and each local batch still has room for relations."""
    try:
        per_rank = distributed.per_rank_batch(recipe.schedule.batch_size)
    except ValueError as exc:
        raise RecipeError(f"{recipe_path}: {exc}") from None
    for i, loss in enumerate(recipe.distill.losses):
        need = loss_spec(loss.name).min_batch
        if loss.scope == "local" and per_rank < need:
            raise RecipeError(
                f"{recipe_path}: distill.losses.{i}: {loss_spec(loss.name).display} relates the samples of each process's "
                f"batch ({recipe.schedule.batch_size} / {distributed.world_size()} processes = {per_rank}) and "
                f"needs at least {need}; raise schedule.batch_size or set scope: global"
            )


def _follow_rank_zero(recipe: Recipe) -> RunOutput:
    """Ranks > 0 of a torchrun job: train every stage in step with rank 0, in its run folder, writing nothing.

    Rank 0 speaks for the job: the others' printing is silenced (their errors still reach stderr).
    """
    run_dir = Path(distributed.share_text())
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        _stages(Run(recipe, run_dir, NullTracker(), progress=False))
    return RunOutput(run_dir, {})


def run_recipe(
    recipe: Recipe,
    recipe_path: str | Path,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
    group: str | None = None,
) -> RunOutput:
    """Run a validated recipe end to end (or continue ``resume``) and return its run folder and results.

    ``run_dir`` names a new run folder instead of a timestamped one (a sweep's
    cells); ``group`` is the W&B group (default: the recipe's name).
    """
    started = time.perf_counter()
    resolved = recipe.to_dict()
    _check_batch(recipe, recipe_path)
    if not distributed.is_main():
        return _follow_rank_zero(recipe)
    if run_dir is not None and resume is None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    elif resume is not None:
        run_dir = Path(resume)
        _prepare_resume(run_dir, resolved)
        print(f"resuming {run_dir}: finished stages are kept, the stage in progress continues from its last epoch")
    else:
        run_dir = _new_run_dir(Path(runs_dir or recipe.logging.runs_dir), recipe.name)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    distributed.share_text(str(run_dir))  # the job's one run folder, for ranks > 0
    tracker = Tracker(
        run_dir,
        resolved,
        project=recipe.logging.project,
        group=group or recipe.name,
        name=f"{recipe.name}-seed{recipe.seed}-{run_dir.name}" if group is None else f"{run_dir.parent.name}-{run_dir.name}",
        tags=[recipe.name, f"seed{recipe.seed}"],
        mode=recipe.logging.wandb,
    )
    try:
        run = Run(recipe, run_dir, tracker, progress)
        write_split_record(run_dir, run.train_set, run.test_set)  # data_split.json: splits pldistill chose
        if progress:
            print(f"run folder: {run_dir} (interrupted? `pldistill run {recipe_path}` resumes it)")
        try:
            teacher_info, scratch, distilled, control = _stages(run)
        except FloatingPointError as exc:
            raise FloatingPointError(
                f"{exc}; training stopped and the last good epoch is kept in {run_dir / 'checkpoints'} "
                "(*.progress.pt); lower schedule.lr or set schedule.grad_clip and start a new run"
            ) from None
        results = {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "pldistill_version": __version__,
            "recipe": recipe.name,
            "recipe_file": str(recipe_path),
            "seed": recipe.seed,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_dir": str(run_dir),
            "device": str(run.device),
            "distributed": {"world_size": distributed.world_size(), "backend": distributed.backend()},
            "host": {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()},
            "dataset": {
                "kind": recipe.data.kind,
                "classes": run.train_set.classes,
                "num_train": len(run.train_set),
                "num_test": len(run.test_set),
                # how each input is encoded: what `pldistill export` needs to preprocess without the data
                "modalities": {m: {"kind": v.kind, "channels": recipe.data.channels(m), "mean": list(v.mean),
                                   "std": list(v.std), "input_size": recipe.data.input_size(m)}
                               for m, v in run.train_set.modalities.items()},
            },
            "teacher": teacher_info,
            "students": {"scratch": scratch, "distilled": distilled},
            "distill_gain": distilled["test_acc"] - scratch["test_acc"],
            "control": control,
            "seconds_total": time.perf_counter() - started,
        }
        tracker.summary(
            {
                "teacher/test_acc": teacher_info["test_acc"],
                "student_scratch/test_acc": scratch["test_acc"],
                "student_distilled/test_acc": distilled["test_acc"],
                "distill_gain": results["distill_gain"],
                **({"control/student_distilled/test_acc": control["student"]["test_acc"],
                    "privileged_gain": control["privileged_gain"]} if control else {}),
                **{f"student_{k}/{m}": v for k in ("scratch", "distilled")
                   for m, v in results["students"][k]["alignment"].items()},
            }
        )
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        _report(run_dir, tracker)
    finally:
        tracker.finish()
    results["wandb"] = {"mode": tracker.mode, "dir": str(tracker.wandb_dir or ""), "sync": tracker.sync_hint}
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "results.md").write_text(results_markdown(results, recipe))
    return RunOutput(run_dir, results)
