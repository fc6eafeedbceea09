"""Generalized distillation on MNIST: a 28×28 teacher, a 7×7 student (Lopez-Paz et al., ICLR 2016, §5).

Protocol of the paper: n random training digits (300 or 500), a teacher MLP
(784 → 20 → 20 → 10, ReLU) on the full images, students of the same shape on
7×7 bilinear downsamples, RMSprop for 50 epochs (batches of 128), distilled
students minimise (1 − λ)·CE(y) + λ·T²·CE(softmax(teacher/T)) over the grid
T ∈ {1, 2, 5, 10, 20, 50}, λ ∈ {0, 0.1, …, 1}; λ = 0 is the student alone.
Accuracy on the 10,000 test digits, averaged over random training splits.
Every (split, T, λ) student trains at once as one batched MLP.

The MNIST copy is read from a folder of PNGs (``train/<digit>/*.png``,
``test/<digit>/*.png``, as in ``../shared/data/mnist-png.tar.gz``) and cached
as one .npz; pldistill never downloads it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TEMPERATURES = (1, 2, 5, 10, 20, 50)
IMITATIONS = tuple(round(0.1 * i, 1) for i in range(11))
PUBLISHED = {300: (80.1, 47.0, 65.6), 500: (83.7, 58.9, 74.3)}  # teacher, student alone, best distilled (%)


def load_mnist_folder(root: str | Path, cache: str | Path | None = None) -> dict[str, np.ndarray]:
    """{x_train, y_train, x_test, y_test} as uint8 (n, 28, 28) and int64, from class folders of PNGs."""
    from PIL import Image

    root = Path(root)
    if cache is not None and Path(cache).exists():
        with np.load(cache) as f:
            return {k: f[k] for k in f.files}
    out = {}
    for split in ("train", "test"):
        folder = root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found: expected MNIST as {root}/{{train,test}}/<digit>/*.png")
        files = sorted(folder.glob("*/*.png"))
        out[f"x_{split}"] = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
        out[f"y_{split}"] = np.array([int(f.parent.name) for f in files], dtype=np.int64)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **out)
    return out


def read_mnist_archive(path: Path) -> dict[str, np.ndarray]:
    """The same arrays as ``load_mnist_folder``, decoded straight from the .tar.gz: 70,000 PNGs are never
    written to disk (members are read, never extracted, so no member path can land anywhere)."""
    import io
    import tarfile
    from pathlib import PurePosixPath

    from PIL import Image

    found: dict[str, list[tuple[str, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(path) as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not (member.isfile() and member.name.endswith(".png") and len(parts) >= 3):
                continue
            split, digit = parts[-3], parts[-2]
            if split in found and digit.isdigit():
                pixels = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("L"))
                found[split].append((f"{digit}/{parts[-1]}", pixels))
    out = {}
    for split, items in found.items():
        if not items:
            raise FileNotFoundError(f"{path}: no {split}/<digit>/*.png members (MNIST as PNG class folders)")
        items.sort(key=lambda item: item[0])  # the order load_mnist_folder's sorted glob gives
        out[f"x_{split}"] = np.stack([pixels for _, pixels in items])
        out[f"y_{split}"] = np.array([int(name.split("/")[0]) for name, _ in items], dtype=np.int64)
    return out


def mnist_arrays(path: str | Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """MNIST from a PNG folder or its .tar.gz (read in place), decoded once into ``cache_dir``."""
    import hashlib

    from pldistill.data.archives import data_folder, find_root, is_archive

    path = Path(path)
    cache = cache_dir / f"mnist-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}.npz"
    if cache.exists():  # decoded before: no need to read the PNGs again
        return load_mnist_folder(path, cache)
    if is_archive(path):
        out = read_mnist_archive(path)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **out)
        return out
    folder = find_root(data_folder(path, "MNIST (PNG)", "e.g. ../shared/data/mnist-png.tar.gz", cache_dir),
                       "test", "MNIST as {train,test}/<digit>/*.png")
    return load_mnist_folder(folder, cache)


def downsample(images: np.ndarray, size: int = 7) -> np.ndarray:
    """(n, 28, 28) uint8 → (n, size·size) in [0, 1], bilinear as the paper's imresize."""
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 255.0
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).flatten(1).numpy()


class BatchedMLP:
    """R independent MLPs d → m → m → k (ReLU), trained together with bmm."""

    def __init__(self, reps: int, d: int, m: int, k: int, generator: torch.Generator):
        def glorot(fan_in, fan_out):
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            return ((torch.rand(reps, fan_in, fan_out, generator=generator) * 2 - 1) * bound).requires_grad_()

        self.weights = [glorot(d, m), glorot(m, m), glorot(m, k)]
        self.biases = [torch.zeros(reps, 1, n, requires_grad=True) for n in (m, m, k)]

    def parameters(self):
        return self.weights + self.biases

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (R, n, d) or a shared (n, d) → logits (R, n, k)."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = (torch.matmul(h, w) if h.dim() == 3 else torch.einsum("nd,rdm->rnm", h, w)) + b
            if i < 2:
                h = F.relu(h)
        return h


def train(model: BatchedMLP, x: torch.Tensor, targets: torch.Tensor, epochs: int, generator: torch.Generator,
          batch: int = 128) -> None:
    """x (R, n, d), soft targets (R, n, k)."""
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    n = x.shape[1]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = -(targets[:, idx] * F.log_softmax(model(x[:, idx]), -1)).sum(-1).mean() * x.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()


