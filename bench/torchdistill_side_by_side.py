"""torchdistill side by side: the same SP distillation trained by torchdistill and by pldistill.

GitHub issue 11, item 2. The flagship recipe (recipes/depth_to_rgb.yaml: synthetic
RGB-D shapes, resnet10t teacher, mobilenetv3_small_100 student, SP γ=3000 on the
last stage pair, batch 64, AdamW lr 0.002 with pldistill's warm-up + cosine
schedule) with the teacher on the student's modality (``teacher.modality=rgb``:
torchdistill feeds one batch to both networks) and **augmentation off** in every
row (``data.augment.*`` all false/0), so that every row, the teacher-cache row
included, sees identical data. Both sides share everything but the distillation
machinery: the same teacher weights (the cached RGB teacher of the recipe), the
same initial student weights (seed + 1, as ``stages.train_student``), the same batches
in the same order (``RunData.train_loader``, so the data pipeline costs the same),
the same optimiser and per-step LR schedule, the same epochs, and the same
evaluation (``pldistill.engine.evaluate``). Rows:

  1. torchdistill: ``get_distillation_box`` with a ``WeightedSumLoss`` of
     CrossEntropyLoss + γ·``SPKDLoss`` (batchmean) on the module paths of the
     same stages (timm's ``feature_info``), captured by its forward-hook
     manager; its default memory format (contiguous); the loop of its
     image-classification example (forward_process / post_forward_process).
     torchdistill 1.1.5's SPKDLoss divides the Gram rows by their L1 norm (see
     ``_register_l2_spkd``), not by the L2 norm of the paper and pldistill, so
     this row uses SPKDLoss with that one method overridden; ``--stock-spkd``
     runs the class as shipped.
  2. pldistill as shipped: ``stages.train_student`` (``forward_intermediates`` taps,
     ``channels_last``).
  3. pldistill with ``schedule.channels_last=false``: isolates channels_last.
  4. pldistill with forward hooks on the same modules instead of
     ``forward_intermediates`` (``HookTapped`` below): isolates the tap mechanism.
  5. pldistill with ``distill.teacher_cache=true`` (teacher run once per
     training sample, its features read back): skipped when the recipe schema
     has no such key.

Before training, the script asserts that the two sides compute the same thing:
pldistill's ``sp_loss`` and row 1's SPKDLoss agree on identical features (1e-6
relative; both are ‖G̃_t − G̃_s‖²_F / b² with L2-normalised rows, the recipe's γ
is torchdistill's sub-term weight; the stock class equals the same formula with
L1 rows), torchdistill's hooks capture exactly the tensors pldistill taps, and
a whole weighted step (CE + γ·SP) has the same value.

Two phases in one process. Accuracy: each row trains the full schedule
(``--epochs``, the recipe's 16 by default) and reports its final test
accuracy. Throughput (afterwards, so kernels and allocators are warm):
``--rate-epochs`` rounds, each round a fresh one-epoch run of every row, the
row order rotated each round so machine noise hits all rows alike; samples/s =
samples trained per epoch / median epoch training time (the training loop only,
evaluation excluded, as ``fit`` clocks it); ratio = median over rounds of
torchdistill's epoch time / the row's epoch time in the same round. Writes
bench/results/torchdistill_side_by_side.{json,md,png}.

    .venv/bin/pip install -e '.[bench]'      # torchdistill==1.1.5
    .venv/bin/python bench/torchdistill_side_by_side.py      # full run, ~10 min on 2 idle CPU cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/torchdistill_side_by_side.py --epochs 2 --rate-epochs 2 \\
        --num-train 256 --num-test 256 --threads 1        # smoke (flagged as such in the .md), ~1 min
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine  # noqa: E402

from pldistill.losses import sp_loss  # noqa: E402
from pldistill.models import TappedModel, build_model, num_stages, resolve_stage  # noqa: E402
from pldistill.recipe import Distill, Recipe, load_recipe  # noqa: E402
from pldistill.stages import Run, obtain_teacher, outputs_cache, train_student  # noqa: E402
from pldistill.tracking import NullTracker  # noqa: E402
from pldistill.engine import distill_step, evaluate, seed_everything  # noqa: E402
from pldistill.terms import DistillTerm  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RECIPE = Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"

# Every field of pldistill.data.section.Augment, off: all rows see the same, unaugmented data.
AUGMENT_OFF = ["data.augment.hflip=false", "data.augment.shift=0", "data.augment.scale=0",
               "data.augment.rotate=0", "data.augment.color_jitter=0"]


@dataclass
class Row:
    key: str
    label: str
    overrides: list[str] = field(default_factory=list)
    torchdistill: bool = False
    hooks: bool = False  # pldistill with HookTapped instead of TappedModel
    skip: str | None = None  # why the row is not measured


def _rows() -> list[Row]:
    rows = [
        Row("torchdistill", "torchdistill (hooks, contiguous)", torchdistill=True),
        Row("pldistill", "pldistill (forward_intermediates, channels_last)"),
        Row("pldistill_contiguous", "pldistill, channels_last off", ["schedule.channels_last=false"]),
        Row("pldistill_hooks", "pldistill, forward hooks instead of forward_intermediates", hooks=True),
        Row("pldistill_teacher_cache", "pldistill, teacher cache", ["distill.teacher_cache=true"]),
    ]
    if "teacher_cache" not in Distill.model_fields:
        rows[-1].skip = "pldistill.recipe.Distill has no teacher_cache field in this checkout"
    return rows


# -- row 4: the same taps through forward hooks --------------------------------------------------------------
class HookTapped(nn.Module):
    """``TappedModel``'s contract, ``forward(x) -> (logits, [features])``, through forward hooks.

    Hooks sit on the modules timm's ``feature_info`` names for each stage (what
    torchdistill's config points at); the model runs its plain ``forward``.
    """

    def __init__(self, model: nn.Module, stages=()):
        super().__init__()
        self.model = model
        n = num_stages(model)
        self.stages = [resolve_stage(i, n) for i in stages]
        self._seen: dict[int, Tensor] = {}
        for stage in sorted(set(self.stages)):
            module = model.get_submodule(model.feature_info[stage]["module"])
            module.register_forward_hook(functools.partial(self._keep, stage))

    def _keep(self, stage: int, _module, _args, output: Tensor) -> None:
        self._seen[stage] = output

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        self._seen = {}
        logits = self.model(x)
        return logits, [self._seen[s] for s in self.stages]


# -- the torchdistill side -----------------------------------------------------------------------------------
# torchdistill 1.1.5's SPKDLoss row-normalises the Gram matrices with ``normalize(G, 1)``: the positional 1 is
# F.normalize's ``p``, so rows are divided by their L1 norm, not by the L2 norm of the paper (and pldistill). Row 1
# therefore uses its SPKDLoss with that one method overridden (``L2_SPKD``, registered through torchdistill's own
# ``register_mid_level_loss``): hooks, I/O dicts, wrappers and cost are torchdistill's, the loss is the paper's.
# ``--stock-spkd`` trains row 1 with the stock class instead.
L2_SPKD = "SPKDLossL2"


def _register_l2_spkd() -> None:
    from torchdistill.losses.mid_level import SPKDLoss
    from torchdistill.losses.registry import MIDDLE_LEVEL_LOSS_DICT, register_mid_level_loss

    if L2_SPKD in MIDDLE_LEVEL_LOSS_DICT:
        return

    class SPKDLossL2(SPKDLoss):
        def matmul_and_normalize(self, z):
            z = torch.flatten(z, 1)
            return F.normalize(torch.matmul(z, torch.t(z)), p=2, dim=1)

    register_mid_level_loss(SPKDLossL2)


def _module_path(model: nn.Module, stage: int) -> str:
    return model.feature_info[resolve_stage(stage, num_stages(model))]["module"]


def _lr_factor(epochs: int, steps_per_epoch: int, warmup_epochs: float):
    """pldistill.engine.fit's schedule: linear warm-up, then per-step cosine decay (a LambdaLR factor)."""
    steps = epochs * steps_per_epoch
    warmup = min(int(warmup_epochs * steps_per_epoch), steps - 1)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1)))

    return factor


