"""The data check: every file a run will read, read once before anything trains.

A corrupt image, a depth map of the wrong shape or a missing file used to
surface as a library traceback in the middle of training, sometimes after
the teacher had finished. ``check_data`` reads every sample of both splits
through the adapter's own ``load`` (so it sees exactly what training will
see), checks each modality's array, and lists every defect at once: one
line each, naming the file, the split and sample, the modality, and what to
do. Nothing is trained and no run folder is made until it passes.

What is not a defect but a stated policy (``docs/reliability.md``):

* modalities of one sample at different sizes are each resized to the
  data's input size before the shared geometry (nearest for depth), unless
  ``data.size_mismatch: refuse``;
* missing depth — 0, NaN or ±inf — is read as 0, the "no reading" of NYU v2
  and Kinect files; the check counts such samples.

A passing check is remembered (``<cache>/data-checks/<key>.json``), keyed by
the data section and the size and modification time of every file the
splits read, so a second run of the same data does not read it again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError, PldistillError
from .cache import default_cache_dir
from .protocol import READ_ERRORS, PairedDataset

CHECK_VERSION = 1  # bump when the checks change: older passes no longer count
MAX_LISTED = 20
SPATIAL = ("image", "depth")


@dataclass(frozen=True)
class Defect:
    source: str  # the file, or file and position
    split: str
    sample: int
    modality: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.source} ({self.split} sample {self.sample}, {self.modality}): {self.problem}; {self.fix}"


@dataclass
class CheckReport:
    samples: int
    notes: dict[str, int] = field(default_factory=dict)  # policy applied → number of samples
    cached: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        how = "cached pass" if self.cached else f"{self.seconds:.1f} s"
        notes = "".join(f"; {n} sample(s): {what}" for what, n in sorted(self.notes.items()))
        return f"data check: {self.samples} samples read, no defects ({how}){notes}"


def defects_message(defects: list[Defect]) -> str:
    """One defect: one line. Several: each on its own line, the first ``MAX_LISTED``, then how many more."""
    if len(defects) == 1:
        return f"data check: {defects[0].line()} (nothing was trained)"
    lines = [d.line() for d in defects[:MAX_LISTED]]
    more = len(defects) - MAX_LISTED
    head = f"the data check found {len(defects)} defect(s); nothing was trained"
    return "\n  ".join([head, *lines] + ([f"… and {more} more"] if more > 0 else []))


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _array_problem(array: np.ndarray, kind: str, channels: int) -> str | None:
    """What is wrong with one modality's raw array, or None."""
    a = np.asarray(array)
    if kind == "image":
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != channels:
            return f"is a {a.dtype} array of shape {a.shape}, expected H×W×{channels} uint8"
    elif kind == "depth":
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            return f"is a {a.dtype} array of shape {a.shape}, expected H×W numbers (metres)"
    elif kind == "vector" and (a.shape != (channels,) or not np.issubdtype(a.dtype, np.floating)):
        return f"is a {a.dtype} array of shape {a.shape}, expected {channels} floating-point features"
    elif kind in ("spectrogram", "vector") and not np.isfinite(a).all():
        return "holds NaN or infinite values"
    return None


def check_sample(ds: PairedDataset, index: int, split: str, resize: bool, refuse_sizes: bool,
                 notes: Counter) -> list[Defect]:
    """The defects of one sample (every stored modality read on its own, so each defect names one)."""
    defects, sizes, read = [], {}, set()
    for name in ds.inputs_of([n for n, m in ds.modalities.items() if m.kind != "stack"]):
        modality, where = ds.modalities[name], ds.source(index, name)
        if where in read:  # two modalities of one file (a resolution pair): read once
            continue
        read.add(where)

        def defect(problem: str, fix: str) -> Defect:
            return Defect(where, split, index, name, problem, fix)

        try:
            array = ds.load(index, [name])[name]
        except READ_ERRORS as exc:
            defects.append(defect(f"cannot be read ({_short(exc)})",
                                  "replace the file, or remove this sample from every modality"))
            continue
        problem = _array_problem(array, modality.kind, modality.channels)
        if problem:
            defects.append(defect(problem, f"store {name} as a {modality.kind} the adapter reads"))
            continue
        if modality.kind == "depth" and not np.isfinite(array).all():
            notes["depth with NaN or ±inf, read as missing (0)"] += 1
        if modality.kind in SPATIAL:
            sizes[name] = tuple(np.shape(array)[:2])
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{n} {h}×{w}" for n, (h, w) in sizes.items())
        first = next(iter(sizes))
        if refuse_sizes or not resize:
            fix = ("make the files the same size, or set data.size_mismatch: resize" if resize
                   else "this data kind is not resized: store every modality at the same size")
            defects.append(Defect(ds.source(index, first), split, index, "+".join(sizes),
                                  f"modalities differ in size ({shown})", fix))
        else:
            notes["modalities of different sizes, each resized to the input size"] += 1
    return defects


def _cache_key(cfg, train: PairedDataset, test: PairedDataset) -> str | None:
    files = [train.source_files(), test.source_files()]
    if None in files:
        return None
    stats = []
    for path in (p for split in files for p in split):
        try:
            st = Path(path).stat()
        except OSError:
            return None  # a file gone since the split was listed: read everything, report it
        stats.append((str(path), st.st_size, st.st_mtime_ns))
    text = json.dumps([CHECK_VERSION, cfg.model_dump(mode="json"), stats])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def check_data(cfg, train: PairedDataset, test: PairedDataset, progress: bool = True,
               cache_dir: str | Path | None = None) -> CheckReport:
    """Read every sample of both splits; raise ``DataError`` listing every defect, else return the report."""
    started = time.perf_counter()
    key = _cache_key(cfg, train, test)
    cached = Path(cache_dir or default_cache_dir()) / "data-checks" / f"{key}.json" if key else None
    if cached is not None and cached.is_file():
        try:
            saved = json.loads(cached.read_text())
            return CheckReport(saved["samples"], saved["notes"], cached=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged record: check again
    resize = bool(getattr(cfg, "needs_resize", False))
    refuse = getattr(cfg, "size_mismatch", "resize") == "refuse"
    total = len(train) + len(test)
    notes: Counter = Counter()
    defects: list[Defect] = []
    bar = _progress(total, progress)
    for split, ds in (("train", train), ("test", test)):
        for i in range(len(ds)):
            defects += check_sample(ds, i, split, resize, refuse, notes)
            bar.update(1)
    bar.close()
    if defects:
        raise DataError(defects_message(defects))
    report = CheckReport(total, dict(notes), seconds=time.perf_counter() - started)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            tmp.write_text(json.dumps({"samples": total, "notes": report.notes}))
    return report


def checked_datasets(cfg, progress: bool = True, summary: bool | None = None) -> tuple[PairedDataset, PairedDataset]:
    """(train, test) of a recipe's ``data``, built and checked: every problem is a ``DataError`` naming it.

    ``progress``: a bar while reading; ``summary`` (default: the same): print the check's one-line result.
    """
    from . import build_datasets

    try:
        train, test = build_datasets(cfg)
    except PldistillError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # the adapters' own messages name the file
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise DataError(f"data: {text}") from None
    report = check_data(cfg, train, test, progress)
    if progress if summary is None else summary:
        print(report.summary())
    return train, test


def _progress(total: int, show: bool):
    from tqdm import tqdm

    # small sets are read in a blink: no bar
    return tqdm(total=total, desc="data check", unit="sample", leave=False, mininterval=1.0,
                disable=not show or total < 500)
