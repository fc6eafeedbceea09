"""The teacher stage, in its four strategies, and the teacher-output cache its students may read.

    trained        train it here (CE on the privileged modality), unless this run folder
                   already holds it or the teacher cache holds one of the same teacher hash
    as-is          ``teacher.train: false``: loaded from its weights, evaluated when it shares our classes
    source domain  ``teacher.data``: trained (or reused) on another dataset, measured on ours
"""

from __future__ import annotations

import time
from pathlib import Path

from .. import distributed
from ..checkpoint import CheckpointError, load_checkpoint, save_atomic
from ..data.synthetic_shapes import default_cache_dir
from ..data.views import ViewReplay, views_per_sample
from ..engine import autocast, evaluate, seed_everything
from ..engine.modality_dropout import ModalityDropout
from ..models import TappedModel, build_model, classifier_outputs, count_parameters, read_state_dict
from ..teacher_cache import (TeacherCache, build_teacher_cache, cache_path, open_teacher_cache, settings_key,
                             weights_digest)
from .context import Run


def obtain_teacher(run: Run, step: str = "") -> tuple[TappedModel, dict]:
    """The run's teacher and its results entry, by whichever strategy the recipe asks for."""
    r, spec = run.recipe, run.recipe.teacher
    key = r.teacher_hash()
    seed_everything(r.seed)
    if not spec.train:
        return _as_is(run, step)
    if spec.data is not None:
        return _from_source_domain(run, step)
    return _trained(run, key, step)


def _trained(run: Run, key: str, step: str) -> tuple[TappedModel, dict]:
    r, spec = run.recipe, run.recipe.teacher
    cached = default_cache_dir() / "teachers" / f"{spec.model}-{spec.modality}-{key}.pt"
    model = run.build(spec)
    info = {"model": spec.model, "modality": spec.modality, "teacher_hash": key}
    done = run.folder.finished("teacher")
    if done is not None:
        if "state_dict" in done:  # rank 0 read it; the other ranks receive it below
            model.model.load_state_dict(done["state_dict"])
        distributed.share_module(model.model)
        print(f"{step}teacher: already trained in this run folder")
        return model, done["result"]
    reused = distributed.on_main(lambda: _load_cached(model, cached, key))
    if reused is not None:
        distributed.share_module(model.model)
        info.update(reused)
    if "reused" not in info:
        epochs = r.schedule.teacher_epochs or r.schedule.epochs
        print(f"{step}teacher {spec.model} on {spec.modality!r} for {epochs} epochs")
        result = run.fit(model, spec.modality, "teacher", epochs, r.seed, input_dropout=_modality_dropout(r))
        state = {"state_dict": model.model.state_dict(), "test_acc": result.test_acc, "history": result.history,
                 "teacher_hash": key}
        if distributed.is_main():
            save_atomic(state, cached)
        info.update(test_acc=result.test_acc, seconds=result.seconds, reused=False, history=result.history)
    info["params"] = count_parameters(model.model)
    run.folder.finish("teacher", model, info)
    return model, info


def _modality_dropout(r) -> ModalityDropout | None:
    """The teacher's ModDrop over its stack's parts (channel ranges in stack order), if the recipe asks."""
    parts = r.data.stack.get(r.teacher.modality)
    if not r.teacher.modality_dropout or not parts:
        return None  # e.g. the same-modality control's teacher, which reads one modality
    ranges, start = [], 0
    for part in parts:
        ranges.append((start, start + r.data.channels(part)))
        start = ranges[-1][1]
    return ModalityDropout(tuple(ranges), r.teacher.modality_dropout, r.seed, distributed.rank())


def _load_cached(model: TappedModel, cached: Path, key: str) -> dict | None:
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


