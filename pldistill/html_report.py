"""report.html: one self-contained page per run folder, rebuilt from its files at any time.

Reads only what the run wrote (results.json, alignment/*.npz), draws the
figures into figures/ and links them with relative paths, so the page opens
from disk with no server. ``compare_runs`` puts several runs side by side.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from . import figures
from .diagnosis import readings
from .probe import ProbeSnapshot
from .report import health_lines, weight_lines
from .teacher_agreement import describe_agreement

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .note { color: #555; font-size: 0.9em; }
.warn { color: #8a3b00; background: #fff4e5; padding: 0.3em 0.5em; }
"""


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='num'>{html.escape(str(c))}</td>" if isinstance(c, (int, float)) or str(c).endswith("%")
            else f"<td>{html.escape(str(c))}</td>" for c in row
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _histories(results: dict) -> dict[str, list[dict]]:
    out = {"teacher": results["teacher"].get("history", [])}
    out.update({f"student_{k}": v["history"] for k, v in results["students"].items()})
    return out


def _snapshots(run_dir: Path) -> dict[str, ProbeSnapshot]:
    files = sorted((run_dir / "alignment").glob("student_*.npz"), key=lambda p: (p.stem != "student_scratch", p.stem))
    return {p.stem: ProbeSnapshot.load(p) for p in files}  # scratch first: the baseline to read against


def _alignment_rows(results: dict) -> tuple[list[str], list[list]]:
    students = results["students"]
    keys = sorted({k for s in students.values() for k in s.get("alignment", {}) if k != "align/seconds"})
    rows = [[k.removeprefix("align/")] + [f"{s.get('alignment', {}).get(k, float('nan')):.3f}"
                                          for s in students.values()] for k in keys]
    return ["metric (end of training)"] + [f"student: {k}" for k in students], rows


def draw_figures(run_dir: Path, results: dict) -> dict[str, Path]:
    """The run's pictures as PNG files under figures/; also what W&B receives."""
    out = run_dir / "figures"
    histories = _histories(results)
    drawn = {
        "curves": figures.curves_figure(histories, out / "curves.png"),
        "alignment": figures.alignment_figure({k: v for k, v in histories.items() if k != "teacher"},
                                              out / "alignment.png"),
    }
    snapshots = _snapshots(run_dir)
    if snapshots:
        drawn["similarity"] = figures.similarity_figure(snapshots, out / "similarity.png")
        drawn["cka_grid"] = figures.cka_grid_figure(snapshots, out / "cka_grid.png")
    return drawn


