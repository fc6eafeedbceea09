"""Benchmarks are not run by the tests (they take hours), but they must not rot: every script `make bench`
runs starts and parses its options, and BENCHMARKS.md is assembled from the results files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BENCH = re.findall(r"\$\(PY\) (bench/\w+\.py)", (ROOT / "Makefile").read_text())


def test_make_bench_runs_every_benchmark_and_then_collects():
    scripts = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bench").glob("*.py")} - {"bench/machine.py"}
    assert set(BENCH) == scripts  # no benchmark left out of `make bench`
    assert BENCH[-1] == "bench/collect.py"


# Each script's --help in one fresh interpreter (torch and timm start once, not once per script): its exit
# status and whether it printed a usage line, as JSON.
_HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out[script] = [code, "usage:" in text.getvalue()]
print(json.dumps(out))
"""


def test_every_benchmark_script_starts_and_parses_its_options():
    import json

    scripts = [s for s in BENCH if s != "bench/collect.py"]
    try:
        import torchdistill  # noqa: F401
    except ImportError:  # bench-only extra: pip install -e '.[bench]' (make bench does)
        scripts = [s for s in scripts if "torchdistill" not in s]
    done = subprocess.run([sys.executable, "-c", _HELP_ALL, *scripts], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout.strip().splitlines()[-1])
    assert started == {s: [0, True] for s in scripts}, started


def test_bench_scripts_find_the_experiments_beside_the_package(tmp_path):
    """experiments/ is not installed: the scripts that use it put the repository root on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import runpy, sys; "
            f"runpy.run_path({str(ROOT / 'bench' / 'teacher_generalisation.py')!r}, run_name='bench'); "
            "import experiments.teacher_signal, experiments.class_pairing; print(experiments.__file__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(ROOT.resolve() / "experiments") in done.stdout


def test_benchmarks_md_is_every_results_file_one_level_down(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "bench"))
    import collect

    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "overhead.md").write_text("# Overhead\n\nCommand: `x`\n\n## Detail\n| a |\n")
    (results / "overhead.png").write_bytes(b"\x89PNG")
    monkeypatch.setattr(collect, "ROOT", tmp_path)
    monkeypatch.setattr(collect, "RESULTS", results)
    collect.main()
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "\n## Overhead\n" in text and "\n### Detail\n" in text and "Command: `x`" in text
    assert "![overhead](bench/results/overhead.png)" in text
    assert "Not yet measured: " in text and "`bench/teacher_cache.py`" in text