def torchdistill_config(recipe: Recipe, teacher: nn.Module, student: nn.Module, epochs: int,
                        steps_per_epoch: int, spkd: str = L2_SPKD) -> dict:
    """torchdistill's ``train`` section (its sample spkd config's schema), built as a dict.

    One SPKDLoss sub-term per layer pair of the recipe's SP loss, weighted by γ; CE as the
    ``ce`` sub-term; AdamW and pldistill's warm-up + cosine as a per-step LambdaLR.
    """
    s = recipe.schedule
    sub_terms: dict = {
        "ce": {
            "criterion": {"key": "CrossEntropyLoss", "kwargs": {"reduction": "mean"}},
            "criterion_wrapper": {"key": "SimpleLossWrapper", "kwargs": {
                "input": {"is_from_teacher": False, "module_path": ".", "io": "output"},
                "target": {"uses_label": True}}},
            "weight": 1.0,
        },
    }
    t_paths, s_paths = [], []
    for loss in recipe.distill.losses:
        for i, pair in enumerate(loss.pairs):
            t_path, s_path = _module_path(teacher, pair.teacher), _module_path(student, pair.student)
            t_paths.append(t_path)
            s_paths.append(s_path)
            sub_terms[f"spkd{i}"] = {
                "criterion": {"key": spkd, "kwargs": {
                    "teacher_output_path": t_path, "student_output_path": s_path, "reduction": "batchmean"}},
                "weight": loss.weight,
            }
    return {
        "num_epochs": epochs,
        "teacher": {
            "forward_proc": "forward_batch_only",  # 1.1.5 has no default: None is refused
            "sequential": [],
            "forward_hook": {"input": [], "output": sorted(set(t_paths))},
            "wrapper": None,
            "requires_grad": False,
        },
        "student": {
            "forward_proc": "forward_batch_only",
            "adaptations": None,
            "sequential": [],
            "forward_hook": {"input": [], "output": sorted(set(s_paths))},
            "wrapper": None,
            "requires_grad": True,
            "frozen_modules": [],
        },
        "optimizer": {"key": "AdamW", "kwargs": {"lr": s.lr, "weight_decay": s.weight_decay}},
        "scheduler": {"key": "LambdaLR", "kwargs": {"lr_lambda": _lr_factor(epochs, steps_per_epoch, s.warmup_epochs)},
                      "scheduling_step": 1},
        "criterion": {"key": "WeightedSumLoss", "kwargs": {"sub_terms": sub_terms}},
    }


