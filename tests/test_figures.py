"""Figures drawn from plain histories: a run without alignment metrics still gets a readable panel."""

import warnings

import matplotlib.image

from pldistill.figures import alignment_figure


def test_alignment_figure_without_probe_metrics_says_why_and_warns_nothing(tmp_path):
    histories = {"student_scratch": [{"epoch": 1, "val/acc": 0.5}], "student_distilled": [{"epoch": 1, "val/acc": 0.6}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels" legend warning fails the test
        path = alignment_figure(histories, tmp_path / "alignment.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_alignment_figure_draws_one_panel_per_metric(tmp_path):
    rows = lambda v: [{"epoch": e, "align/cka/t4-s4": v * e, "align/knn": v, "align/seconds": 9.0} for e in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = alignment_figure({"student_scratch": rows(0.2), "student_distilled": rows(0.4)}, tmp_path / "a.png")
    height, width = matplotlib.image.imread(path).shape[:2]
    single = matplotlib.image.imread(alignment_figure({"s": []}, tmp_path / "b.png"))
    assert width > 1.8 * single.shape[1]  # two metric panels (align/seconds is not one), the empty figure has one
