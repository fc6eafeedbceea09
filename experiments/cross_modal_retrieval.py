"""Cross-modal retrieval on a recipe's paired data: MMSPH hash codes against random codes, CCA and sign of embeddings.

A recipe names two modalities of the same samples (the teacher's privileged
one and the student's restricted one). This trains coupled hashing networks
(``pldistill.retrieval.hashing``; the recipe's teacher model on the privileged
modality, its student model on the restricted one, the recipe's batch size
and learning rate) on the training split, encodes the test split into b-bit
codes, and ranks each modality's test codes by the other's, both ways.

Rows: MMSPH; random codes (seeded); CCA on the same inputs (scikit-learn,
``retrieval.baselines``); sign of a finished run's distilled student's
embedding against its teacher's (``--runs``: run folders of this recipe; the
row is skipped, with the reason, when none is given). Every score is
mean ± std over seeds (over run folders for the last row).

    python -m experiments.cross_modal_retrieval recipes/depth_to_rgb.yaml recipes/mfeat_fac_to_zer.yaml \\
        --seeds 0 1 2 --out experiments/results/cross_modal_retrieval

writes, per recipe, ``<out>/<recipe name>/retrieval.json`` (every seed's scores),
``retrieval.md`` (the table) and ``retrieval.png`` (restricted-modality
queries and their top retrievals of the privileged modality, correct class
framed green, the query's own partner marked). docs/retrieval.md explains the
columns.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pldistill.retrieval import (CCAHashing, CoupledHashing, MMSPHLoss, build_hashing_net, collect_outputs,
                                 direction_scores, hamming_distances, hamming_ranking, random_codes, sign_codes,
                                 to_codes, train_coupled)

SCORES = ("map", "precision_at_k", "partner_recall_at_k")


class Setting:
    """One recipe's data and modalities, read once: its splits (optionally cut down), loaders, input features."""

    def __init__(self, recipe_path: str | Path, overrides: Sequence[str] = (), train_limit: int | None = None,
                 test_limit: int | None = None):
        from pldistill.data.check import checked_datasets
        from pldistill.recipe import load_recipe
        from pldistill.stages.data import RunData

        self.recipe = load_recipe(recipe_path, list(overrides))
        train, test = checked_datasets(self.recipe.data, progress=False)
        train, test = _limited(train, train_limit, "train"), _limited(test, test_limit, "test")
        self.data = RunData(self.recipe, datasets=(train, test))
        self.privileged, self.restricted = self.recipe.teacher.modality, self.recipe.student.modality
        self.test_labels = np.array([test.label(i) for i in range(len(test))])

    def plain_loader(self, split: str, modality: str):
        """The split's samples in order, unaugmented (what codes, CCA features and embedding centres are made of)."""
        if split == "test":
            return self.data.test_loader(modality)
        from pldistill.data import ModalityView
        from pldistill.stages.data import make_loader

        view = ModalityView(self.data.train_set, [modality], self.data.eval_transform([modality]),
                            self.recipe.data.depth_encoding)
        return make_loader(view, 256, False, 0, self.recipe.schedule.num_workers)

    def inputs(self, split: str, modality: str) -> np.ndarray:
        """The split's encoded inputs of ``modality``, one flattened row per sample."""
        features, _ = collect_outputs(lambda t: t.flatten(1), self.plain_loader(split, modality), modality)
        return features


def _limited(dataset, limit: int | None, role: str):
    """The first ``limit`` samples of a seeded permutation (sorted, so a test split stays in its own order)."""
    if limit is None or limit >= len(dataset):
        return dataset
    from pldistill.data.holdout import IndexSubset

    keep = np.sort(np.random.default_rng([0, len(dataset)]).permutation(len(dataset))[:limit])
    return IndexSubset(dataset, keep, f"retrieval_{role}_limit")