def _initial_student(run: Run) -> nn.Module:
    """The student ``stages.train_student`` starts from: built right after ``seed_everything(seed + 1)``."""
    r, spec = run.recipe, run.recipe.student
    seed_everything(r.seed + 1)
    return build_model(spec.model, r.data.channels(spec.modality), run.num_classes, spec.weights,
                       r.data.input_size(spec.modality))


def _box(teacher: nn.Module, student: nn.Module, config: dict, device: torch.device):
    from torchdistill.core.distillation import get_distillation_box

    _register_l2_spkd()
    # torchdistill leaves the teacher's mode to the caller; frozen BN statistics, as in pldistill
    teacher.eval()
    return get_distillation_box(teacher, student, {}, config, device, None, False, 1)


def torchdistill_student(run: Run, teacher: nn.Module, spkd: str = L2_SPKD) -> dict:
    """Row 1: train the student through torchdistill's DistillationBox; a history like ``fit``'s."""
    r, modality, device = run.recipe, run.recipe.student.modality, run.device
    assert r.schedule.optimizer == "adamw" and r.schedule.grad_clip is None and r.schedule.precision == "fp32"
    student = _initial_student(run).to(device)
    teacher = teacher.to(device, memory_format=torch.contiguous_format)  # its default layout
    loader = run.data.train_loader([modality], r.seed + 1)  # what train_student's fit gets
    test_loader = run.data.test_loader(modality)
    epochs = r.schedule.epochs
    box = _box(teacher, student, torchdistill_config(r, teacher, student, epochs, len(loader), spkd), device)
    history = []
    for epoch in range(epochs):
        box.pre_epoch_process(epoch=epoch)
        start = time.perf_counter()
        total = seen = 0.0
        # Iterated as fit iterates it: through tqdm.auto, whose asyncio class opens one extra, unused iterator per
        # epoch; that draws from the loader's generator and shifts the shuffle, so plain iteration would see
        # other batches than pldistill. Inside: the loop of torchdistill's image-classification example.
        for batch in tqdm(loader, disable=True):
            x, y = batch[modality].to(device), batch["label"].to(device)
            loss = box.forward_process(x, y, {})
            box.post_forward_process(loss=loss)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"torchdistill: loss {value} at epoch {epoch + 1}")
            total += value * len(y)
            seen += len(y)
        seconds = time.perf_counter() - start
        acc = evaluate(TappedModel(student), test_loader, modality, device, channels_last=False)
        box.post_epoch_process()
        history.append({"train/loss": total / seen, "train/seconds": seconds, "val/acc": acc,
                        "lr": box.lr_scheduler.get_last_lr()[0], "epoch": epoch + 1})
    box.clean_modules()
    return {"test_acc": history[-1]["val/acc"], "history": history}


