"""What does compression cost a packed split's random per-sample reads?

Packs one synthetic_shapes split (default 2000 samples at 48 px, rgb + depth)
with each compression of ``pldistill.data.packed`` and times what training
does: ``PackedDataset.load`` of random samples, both modalities (a teacher and
student step) and rgb alone (a student-only view). Rounds are interleaved
(every compression read in every round, in a rotated order, on the same
random samples, distinct as in an epoch) so machine noise hits all alike;
each round's time is divided by the uncompressed time of the same round, and
the medians are reported.
The files are small enough to sit in the page cache, as a split that fits in
RAM does after its first epoch: this measures decompression, not the disk.

Writes bench/results/packed_read.{json,md} with the command line.

    .venv/bin/python bench/packed_read.py            # ~10 s on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from pldistill.data import SyntheticShapes
from pldistill.data.packed import PackedDataset, pack

RESULTS = Path(__file__).parent / "results"
COMPRESSIONS = ["none", "lzf", "gzip-1", "gzip-4"]
VIEWS = {"rgb+depth": ["rgb", "depth"], "rgb": ["rgb"]}


def _read_time(dataset: PackedDataset, indices: np.ndarray, names: list[str]) -> float:
    start = time.perf_counter()
    for i in indices:
        dataset.load(int(i), names)
    return (time.perf_counter() - start) / len(indices)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--reads", type=int, default=1000, help="samples read per round and case")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="packed_read", help="results stem under bench/results")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="packed_read.") as tmp:
        cache = Path(tmp) / "cache"
        source = SyntheticShapes("train", args.samples, image_size=args.image_size, cache_dir=cache)
        files, pack_s, datasets = {}, {}, {}
        for c in COMPRESSIONS:
            start = time.perf_counter()
            files[c] = pack(source, Path(tmp) / f"{c}.h5", compression=c, progress=False)
            pack_s[c] = time.perf_counter() - start
            datasets[c] = PackedDataset(files[c])
            datasets[c].load(0, ["rgb", "depth"])  # open the handle outside the timings
        sizes = {c: files[c].stat().st_size for c in COMPRESSIONS}
        stored = {}  # bytes each modality takes on disk: shows which ones a filter actually shrinks
        for c in COMPRESSIONS:
            with h5py.File(files[c], "r") as f:
                stored[c] = {n: f[n].id.get_storage_size() for n in ("rgb", "depth")}
        with h5py.File(files["none"], "r") as f:
            payload = sum(f[n].nbytes for n in ("rgb", "depth"))

        times = {(c, v): [] for c in COMPRESSIONS for v in VIEWS}
        ratios = {(c, v): [] for c in COMPRESSIONS for v in VIEWS}
        for r in range(args.rounds):
            order = COMPRESSIONS[r % len(COMPRESSIONS) :] + COMPRESSIONS[: r % len(COMPRESSIONS)]
            for view, names in VIEWS.items():
                # Distinct samples, as in an epoch, fresh per view: HDF5's chunk cache must not
                # serve them.
                indices = rng.permutation(args.samples)[: args.reads]
                this_round = {c: _read_time(datasets[c], indices, names) for c in order}
                for c in COMPRESSIONS:
                    times[c, view].append(this_round[c])
                    ratios[c, view].append(this_round[c] / this_round["none"])
        for d in datasets.values():
            d.close()

    rows = [
        {
            "compression": c,
            "file_mb": sizes[c] / 1e6,
            "size_vs_none": sizes[c] / sizes["none"],
            "rgb_vs_none": stored[c]["rgb"] / stored["none"]["rgb"],
            "depth_vs_none": stored[c]["depth"] / stored["none"]["depth"],
            "pack_s": pack_s[c],
            **{f"read_us[{v}]": statistics.median(times[c, v]) * 1e6 for v in VIEWS},
            **{f"read_vs_none[{v}]": statistics.median(ratios[c, v]) for v in VIEWS},
        }
        for c in COMPRESSIONS
    ]
    command = " ".join([Path(sys.executable).name, *sys.argv])
    meta = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "samples": args.samples,
        "image_size": args.image_size,
        "payload_mb": payload / 1e6,
        "reads_per_round": args.reads,
        "rounds": args.rounds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))

    lines = [
        "# Packed split: random per-sample read cost by compression",
        "",
        f"Command: `{command}`  ",
        f"Date: {meta['date']}; {meta['machine']}; Python {meta['python']}, h5py {meta['h5py']}, "
        f"HDF5 {meta['hdf5']}  ",
        f"{args.samples} synthetic_shapes samples at {args.image_size} px (rgb uint8 + depth float32, "
        f"{payload / 1e6:.1f} MB of arrays), one chunk per sample; {args.rounds} interleaved rounds of "
        f"{min(args.reads, args.samples)} distinct random `PackedDataset.load` calls per case; "
        "medians; ratios against `none` in the same round. "
        "Files are in the page cache: this is decompression cost, not disk.",
        "",
        "| compression | file MB | size vs none | rgb | depth | pack s | µs/sample rgb+depth | × none | µs/sample rgb | × none |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['compression']} | {row['file_mb']:.1f} | {row['size_vs_none']:.2f} | {row['rgb_vs_none']:.2f} "
            f"| {row['depth_vs_none']:.2f} | {row['pack_s']:.2f} "
            f"| {row['read_us[rgb+depth]']:.0f} | {row['read_vs_none[rgb+depth]']:.2f} "
            f"| {row['read_us[rgb]']:.0f} | {row['read_vs_none[rgb]']:.2f} |"
        )
    within = [r["compression"] for r in rows[1:] if r["read_vs_none[rgb+depth]"] <= 2.0]
    verdict = ", ".join(within) or "none"
    lines += ["", f"Compressed options within 2× of uncompressed reads (rgb+depth): {verdict}."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