def both_directions(privileged: np.ndarray, restricted: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """Scores of privileged queries against restricted codes and the reverse, and the mean ranking time."""
    p2r = direction_scores(privileged, restricted, labels, k)
    r2p = direction_scores(restricted, privileged, labels, k)
    out = {f"{name}_{d}": s[name] for d, s in (("p2r", p2r), ("r2p", r2p)) for name in SCORES}
    return out | {"rank_ms": (p2r["rank_ms"] + r2p["rank_ms"]) / 2}


def train_mmsph(setting: Setting, seed: int, bits: int, epochs: int, loss: MMSPHLoss, device) -> dict:
    """Coupled nets trained on the training split; test codes of both modalities (±1) and the loss history."""
    from pldistill.engine import seed_everything

    r, p, q = setting.recipe, setting.privileged, setting.restricted
    seed_everything(seed)
    nets = {m: build_hashing_net(spec.model, r.data.channels(m), bits, r.data.input_size(m))
            for m, spec in ((p, r.teacher), (q, r.student))}
    coupled = CoupledHashing(p, q, nets)
    loader = setting.data.train_loader([p, q], seed)
    started = time.perf_counter()
    history = train_coupled(coupled, loader, loss, epochs, r.schedule.lr, device,
                            report=lambda e, v: print(f"    epoch {e + 1}/{epochs}: loss {v:.4f}", flush=True))
    coupled.eval()
    codes = {m: to_codes(collect_outputs(coupled.nets[m], setting.plain_loader("test", m), m, device)[0])
             for m in (p, q)}
    return {"codes": codes, "history": history, "train_seconds": time.perf_counter() - started}


def cca_codes(setting: Setting, seed: int, bits: int, features: dict) -> dict:
    """CCA fitted on the training inputs of both modalities; test codes of each."""
    p, q = setting.privileged, setting.restricted
    cca = CCAHashing(bits, seed).fit(features["train"][p], features["train"][q])
    return {p: cca.codes_x(features["test"][p]), q: cca.codes_y(features["test"][q])}


def distilled_codes(setting: Setting, run_dir: Path, stage: str, device) -> tuple[dict, str]:
    """Sign codes of a finished run's teacher (privileged) and distilled student (restricted) on the test split.

    Each embedding is its model's pooled features, centred by their training-split mean. When the two
    widths differ no Hamming distance joins them, so both models' logits (one shared class space) are used,
    and the returned note says so.
    """
    from pldistill.checkpoint import load_checkpoint
    from pldistill.models import build_model

    r = setting.recipe
    models = {}
    for modality, name in ((setting.privileged, "teacher"), (setting.restricted, stage)):
        state = load_checkpoint(run_dir / "checkpoints" / f"{name}.pt")  # weights_only=True
        if state.get("modality") != modality:
            raise ValueError(f"{run_dir}: {name} read {state.get('modality')!r}, this recipe's is {modality!r}")
        model = build_model(state["model"], r.data.channels(modality), setting.data.num_classes,
                            image_size=r.data.input_size(modality))
        model.load_state_dict(state["state_dict"])
        models[modality] = model.to(device).eval()

    def pooled(model):
        return lambda t: model.forward_head(model.forward_features(t), pre_logits=True)

    def embed(split, modality, fn):
        return collect_outputs(fn, setting.plain_loader(split, modality), modality, device)[0]

    fns = {m: pooled(model) for m, model in models.items()}
    test = {m: embed("test", m, fn) for m, fn in fns.items()}
    note = "pooled features"
    if len({e.shape[1] for e in test.values()}) > 1:
        note = "logits; pooled widths " + " ≠ ".join(f"{m} {e.shape[1]}" for m, e in test.items())
        fns = dict(models)
        test = {m: embed("test", m, fn) for m, fn in fns.items()}
    return {m: sign_codes(test[m], embed("train", m, fn).mean(axis=0)) for m, fn in fns.items()}, note


def run_folders_of(recipe, runs: Sequence[str | Path]) -> list[Path]:
    """The given run folders of this recipe: named in their recipe.yaml, or (a comparison's seed folder, which
    has none) whose teacher read this recipe's privileged modality."""
    import yaml

    from pldistill.checkpoint import load_checkpoint

    def mine(run: Path) -> bool:
        if (run / "recipe.yaml").is_file():
            return (yaml.safe_load((run / "recipe.yaml").read_text()) or {}).get("name") == recipe.name
        teacher = run / "checkpoints" / "teacher.pt"
        return teacher.is_file() and load_checkpoint(teacher).get("modality") == recipe.teacher.modality

    return [run for run in map(Path, runs) if mine(run)]


def _data_changes(run: Path, recipe) -> list[str]:
    """The data keys a run folder's recipe.yaml sets otherwise than ``recipe`` ([] when it has none)."""
    from pldistill.stages.folder import recipe_differences

    if not (run / "recipe.yaml").is_file():
        return []
    return [key for key in recipe_differences(run, recipe.to_dict()) if key.startswith("data.")]


def summarise(per_seed: list[dict]) -> tuple[dict, dict]:
    """Mean and (population) std over seeds of every score."""
    keys = per_seed[0].keys()
    mean = {k: float(np.mean([s[k] for s in per_seed])) for k in keys}
    std = {k: float(np.std([s[k] for s in per_seed])) for k in keys}
    return mean, std


def evaluate_recipe(recipe_path: str | Path, seeds: Sequence[int], out: Path, bits: int = 32, k: int = 10,
                    epochs: int | None = None, margin_bits: float | None = None, intra_weight: float = 1.0,
                    runs: Sequence[str | Path] = (), stage: str = "student_distilled", overrides: Sequence[str] = (),
                    train_limit: int | None = None, test_limit: int | None = None, device: str = "auto",
                    figure_queries: int = 4, figure_k: int = 6) -> dict:
    """Every row for one recipe over ``seeds``; writes retrieval.json / .md / .png under ``out/<recipe name>``."""
    from pldistill.engine.device import pick_device

    dev = pick_device(device)
    setting = Setting(recipe_path, overrides, train_limit, test_limit)
    r, p, q = setting.recipe, setting.privileged, setting.restricted
    epochs = epochs or r.schedule.epochs
    loss = MMSPHLoss.for_bits(bits, margin_bits, intra_x=intra_weight, intra_y=intra_weight)
    labels = setting.test_labels
    print(f"== {r.name}: {p} (privileged, {r.teacher.model}) ↔ {q} (restricted, {r.student.model}), {bits} bits, "
          f"{len(setting.data.train_set)} training / {len(labels)} test pairs, {epochs} epochs", flush=True)
    features = {split: {m: setting.inputs(split, m) for m in (p, q)} for split in ("train", "test")}
    hamming_ranking(random_codes(8, bits, 0), random_codes(8, bits, 1))  # numpy's first call is slow: not timed
    rows = {"MMSPH": [], "random codes": [], "CCA": []}
    figure_codes = None
    for seed in seeds:
        print(f"  seed {seed}: MMSPH", flush=True)
        trained = train_mmsph(setting, seed, bits, epochs, loss, dev)
        figure_codes = figure_codes or trained["codes"]
        rows["MMSPH"].append(both_directions(trained["codes"][p], trained["codes"][q], labels, k)
                             | {"train_seconds": trained["train_seconds"], "final_loss": trained["history"][-1]})
        rows["random codes"].append(both_directions(random_codes(len(labels), bits, 2 * seed),
                                                    random_codes(len(labels), bits, 2 * seed + 1), labels, k))
        codes = cca_codes(setting, seed, bits, features)
        rows["CCA"].append(both_directions(codes[p], codes[q], labels, k))
    skipped, sign_row = {}, None
    folders = run_folders_of(r, runs)
    if folders:
        per_run, notes = [], set()
        for folder in folders:
            changed = _data_changes(folder, r)
            if changed:
                print(f"  note: {folder} was trained with other data settings ({', '.join(changed[:4])})", flush=True)
            codes, note = distilled_codes(setting, folder, stage, dev)
            per_run.append(both_directions(codes[p], codes[q], labels, k))
            notes.add(note)
        sign_row = f"sign of distilled embeddings ({'; '.join(sorted(notes))})"
        rows[sign_row] = per_run
    else:
        why = (f"no run folder of recipe {r.name!r} given (--runs RUN_DIR: a finished `pldistill run` folder "
               "whose checkpoints/ hold the teacher and the distilled student)")
        skipped["sign of distilled embeddings"] = why
        print(f"  skipped sign of distilled embeddings: {why}", flush=True)
    result = {
        "recipe": str(recipe_path), "name": r.name, "privileged": p, "restricted": q,
        "models": {p: r.teacher.model, q: r.student.model}, "bits": bits, "k": k, "epochs": epochs,
        "batch_size": r.schedule.batch_size, "lr": r.schedule.lr, "seeds": list(seeds),
        "loss": {"margin": loss.margin, "cross": loss.cross, "intra_x": loss.intra_x, "intra_y": loss.intra_y},
        "train_pairs": len(setting.data.train_set), "test_pairs": len(labels), "device": str(dev),
        "overrides": list(overrides), "runs": [str(f) for f in folders], "skipped": skipped,
        "rows": [dict(zip(("row", "per_seed", "mean", "std"), (name, per, *summarise(per))))
                 for name, per in rows.items()],
    }
    folder = out / r.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "retrieval.json").write_text(json.dumps(result, indent=1))
    (folder / "retrieval.md").write_text(retrieval_table(result))
    retrieval_figure(setting, figure_codes, figure_queries, figure_k, folder / "retrieval.png")
    return result