# -- sanity: the two sides compute the same loss on the same layers ------------------------------------------
def _rel(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def _sp_rows_normalised(teacher: Tensor, student: Tensor, p: int) -> Tensor:
    """‖G̃_t − G̃_s‖²_F / b² with the Gram rows divided by their L``p`` norm."""
    def gram(z: Tensor) -> Tensor:
        z = z.flatten(1).double()
        return F.normalize(z @ z.t(), p=p, dim=1)

    return (gram(teacher) - gram(student)).pow(2).sum() / teacher.shape[0] ** 2


def check_same_loss(run: Run, teacher: nn.Module) -> dict:
    """Assert: equal SP values on identical features, equal tapped features, equal weighted steps."""
    from torchdistill.core.util import extract_io_dict
    from torchdistill.losses.registry import get_mid_level_loss

    _register_l2_spkd()

    r, modality, device = run.recipe, run.recipe.student.modality, run.device
    losses = r.distill.losses
    if [loss.name for loss in losses] != ["sp"] or any(loss.pool or loss.scope != "local" for loss in losses):
        raise SystemExit("this bench compares SP alone (one 'sp' loss, pool off, scope local)")
    pairs = [(p.teacher, p.student) for p in losses[0].pairs]
    weight = losses[0].weight
    batch = next(iter(run.data.train_loader([modality], r.seed + 1)))
    x, y = batch[modality].to(device), batch["label"].to(device)
    student0 = _initial_student(run).to(device)
    teacher = copy.deepcopy(teacher).to(device, memory_format=torch.contiguous_format).eval()

    # pldistill: one distill_step, as train_student sets it up
    t_tapped = TappedModel(copy.deepcopy(teacher), [t for t, _ in pairs]).eval()
    s_tapped = TappedModel(copy.deepcopy(student0), [s for _, s in pairs]).train()
    terms = [DistillTerm(f"sp/t{t}-s{s}", sp_loss, weight, i, i) for i, (t, s) in enumerate(pairs)]
    pl = distill_step(s_tapped, x, y, t_tapped, x, terms)
    pl_total = float(pl.total.detach())
    with torch.no_grad():
        _, t_feats = t_tapped(x)
        _, s_feats = s_tapped(x)

    # torchdistill: the box's hooks and the same step
    config = torchdistill_config(r, teacher, student0, 1, 1)
    box = _box(copy.deepcopy(teacher), copy.deepcopy(student0).to(device), config, device)
    box.pre_epoch_process(epoch=0)
    td_total = float(box.forward_process(x, y, {}).detach())
    with torch.no_grad():
        _, t_io = box.get_teacher_output(x, y, {})
        box.student_forward_proc(box.student_model, x, y, {})
        s_io = extract_io_dict(box.student_io_dict, device)
    box.clean_modules()

    report: dict = {"batch": len(y), "pairs": []}
    for i, (t, s) in enumerate(pairs):
        t_path, s_path = _module_path(teacher, t), _module_path(student0, s)
        ft, fs = t_feats[i].detach(), s_feats[i].detach()
        hooked_t, hooked_s = t_io[t_path]["output"], s_io[s_path]["output"]
        feat_rel = max(_rel(hooked_t, ft), _rel(hooked_s, fs))
        assert feat_rel < 1e-6, f"torchdistill's hooks on {t_path}/{s_path} do not capture stages {t}/{s}: {feat_rel}"
        # row 4's hooks tap the same tensors too
        with torch.no_grad():
            hook_rel = _rel(HookTapped(copy.deepcopy(teacher), [t]).eval()(x)[1][0], ft)
        assert hook_rel < 1e-6, f"HookTapped stage {t} differs from forward_intermediates: {hook_rel}"
        kwargs = {"teacher_output_path": t_path, "student_output_path": s_path, "reduction": "batchmean"}
        spkd = get_mid_level_loss({"key": L2_SPKD, "kwargs": kwargs})
        stock = get_mid_level_loss({"key": "SPKDLoss", "kwargs": kwargs})
        checks = {}
        random_t = torch.randn_like(ft) * 7 + 1
        random_s = torch.randn_like(fs) * 0.1
        for name, (a, b) in {"tapped features": (ft, fs), "random features": (random_t, random_s)}.items():
            ours = float(sp_loss(a, b))
            theirs = float(spkd({s_path: {"output": b}}, {t_path: {"output": a}}))
            rel = abs(ours - theirs) / abs(theirs)
            assert rel < 1e-6, f"SP differs on {name}: pldistill {ours!r} vs torchdistill (L2 rows) {theirs!r}"
            # the stock class is the same formula with L1-normalised rows
            stock_value = float(stock({s_path: {"output": b}}, {t_path: {"output": a}}))
            l1 = float(_sp_rows_normalised(a, b, p=1))
            assert abs(stock_value - l1) <= 1e-5 * abs(l1), f"stock SPKDLoss {stock_value!r} is not L1-row SP {l1!r}"
            checks[name] = {"pldistill": ours, "torchdistill": theirs, "rel_diff": rel,
                            "torchdistill_stock": stock_value, "stock_over_paper": stock_value / ours}
        report["pairs"].append({"teacher_stage": t, "student_stage": s, "teacher_module": t_path,
                                "student_module": s_path, "feature_rel_diff": feat_rel, "hook_tap_rel_diff": hook_rel,
                                "teacher_shape": list(ft.shape), "student_shape": list(fs.shape), "sp": checks})
    step_rel = abs(pl_total - td_total) / abs(td_total)
    assert step_rel < 1e-5, f"weighted step differs: pldistill {pl_total!r} vs torchdistill {td_total!r}"
    report["step"] = {"weight": weight, "pldistill_total": pl_total, "torchdistill_total": td_total,
                      "rel_diff": step_rel, "terms": {k: float(v.detach()) for k, v in pl.terms.items()}}
    return report


# -- teacher cache: its one-off build, measured apart ---------------------------------------------------------
def measure_cache_build(recipe: Recipe, datasets: tuple, teacher: nn.Module, work: Path) -> tuple[float | None, str]:
    """Seconds ``stages.outputs_cache`` takes to build the cache in a fresh run folder."""
    run = Run(recipe, work, NullTracker(), progress=False, datasets=datasets)
    stages = [p.teacher for loss in recipe.distill.losses for p in loss.pairs]
    start = time.perf_counter()
    outputs_cache(run, TappedModel(copy.deepcopy(teacher), stages), recipe.seed + 1)  # as train_student calls it
    return time.perf_counter() - start, "stages.outputs_cache in a fresh run folder, as train_student builds it"


# -- driver ---------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, teacher: nn.Module, datasets: tuple, work: Path):
        self.args, self.teacher, self.datasets, self.work = args, teacher, datasets, work
        self.runs = 0

    def recipe(self, row: Row, epochs: int) -> Recipe:
        return load_recipe(self.args.recipe, [*base_overrides(self.args), *row.overrides, f"schedule.epochs={epochs}"])

    def run(self, row: Row, epochs: int) -> dict:
        """Train one row's student for ``epochs`` from scratch: {test_acc, history, stage_seconds}."""
        self.runs += 1
        run = Run(self.recipe(row, epochs), self.work, NullTracker(), progress=False, datasets=self.datasets,
                  tap=HookTapped if row.hooks else TappedModel)  # row 4: features through forward hooks
        teacher = copy.deepcopy(self.teacher)  # pristine: no hooks, no memory-format change from another row
        start = time.perf_counter()
        if row.torchdistill:
            result = torchdistill_student(run, teacher, "SPKDLoss" if self.args.stock_spkd else L2_SPKD)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                result = train_student(run, f"{row.key}_{self.runs}", TappedModel(teacher))
        return {"test_acc": result["test_acc"], "history": result["history"],
                "stage_seconds": time.perf_counter() - start}


def base_overrides(args) -> list[str]:
    extra = []
    if args.num_train:
        extra.append(f"data.num_train={args.num_train}")
    if args.num_test:
        extra.append(f"data.num_test={args.num_test}")
    return ["teacher.modality=rgb", *AUGMENT_OFF, *extra, *args.override]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--epochs", type=int, default=None, help="accuracy phase (default: the recipe's)")
    parser.add_argument("--rate-epochs", type=int, default=3,
                        help="throughput phase: rounds of one fresh one-epoch run per row (medians over rounds)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--num-train", type=int, default=None, help="smoke runs: fewer training samples")
    parser.add_argument("--num-test", type=int, default=None, help="smoke runs: fewer test samples")
    parser.add_argument("--rows", nargs="+", default=None, help="a subset of row keys (torchdistill always runs)")
    parser.add_argument("--acc-tol", type=float, default=0.01,
                        help="'equal accuracy': not lower than torchdistill's by more than this")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md and .png from the results .json (no training)")
    parser.add_argument("--stock-spkd", action="store_true",
                        help="row 1 with torchdistill's stock SPKDLoss (L1-normalised rows) instead of the paper's L2")
    parser.add_argument("--override", action="append", default=[], help="extra recipe override, KEY=VALUE")
    parser.add_argument("--out", default="torchdistill_side_by_side", help="results file stem under bench/results/")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.out}.json").read_text())
        payload["goals"] = _goals(payload["rows"], payload["acc_tol"], payload["epochs"])
        (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=2))
        (RESULTS / f"{args.out}.md").write_text(_markdown(payload, payload["sanity"], payload["rows"], payload["goals"]))
        _chart(payload["rows"], RESULTS / f"{args.out}.png", payload)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    import timm
    import torchdistill

    recipe_default = load_recipe(args.recipe)
    epochs = args.epochs or recipe_default.schedule.epochs
    rows = [row for row in _rows() if args.rows is None or row.torchdistill or row.key in args.rows]
    if args.stock_spkd:
        rows[0].label = "torchdistill, stock SPKDLoss (L1 rows)"
    for row in rows:
        if row.skip:
            _log(f"skipping {row.key}: {row.skip}")
    live = [row for row in rows if not row.skip]
    started = time.perf_counter()
    machine = describe_machine(torch)  # before the work: its load average is the machine's, not ours

    work = Path(tempfile.mkdtemp(prefix="td-side-by-side-"))
    try:
        # The teacher: the recipe's RGB teacher, as its flagship same-modality control trains (and caches) it.
        teacher_recipe = load_recipe(args.recipe, ["teacher.modality=rgb", *args.override])
        teacher_run = Run(teacher_recipe, work / "teacher", NullTracker(), progress=True)
        teacher_tapped, teacher_info = obtain_teacher(teacher_run)
        teacher = teacher_tapped.model.cpu()
        student_recipe = load_recipe(args.recipe, base_overrides(args))
        same_data = (student_recipe.data.model_dump(exclude={"augment"})
                     == teacher_recipe.data.model_dump(exclude={"augment"}))
        probe = Run(student_recipe, work, NullTracker(), progress=False,
                    datasets=(teacher_run.train_set, teacher_run.test_set) if same_data else None)
        datasets = (probe.train_set, probe.test_set)
        steps = len(probe.train_loader([student_recipe.student.modality], 0))
        samples_per_epoch = steps * student_recipe.schedule.batch_size

        _log("sanity: SP, taps and a whole step, pldistill vs torchdistill")
        sanity = check_same_loss(probe, teacher)
        _log(f"  SP rel diff {sanity['pairs'][0]['sp']['tapped features']['rel_diff']:.1e}, "
             f"step rel diff {sanity['step']['rel_diff']:.1e}")
        cache_build, cache_note = (None, "row skipped")
        if any(row.key == "pldistill_teacher_cache" for row in live):
            cache_build, cache_note = measure_cache_build(
                load_recipe(args.recipe, [*base_overrides(args), "distill.teacher_cache=true"]), datasets, teacher,
                work / "cache_build")
            _log(f"teacher cache build: {cache_build if cache_build is None else round(cache_build, 2)} s ({cache_note})")

        bench = Bench(args, teacher, datasets, work)
        full: dict[str, dict] = {}
        for row in live:
            _log(f"[accuracy] {row.key}: {epochs} epochs")
            full[row.key] = bench.run(row, epochs)
            _log(f"  test acc {full[row.key]['test_acc']:.4f}, stage {full[row.key]['stage_seconds']:.1f} s")

        times: dict[str, list[float]] = {row.key: [] for row in live}
        for rnd in range(args.rate_epochs):
            shift = rnd % len(live)
            for row in live[shift:] + live[:shift]:
                seconds = bench.run(row, 1)["history"][0]["train/seconds"]
                times[row.key].append(seconds)
                _log(f"[rate {rnd + 1}/{args.rate_epochs}] {row.key}: {seconds:.2f} s/epoch")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base_times = times["torchdistill"]
    base_acc = full["torchdistill"]["test_acc"]
    results = []
    for row in rows:
        entry = {"key": row.key, "label": row.label, "overrides": row.overrides, "skip": row.skip}
        if not row.skip:
            ts, hist = times[row.key], full[row.key]["history"]
            median = statistics.median(ts)
            entry.update({
                "epoch_seconds": ts,
                "median_epoch_seconds": median,
                "samples_per_second": samples_per_epoch / median,
                "ratio_vs_torchdistill": statistics.median(b / t for b, t in zip(base_times, ts)),
                "test_acc": full[row.key]["test_acc"],
                "acc_diff_vs_torchdistill": full[row.key]["test_acc"] - base_acc,
                "full_schedule": {
                    "epoch_seconds": [h["train/seconds"] for h in hist],
                    "samples_per_second": samples_per_epoch / statistics.median(h["train/seconds"] for h in hist),
                    "stage_seconds": full[row.key]["stage_seconds"],
                    "train_loss": [h["train/loss"] for h in hist],
                    "test_acc": [h["val/acc"] for h in hist],
                    "final_lr": hist[-1]["lr"],
                },
            })
            if row.key == "pldistill_teacher_cache" and cache_build is not None:
                entry["cache_build_seconds"] = cache_build
                entry["amortized_samples_per_second"] = (samples_per_epoch * epochs) / (median * epochs + cache_build)
                entry["amortized_ratio_vs_torchdistill"] = (statistics.median(base_times) * epochs) / (
                    median * epochs + cache_build)
        results.append(entry)

    smoke = []
    if epochs != recipe_default.schedule.epochs:
        smoke.append(f"{epochs} epoch(s), not the recipe's {recipe_default.schedule.epochs}")
    if args.num_train or args.num_test:
        smoke.append(f"{len(datasets[0])} train / {len(datasets[1])} test samples, not the recipe's "
                     f"{recipe_default.data.num_train} / {recipe_default.data.num_test}")
    if args.rate_epochs < 3:
        smoke.append(f"{args.rate_epochs} throughput round(s)")
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": machine["date"],
        "machine": machine["machine"],
        "device": str(probe.device),
        "threads": torch.get_num_threads(),
        "load_average_at_start": machine["load_average"],
        "torch": torch.__version__,
        "timm": timm.__version__,
        "torchdistill": torchdistill.__version__,
        "torchdistill_sp_loss": ("SPKDLoss as shipped (Gram rows L1-normalised)" if args.stock_spkd else
                                 "SPKDLoss with L2-normalised Gram rows (the paper's; SPKDLossL2 in this script)"),
        "recipe": str(Path(args.recipe).resolve().relative_to(RECIPE.parents[1])
                      if Path(args.recipe).resolve().is_relative_to(RECIPE.parents[1]) else args.recipe),
        "overrides": base_overrides(args),
        "teacher": {"model": teacher_recipe.teacher.model, "modality": teacher_recipe.teacher.modality,
                    "hash": teacher_info.get("teacher_hash"), "reused": teacher_info.get("reused"),
                    "test_acc": teacher_info.get("test_acc"),
                    "trained_with": "the recipe's own augmentation (the cached flagship RGB teacher)"},
        "student": student_recipe.student.model,
        "sp_weight": student_recipe.distill.losses[0].weight,
        "sp_pairs": [[p.teacher, p.student] for p in student_recipe.distill.losses[0].pairs],
        "batch_size": student_recipe.schedule.batch_size,
        "samples_per_epoch": samples_per_epoch,
        "num_train": len(datasets[0]),
        "num_test": len(datasets[1]),
        "epochs": epochs,
        "rate_rounds": args.rate_epochs,
        "acc_tol": args.acc_tol,
        "smoke": smoke,
        "seconds_total": time.perf_counter() - started,
    }
    goals = _goals(results, args.acc_tol, epochs)
    RESULTS.mkdir(exist_ok=True)
    payload = {**meta, "sanity": sanity, "teacher_cache_build": {"seconds": cache_build, "how": cache_note},
               "rows": results, "goals": goals}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=2))
    text = _markdown(meta, sanity, results, goals)
    (RESULTS / f"{args.out}.md").write_text(text)
    _chart(results, RESULTS / f"{args.out}.png", meta)
    print(text)
    return 0