@torch.no_grad()
def accuracy(model: BatchedMLP, x_test: torch.Tensor, y_test: torch.Tensor, chunk: int = 2000) -> np.ndarray:
    correct = sum((model(x_test[i:i + chunk]).argmax(-1) == y_test[i:i + chunk]).sum(1)
                  for i in range(0, len(y_test), chunk))
    return (correct.double() / len(y_test)).numpy()


def run_mnist(data: dict[str, np.ndarray], n: int, splits: int = 10, epochs: int = 50, hidden: int = 20,
              temperatures=TEMPERATURES, imitations=IMITATIONS, seed: int = 0) -> dict:
    """Teacher and student-grid accuracies (%) per split: {'teacher': (S,), 'students': (S, |T|, |λ|)}."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.permutation(len(data["y_train"]))[:n] for _ in range(splits)])
    big_tr = torch.tensor(data["x_train"][idx].reshape(splits, n, -1) / 255.0, dtype=torch.float32)
    small_tr = torch.tensor(np.stack([downsample(data["x_train"][i]) for i in idx]), dtype=torch.float32)
    y_tr = torch.tensor(data["y_train"][idx])
    big_te = torch.tensor(data["x_test"].reshape(len(data["x_test"]), -1) / 255.0, dtype=torch.float32)
    small_te = torch.tensor(downsample(data["x_test"]), dtype=torch.float32)
    y_te = torch.tensor(data["y_test"])
    onehot = F.one_hot(y_tr, 10).float()

    teacher = BatchedMLP(splits, big_tr.shape[-1], hidden, 10, g)
    train(teacher, big_tr, onehot, epochs, g)
    teacher_acc = accuracy(teacher, big_te, y_te)
    with torch.no_grad():
        logits = teacher(big_tr)  # (S, n, 10)
    grid = [(t, lam) for t in temperatures for lam in imitations]
    targets = []
    for t, lam in grid:
        soft = F.softmax(logits / t, -1)
        weight = lam * t * t
        targets.append(((1 - lam) * onehot + weight * soft) / ((1 - lam) + weight))
    # students: one per (split, T, λ), all at once
    targets = torch.stack(targets, 1).flatten(0, 1)  # (S·G, n, 10)
    x_students = small_tr.repeat_interleave(len(grid), 0)
    students = BatchedMLP(len(targets), small_tr.shape[-1], hidden, 10, g)
    train(students, x_students, targets, epochs, g)
    student_acc = accuracy(students, small_te, y_te).reshape(splits, len(temperatures), len(imitations))
    return {"n": n, "teacher": 100 * teacher_acc, "students": 100 * student_acc,
            "temperatures": list(temperatures), "imitations": list(imitations)}


def summarise(result: dict) -> dict:
    """Teacher, student alone (λ = 0), and the best (T, λ) by mean test accuracy, as the paper reports."""
    mean = result["students"].mean(0)  # (|T|, |λ|)
    alone = mean[:, 0].mean()  # λ = 0 ignores T: average the identical settings
    ti, li = np.unravel_index(np.argmax(mean[:, 1:]), mean[:, 1:].shape)
    best = result["students"][:, ti, li + 1]
    return {
        "teacher": (float(result["teacher"].mean()), float(result["teacher"].std())),
        "student": (float(alone), float(result["students"][:, :, 0].mean(1).std())),
        "distilled": (float(best.mean()), float(best.std())),
        "best_T": result["temperatures"][ti],
        "best_lambda": result["imitations"][li + 1],
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.gd_mnist --data MNIST [--n 300 500] [--splits 10] [--seed 0]``."""
    import argparse
    import sys

    from pldistill.data.synthetic_shapes import default_cache_dir
    from pldistill.errors import PldistillError

    parser = argparse.ArgumentParser(
        prog="python -m experiments.gd_mnist",
        description="generalized distillation on MNIST: 28×28 teacher, 7×7 student (Lopez-Paz et al. 2016)",
        epilog="example: python -m experiments.gd_mnist --data ../shared/data/mnist-png.tar.gz   (~20 s)",
    )
    parser.add_argument("--data", type=Path, required=True, help="MNIST PNG folder or mnist-png.tar.gz")
    parser.add_argument("--n", type=int, nargs="+", default=[300, 500], help="training-set sizes")
    parser.add_argument("--splits", type=int, default=10, help="random training splits to average")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        data = mnist_arrays(args.data, default_cache_dir())
    except (PldistillError, FileNotFoundError) as exc:  # no such file or folder, not MNIST: one line
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print("| n | teacher 28×28 | student 7×7 alone | best distilled (T, λ) | published (teacher / student / distilled) |")
    print("|---:|---:|---:|---|---|")
    for n in args.n:
        s = summarise(run_mnist(data, n, splits=args.splits, seed=args.seed))
        cell = lambda v: f"{v[0]:.1f} ± {v[1]:.1f}"  # noqa: E731
        published = " / ".join(f"{v:.1f}" for v in PUBLISHED.get(n, ())) or "n/a"
        print(f"| {n} | {cell(s['teacher'])} | {cell(s['student'])} | {cell(s['distilled'])} "
              f"(T={s['best_T']}, λ={s['best_lambda']}) | {published} |")
    print(f"accuracy % on the 10,000 test digits, mean ± std over {args.splits} random training splits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