def retrieval_table(result: dict) -> str:
    """The markdown table: every row's scores, mean ± std over seeds (or run folders), and what was skipped."""
    p, q, k = result["privileged"], result["restricted"], result["k"]
    columns = [(f"mAP {p}→{q}", "map_p2r"), (f"mAP {q}→{p}", "map_r2p"),
               (f"P@{k} {p}→{q}", "precision_at_k_p2r"), (f"P@{k} {q}→{p}", "precision_at_k_r2p"),
               (f"partner R@{k} {p}→{q}", "partner_recall_at_k_p2r"),
               (f"partner R@{k} {q}→{p}", "partner_recall_at_k_r2p")]
    head = "| codes | n | " + " | ".join(c for c, _ in columns) + " | ranking ms |\n|---|---:|" + "---:|" * (
        len(columns) + 1) + "\n"
    body = ""
    for row in result["rows"]:
        m, s = row["mean"], row["std"]
        cells = [f"{m[key]:.3f} ± {s[key]:.3f}" for _, key in columns]
        body += f"| {row['row']} | {len(row['per_seed'])} | " + " | ".join(cells) + f" | {m['rank_ms']:.1f} |\n"
    skipped = "".join(f"\n*{name}: skipped — {why}.*\n" for name, why in result["skipped"].items())
    return (f"# Cross-modal retrieval: {result['name']}, {result['bits']}-bit codes\n\n"
            f"{result['train_pairs']} training pairs, {result['test_pairs']} test pairs; MMSPH: "
            f"{result['models'][p]} on {p}, {result['models'][q]} on {q}, {result['epochs']} epochs, "
            f"seeds {result['seeds']}, device {result['device']}. Relevant = same class; partner = the same "
            f"sample's other modality; ranking ms: one direction's exact Hamming ranking of the whole test set.\n\n"
            f"{head}{body}{skipped}")