def _by_key(results: list[dict]) -> dict[str, dict]:
    return {r["key"]: r for r in results if not r["skip"]}


def _goals(results: list[dict], tol: float, epochs: int) -> list[str]:
    rows = _by_key(results)
    td = rows["torchdistill"]
    out = []

    def verdict(r: dict, what: str, ratio_key: str = "ratio_vs_torchdistill") -> str:
        ratio, diff = r[ratio_key], r["acc_diff_vs_torchdistill"]
        not_worse = diff >= -tol  # "at equal accuracy": the speed is not bought with accuracy
        met = ratio >= 1.3 and not_worse
        why = []
        if ratio < 1.3:
            why.append(f"{ratio:.2f}× is below 1.3×")
        if not not_worse:
            why.append(f"accuracy is {100 * -diff:.1f} points lower (tolerance {100 * tol:.1f})")
        elif diff > tol:
            why.append(f"accuracy {100 * diff:+.1f} points, one seed: channels_last changes float rounding and so the "
                       "trajectory; at torchdistill's memory format (row 3) the two agree within "
                       f"{100 * abs(rows['pldistill_contiguous']['acc_diff_vs_torchdistill']):.1f} points"
                       if "pldistill_contiguous" in rows else f"accuracy {100 * diff:+.1f} points")
        return (f"≥1.3× faster than torchdistill at equal accuracy, {what}: **{'met' if met else 'missed'}** — "
                f"{ratio:.2f}×, test accuracy {100 * r['test_acc']:.1f}% vs {100 * td['test_acc']:.1f}%"
                + (f" ({'; '.join(why)})." if why else "."))

    if "pldistill" in rows:
        out.append(verdict(rows["pldistill"], "pldistill as shipped (row 2)"))
    cache = rows.get("pldistill_teacher_cache")
    if cache is not None:
        out.append(verdict(cache, "with distill.teacher_cache (row 5, per epoch)"))
        if "amortized_ratio_vs_torchdistill" in cache:
            out.append(verdict(cache, f"with distill.teacher_cache, its one-off build amortised over {epochs} epochs",
                               "amortized_ratio_vs_torchdistill"))
    parts = []
    if "pldistill" in rows and "pldistill_contiguous" in rows:
        parts.append(f"channels_last: {_gain(rows['pldistill'], rows['pldistill_contiguous'])} (row 2 / row 3)")
    if "pldistill" in rows and "pldistill_hooks" in rows:
        parts.append(f"forward_intermediates instead of forward hooks: "
                     f"{_gain(rows['pldistill'], rows['pldistill_hooks'])} (row 2 / row 4)")
    if "pldistill_contiguous" in rows:
        parts.append(f"torchdistill's machinery (hooks + I/O-dict bookkeeping + loss wrappers) vs pldistill's at the "
                     f"same memory format: {_gain(rows['pldistill_contiguous'], td)} (row 3 / row 1)")
    if cache is not None and "pldistill" in rows:
        parts.append(f"teacher cache: {_gain(cache, rows['pldistill'])} per epoch (row 5 / row 2)")
    if parts:
        out.append("Where the time goes: " + "; ".join(parts) + ".")
    if "pldistill_contiguous" in rows and rows["pldistill_contiguous"]["ratio_vs_torchdistill"] < 1.1:
        out.append("Honestly: at the same memory format pldistill's loop is no faster than torchdistill's "
                   f"({rows['pldistill_contiguous']['ratio_vs_torchdistill']:.2f}×); the gain is a default "
                   "(channels_last, which a torchdistill user can also set by hand) and an option the library "
                   "offers (the teacher cache, when augmentation is off), not lighter bookkeeping.")
    return out