def _from_source_domain(run: Run, step: str) -> tuple[TappedModel, dict]:
    """Domain transfer: train (or reuse) the teacher on ``teacher.data``, then measure it on ours.

    The teacher is cached under the hash of its source-domain recipe, so it is
    shared with any run that trains the same teacher there.
    """
    r = run.recipe
    source = r.model_copy(update={"data": r.teacher.data, "teacher": r.teacher.model_copy(update={"data": None})})
    model, info = obtain_teacher(Run(source, run.run_dir, run.tracker, run.progress, run.log_prefix, tap=run.tap),
                                 step)
    model.to(run.device)
    info = {**info, "domain": "source", "source_data": r.teacher.data.model_dump(mode="json"),
            "target_test_acc": evaluate(model, run.data.test_loader(r.teacher.modality), r.teacher.modality,
                                        run.device, r.schedule.channels_last)}
    print(f"  teacher: {100 * info['test_acc']:.1f}% in its source domain, "
          f"{100 * info['target_test_acc']:.1f}% on this recipe's data (no adaptation)")
    return model, info


def _as_is(run: Run, step: str) -> tuple[TappedModel, dict]:
    """A teacher trained elsewhere (``train: false``): loaded, evaluated when it shares our classes."""
    spec, data = run.recipe.teacher, run.recipe.data
    outputs = classifier_outputs(spec.model, read_state_dict(spec.weights))
    model = run.tap(build_model(spec.model, data.channels(spec.modality), outputs or run.num_classes, spec.weights,
                                data.input_size(spec.modality)))
    print(f"{step}teacher {spec.model} used as-is from {spec.weights} (teacher.train: false)")
    same_labels = outputs == run.num_classes
    test_acc = None
    if same_labels:
        model.to(run.device)
        test_acc = evaluate(model, run.data.test_loader(spec.modality), spec.modality, run.device,
                            run.recipe.schedule.channels_last)
    info = {"model": spec.model, "modality": spec.modality, "teacher_hash": None, "weights": str(spec.weights),
            "test_acc": test_acc, "seconds": 0.0, "reused": True, "history": [],
            "params": count_parameters(model.model)}
    if not same_labels:
        info["note"] = f"predicts {outputs} classes, not this dataset's {run.num_classes}: no test accuracy"
    return model, info


def outputs_cache(run: Run, teacher: TappedModel, seed: int) -> TeacherCache:
    """The teacher's outputs on K views of every training sample, computed once per teacher (distill.teacher_cache).

    The views are the training transform replayed from per-view seeds derived from
    ``seed`` (``data/views.py``); without augmentation there is one. Kept in the run
    folder; every student of this run reads the same file.
    """
    r, s = run.recipe, run.recipe.schedule
    digest = weights_digest(teacher.model)
    replay = ViewReplay(views_per_sample(r.distill.teacher_cache_views, bool(r.data.augment.active())), seed)
    settings = settings_key(augment=r.data.augment.model_dump(), resize=run.data.resize, modality=r.teacher.modality,
                            depth_encoding=r.data.depth_encoding, views=replay.count, seed=seed,
                            precision=r.distill.teacher_cache_precision)
    path = cache_path(run.run_dir / "teacher_cache", teacher, digest, settings)

    def open_or_build() -> TeacherCache:
        cache = open_teacher_cache(path, teacher, len(run.train_set), digest, replay, settings)
        if cache is not None:
            return cache
        view = run.data.train_view([r.teacher.modality], seed)
        started = time.perf_counter()
        cache = build_teacher_cache(teacher, view, path, run.device, replay, settings=settings,
                                    precision=r.distill.teacher_cache_precision, num_workers=s.num_workers,
                                    channels_last=s.channels_last, autocast=lambda: autocast(run.device, s.precision),
                                    progress=run.progress, digest=digest)
        if run.progress:
            print(f"  teacher cache: {len(view)} samples × {replay.count} view(s) in "
                  f"{time.perf_counter() - started:.1f} s → {path}")
        return cache

    return distributed.main_first(open_or_build)