def retrieval_figure(setting: Setting, codes: dict, queries: int, k: int, path: Path) -> None:
    """Restricted-modality queries (a random one per class) and their top ``k`` privileged retrievals, correct green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, q, labels = setting.privileged, setting.restricted, setting.test_labels
    # a seeded random query per class, and ties in distance broken at random: with codes that collapse per
    # class, the first query of a class and index order would put its own partner first by tie order alone
    rng = np.random.default_rng(0)
    chosen = [int(rng.choice(np.flatnonzero(labels == c))) for c in np.unique(labels)[:queries]]
    distances = hamming_distances(codes[q][chosen], codes[p])
    shuffled = rng.permutation(distances.shape[1])
    ranking = shuffled[np.argsort(distances[:, shuffled], axis=1, kind="stable")[:, :k]]
    classes = setting.data.test_set.classes
    fig, axes = plt.subplots(len(chosen), k + 1, figsize=(1.3 * (k + 1), 1.45 * len(chosen)), squeeze=False)
    for row, (query, found) in enumerate(zip(chosen, ranking)):
        _draw(axes[row, 0], setting, query, q, classes, "black", f"query ({q})")
        for col, item in enumerate(found, start=1):
            colour = "tab:green" if labels[item] == labels[query] else "tab:red"
            _draw(axes[row, col], setting, int(item), p, classes, colour,
                  f"#{col} d={distances[row, item]}" + (" partner" if item == query else ""))
    fig.suptitle(f"{setting.recipe.name}: {q} queries → top {k} {p} (MMSPH); green = same class", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw(ax, setting: Setting, index: int, modality: str, classes, colour: str, title: str) -> None:
    """One sample in one cell: the picture for images and depth, the class name for vectors; a coloured frame."""
    kind = setting.data.test_set.modalities[modality].kind
    if kind in ("image", "depth", "spectrogram"):
        array = setting.data.test_set.load(index, [modality])[modality]
        ax.imshow(array, cmap=None if kind == "image" else "viridis")
    else:
        ax.text(0.5, 0.5, classes[setting.test_labels[index]], ha="center", va="center", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=6)
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(2.5)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", help="recipes of two paired modalities (recipes/depth_to_rgb.yaml)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--k", type=int, default=10, help="k of precision@k and partner recall@k")
    parser.add_argument("--epochs", type=int, default=None, help="MMSPH training epochs (default: the recipe's)")
    parser.add_argument("--margin-bits", type=float, default=None, help="hinge margin in differing bits (default b/2)")
    parser.add_argument("--intra-weight", type=float, default=1.0, help="weight of each intra-modal term (α = β)")
    parser.add_argument("--runs", nargs="*", default=[], help="finished run folders (runs/<name>/<stamp>, or a "
                        "comparison's seed folder) for the sign-of-distilled-embeddings row, matched to recipes")
    parser.add_argument("--stage", default="student_distilled", help="the student checkpoint in those run folders")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override, repeatable (e.g. --set data.num_train=200)")
    parser.add_argument("--train-limit", type=int, default=None, help="train on this many pairs (seeded subset)")
    parser.add_argument("--test-limit", type=int, default=None, help="test on this many pairs (seeded subset)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="experiments/results/cross_modal_retrieval")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # tanh codes saturate as training goes on and their gradients turn denormal, which x86 CPUs compute
    # many times slower; flushing them to zero changes nothing a 32-bit code could show
    torch.set_flush_denormal(True)
    used = set()
    for recipe in args.recipes:
        result = evaluate_recipe(recipe, args.seeds, Path(args.out), args.bits, args.k, args.epochs, args.margin_bits,
                                 args.intra_weight, args.runs, args.stage, args.overrides, args.train_limit,
                                 args.test_limit, args.device)
        used |= set(result["runs"])
        print(retrieval_table(result))
    for run in sorted(set(map(str, map(Path, args.runs))) - used):
        print(f"note: --runs {run} matched none of the recipes (the name in its recipe.yaml, or its teacher's "
              "modality); not used")


if __name__ == "__main__":
    main()
