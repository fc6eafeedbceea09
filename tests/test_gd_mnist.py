"""MNIST 28 → 7 generalized distillation: mechanics on tiny fake digits, the paper's numbers on the real copy."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.gd_mnist import downsample, load_mnist_folder, main, run_mnist, summarise

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "mnist-png.tar.gz"


def write_fake_digits(root, per_class=30):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for digit in range(10):
            (root / split / str(digit)).mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 40, (28, 28)).astype(np.uint8)
                img[digit * 2:digit * 2 + 8, 4:24] = 255  # a class-specific bar: learnable at 7×7 too
                Image.fromarray(img).save(root / split / str(digit) / f"{i}.png")


def test_the_archive_is_read_in_place_to_the_same_arrays_as_its_folder(tmp_path):
    from experiments.gd_mnist import mnist_arrays
    from real_layouts import make_tar

    write_fake_digits(tmp_path / "mnist", per_class=3)
    archive = make_tar(tmp_path / "mnist", tmp_path / "mnist-png.tar.gz", arcname="mnist-png")
    from_archive = mnist_arrays(archive, tmp_path / "cache")
    folder = load_mnist_folder(tmp_path / "mnist")
    assert all(np.array_equal(from_archive[k], folder[k]) for k in folder) and set(from_archive) == set(folder)
    assert not (tmp_path / "cache" / "archives").exists()  # nothing unpacked
    again = mnist_arrays(archive, tmp_path / "cache")  # decoded once: the .npz is read back
    assert all(np.array_equal(again[k], folder[k]) for k in folder)


def test_folder_reader_downsampling_and_the_batched_grid(tmp_path):
    write_fake_digits(tmp_path / "mnist")
    data = load_mnist_folder(tmp_path / "mnist", tmp_path / "cache.npz")
    assert data["x_train"].shape == (300, 28, 28) and sorted(set(data["y_test"])) == list(range(10))
    assert (tmp_path / "cache.npz").exists()
    small = downsample(data["x_train"][:2])
    assert small.shape == (2, 49) and 0 <= small.min() and small.max() <= 1 + 1e-6
    result = run_mnist(data, n=100, splits=2, epochs=30, temperatures=(1, 5), imitations=(0.0, 0.5, 1.0))
    assert result["students"].shape == (2, 2, 3)
    s = summarise(result)
    assert s["teacher"][0] > 50 and s["best_T"] in (1, 5) and s["best_lambda"] in (0.5, 1.0)


@pytest.mark.skipif(not SHARED.exists(), reason=f"real MNIST copy not found at {SHARED}")
def test_real_mnist_reproduces_the_papers_n300_row(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path))
    assert main(["--data", str(SHARED), "--n", "300", "--splits", "3"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 300 |"))
    teacher, student, distilled = (float(cell.split("±")[0]) for cell in row.split("|")[2:5])
    assert 75 < teacher < 86 and 42 < student < 55  # paper: 80.1 and 47.0
    assert distilled > student + 8  # paper: 65.6, T=20, λ=0.1