def build_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    results_file = run_dir / "results.json"
    if not results_file.exists():
        raise FileNotFoundError(f"{run_dir}: no results.json; is this a finished pldistill run folder?")
    results = json.loads(results_file.read_text())
    drawn = draw_figures(run_dir, results)
    t, s = results["teacher"], results["students"]
    roles = [["teacher", t["model"], t["modality"], _pct(t["test_acc"])]] + [
        [f"student: {k}", v["model"], v["modality"], _pct(v["test_acc"])] for k, v in s.items()
    ]
    control = results.get("control")  # the same-modality control: what the privileged gain is measured against
    if control:
        ct, cs = control["teacher"], control["student"]
        roles += [["control teacher (same model and budget)", ct["model"], ct["modality"], _pct(ct["test_acc"])],
                  [f"student: control (distilled from the {ct['modality']} teacher)", cs["model"], cs["modality"],
                   _pct(cs["test_acc"])]]
    privileged = (f"; privileged gain (distilled − control) {100 * control['privileged_gain']:+.1f} points"
                  if control else "")
    if control and control.get("teacher_agreement"):  # measured before the control student: does RGB carry it?
        privileged += (f"; teacher agreement ({t['modality']} teacher against the {control['teacher']['modality']} "
                       f"one, on the probe): {describe_agreement(control['teacher_agreement'])}")
    instance = results.get("instance_controls")  # shuffled pairing and class means: is the gain instance knowledge?
    if instance:
        roles += [[f"student: shuffled pairing (the {t['modality']} teacher on another same-class sample)",
                   instance["shuffled"]["model"], instance["shuffled"]["modality"],
                   _pct(instance["shuffled"]["test_acc"])],
                  ["student: class-mean teacher", instance["class_mean"]["model"], instance["class_mean"]["modality"],
                   _pct(instance["class_mean"]["test_acc"])]]
        privileged += (f"; instance gain (distilled − shuffled pairing) {100 * instance['instance_gain']:+.1f} points, "
                       f"beyond class means {100 * instance['beyond_class_mean']:+.1f} points")
    header, rows = _alignment_rows(results)
    captions = {
        "curves": "Training cross-entropy and test accuracy per epoch; each model is tested on its own modality.",
        "alignment": "Alignment with the teacher on the probe set per epoch: linear CKA, correlation of the "
                     "similarity matrices (what SP optimises), mutual k-NN overlap, top-1 agreement.",
        "similarity": "Row-normalised similarity matrices on the probe set, samples grouped by class: the "
                      "teacher's block structure is what a distilled student should inherit.",
        "cka_grid": "Linear CKA of every teacher stage (rows) with every student stage (columns).",
    }
    parts = [
        f"<h1>{html.escape(results['recipe'])} — seed {results['seed']}</h1>",
        f"<p class='note'>{html.escape(results['dataset']['kind'])}: {results['dataset']['num_train']} train / "
        f"{results['dataset']['num_test']} test samples; device {html.escape(results['device'])}; "
        f"distillation gain {100 * results['distill_gain']:+.1f} points{privileged}. Run folder: "
        f"{html.escape(str(run_dir))}</p>",
        _table(["role", "model", "modality", "test accuracy"], roles),
    ]
    delivered = results.get("delivered")  # student.holdout: which student the run hands over, and why
    if delivered:
        parts.append(f"<p class='{'warn' if delivered['student'] == 'scratch' else 'note'}'>Delivered: the "
                     f"{delivered['student']} student ({_pct(delivered['test_acc'])} on the test set) — "
                     f"{html.escape(delivered['reason'])}.</p>")
    said = readings(results)  # why it helped or not, from the run's own controls
    if said:
        parts.append("<h2>reading the controls</h2>" + "".join(f"<p>{html.escape(r)}</p>" for r in said))
    health = health_lines(results)  # distillation that hurts the student is said where it is seen
    if health:
        parts.append("<h2>health check</h2>" + "".join(f"<p class='warn'>{html.escape(m)}</p>" for m in health))
    weights = weight_lines(results)
    if weights:
        parts.append("<p class='note'>Distillation weights: " + html.escape("; ".join(weights)) + ".</p>")
    if rows:
        parts.append(_table(header, rows))
    for key, path in drawn.items():
        parts.append(f"<h2>{key.replace('_', ' ')}</h2><p class='note'>{html.escape(captions[key])}</p>"
                     f"<img src='{path.relative_to(run_dir)}' alt='{key}'>")
    page = run_dir / "report.html"
    page.write_text(_page(f"pldistill: {results['recipe']}", parts))
    return page


def _page(title: str, parts: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def compare_runs(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Several runs side by side: one results table and overlaid curves of every student."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(Path(d), json.loads((Path(d) / "results.json").read_text())) for d in run_dirs]
    rows, histories = [], {}
    for run_dir, r in runs:
        label = f"{r['recipe']}/s{r['seed']}/{run_dir.name}"
        d = r["students"]["distilled"]
        rows.append([label, _pct(r["teacher"]["test_acc"]), _pct(r["students"]["scratch"]["test_acc"]),
                     _pct(d["test_acc"]), f"{100 * r['distill_gain']:+.1f}",
                     " / ".join(f"{k.removeprefix('align/')} {v:.2f}" for k, v in d.get("alignment", {}).items()
                                if k.startswith("align/cka/"))])
        histories.update({f"{label} {k}": v["history"] for k, v in r["students"].items()})
    curves = figures.curves_figure(histories, out / "curves.png")
    align = figures.alignment_figure(histories, out / "alignment.png")
    parts = [
        f"<h1>{len(runs)} runs side by side</h1>",
        _table(["run", "teacher", "scratch", "distilled", "gain (points)", "distilled CKA per pair"], rows),
        f"<h2>curves</h2><img src='{curves.name}'><h2>alignment</h2><img src='{align.name}'>",
    ]
    page = out / "report.html"
    page.write_text(_page("pldistill: runs compared", parts))
    return page