def _gain(a: dict, b: dict) -> str:
    return f"{b['median_epoch_seconds'] / a['median_epoch_seconds']:.2f}×"


def _markdown(meta: dict, sanity: dict, results: list[dict], goals: list[str]) -> str:
    lines = [f"# torchdistill side by side: SP distillation on {meta['device']}, {meta['threads']} threads", ""]
    if meta["smoke"]:
        lines += [f"**Smoke run** ({'; '.join(meta['smoke'])}): checks that the bench runs end to end; "
                  "its numbers are not the result.", ""]
    lines += [
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}, timm {meta['timm']}, torchdistill "
        f"{meta['torchdistill']}; {meta['date']}; load average before: {meta['load_average_at_start'][0]:.2f}.  ",
        f"Recipe: `{meta['recipe']}` with `{' '.join(meta['overrides'])}`: teacher {meta['teacher']['model']} on "
        f"{meta['teacher']['modality']} (both networks see the same batch; the recipe's cached RGB teacher, test "
        f"accuracy {100 * (meta['teacher']['test_acc'] or 0):.1f}%), student {meta['student']}, SP γ={meta['sp_weight']:g} "
        f"on stage pairs {meta['sp_pairs']}, batch {meta['batch_size']}, {meta['num_train']} train / {meta['num_test']} test samples, "
        f"{meta['epochs']} epochs. **Augmentation off in every row** (the teacher cache needs it), so all rows "
        "see identical data in the same order.",
        "",
        f"samples/s = {meta['samples_per_epoch']} samples per epoch / median epoch training time over "
        f"{meta['rate_rounds']} interleaved rounds (fresh one-epoch runs, row order rotated each round; evaluation "
        "excluded); ratio = median over rounds of torchdistill's epoch time / the row's. Final test accuracy after "
        f"the full {meta['epochs']}-epoch schedule, each row from the same initial student.",
        "",
        "| row | samples/s | × torchdistill | final test acc | Δ acc vs torchdistill |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(results, 1):
        if r["skip"]:
            lines.append(f"| {i}. {r['label']} | skipped: {r['skip']} | | | |")
            continue
        lines.append(f"| {i}. {r['label']} | {r['samples_per_second']:.0f} | {r['ratio_vs_torchdistill']:.2f} | "
                     f"{100 * r['test_acc']:.1f}% | {100 * r['acc_diff_vs_torchdistill']:+.1f} |")
    lines.append("")
    for r in results:
        if "cache_build_seconds" in r:
            lines.append(f"Teacher cache: one-off build {r['cache_build_seconds']:.1f} s "
                         f"(`stages.outputs_cache`: the teacher once over the {meta['num_train']} training samples, timed "
                         "apart in a fresh run folder; row 5's full-schedule stage seconds below include it too); amortised "
                         f"over {meta['epochs']} epochs: {r['amortized_samples_per_second']:.0f} samples/s, "
                         f"{r['amortized_ratio_vs_torchdistill']:.2f}× torchdistill.  ")
    pair = sanity["pairs"][0]
    sp = pair["sp"]["tapped features"]
    lines += [
        "",
        "## Goals",
        "",
        *[f"- {g}" for g in goals],
        "",
        "## Same loss, same layers (asserted before training)",
        "",
        f"- SP on identical features (teacher `{pair['teacher_module']}` {pair['teacher_shape']}, student "
        f"`{pair['student_module']}` {pair['student_shape']}): pldistill `sp_loss` {sp['pldistill']:.9g} vs "
        f"torchdistill `SPKDLoss(reduction='batchmean')` with L2 rows {sp['torchdistill']:.9g}, relative difference "
        f"{sp['rel_diff']:.1e} (random features: {pair['sp']['random features']['rel_diff']:.1e}); both are "
        "‖G̃_t − G̃_s‖²_F / b², and γ is torchdistill's sub-term weight.",
        f"- torchdistill's forward hooks on those modules capture exactly pldistill's `forward_intermediates` taps "
        f"(max relative difference {pair['feature_rel_diff']:.1e}); so do row 4's hooks ({pair['hook_tap_rel_diff']:.1e}).",
        f"- torchdistill 1.1.5's stock `SPKDLoss` is not the paper's SP: `normalize(G, 1)` passes 1 as F.normalize's "
        f"`p`, so it divides each Gram row by its L1 norm (asserted: it equals SP with L1 rows); on the tapped features "
        f"it gives {sp['torchdistill_stock']:.4g}, {sp['stock_over_paper']:.3g}× the paper's value, so the same γ weighs "
        f"a different loss. Row 1 used: {meta['torchdistill_sp_loss']}; its hooks, I/O dicts, wrappers and "
        "cost are torchdistill's, and an L1 or L2 row norm costs the same.",
        f"- One whole step, CE + γ·SP (L2 rows) on the first batch: pldistill {sanity['step']['pldistill_total']:.6f} vs "
        f"torchdistill {sanity['step']['torchdistill_total']:.6f} (relative {sanity['step']['rel_diff']:.1e}).",
        "",
        "## Full schedule (sequential, one row after another)",
        "",
        "| row | samples/s (median epoch) | stage seconds (incl. evaluation) | epoch-1 train loss | final LR |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(results, 1):
        if r["skip"]:
            continue
        f = r["full_schedule"]
        lines.append(f"| {i}. {r['label']} | {f['samples_per_second']:.0f} | {f['stage_seconds']:.1f} | "
                     f"{f['train_loss'][0]:.5f} | {f['final_lr']:.3g} |")
    rows = _by_key(results)
    lines.append("")
    if "pldistill_contiguous" in rows:
        td_loss = rows["torchdistill"]["full_schedule"]["train_loss"][0]
        pl_loss = rows["pldistill_contiguous"]["full_schedule"]["train_loss"][0]
        lines.append(f"Epoch-1 mean training loss, torchdistill {td_loss:.5f} vs pldistill at the same memory format "
                     f"(row 3) {pl_loss:.5f}: relative difference {abs(td_loss - pl_loss) / abs(pl_loss):.1e} "
                     "(both sides train the same student on the same batches in the same order; channels_last rows "
                     "differ in rounding only).")
    lines.append("torchdistill's teacher is put in eval mode by this bench, as pldistill's is: torchdistill leaves "
                 "the teacher's mode to the caller.")
    return "\n".join(lines) + "\n"


def _chart(results: list[dict], path: Path, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if not r["skip"]]
    labels = [r["label"].replace(", ", ",\n", 1) for r in rows]
    rates = [r["samples_per_second"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.7 * len(rows) + 1.6))
    colours = ["#888888" if r["key"] == "torchdistill" else "#2a6fb0" for r in rows]
    bars = ax.barh(range(len(rows)), rates, color=colours)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    target = 1.3 * rows[0]["samples_per_second"]
    ax.axvline(target, color="#c0392b", linestyle="--", linewidth=1)
    ax.text(target, len(rows) - 0.4, " 1.3× torchdistill", color="#c0392b", fontsize=8, va="bottom")
    for bar, r in zip(bars, rows):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {r['ratio_vs_torchdistill']:.2f}×, acc {100 * r['test_acc']:.1f}%", va="center", fontsize=8)
    ax.set_xlim(0, max(rates + [target]) * 1.35)
    ax.set_xlabel("training samples / s (median epoch)")
    title = f"SP distillation on {meta['device']}, {meta['threads']} threads"
    ax.set_title(title + (" — SMOKE RUN" if meta["smoke"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
