"""The public API: ``import pldistill`` names what docs/python-api.md documents, and its example runs."""

import re
from pathlib import Path

import pytest

import pldistill

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def _tested_example() -> str:
    text = DOC.read_text()
    block = text.split("<!-- tested: tests/test_python_api.py -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_every_documented_name_is_public_and_importable():
    documented = set(re.findall(r"`pldistill\.([A-Za-z_]+)", DOC.read_text()))
    assert documented <= set(pldistill.__all__), documented - set(pldistill.__all__)
    for name in pldistill.__all__:
        assert getattr(pldistill, name) is not None
    with pytest.raises(AttributeError):
        pldistill.not_a_name  # noqa: B018


def test_own_loop_example_runs_and_sp_learns_the_teachers_relations():
    namespace: dict = {}
    exec(compile(_tested_example(), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    history = namespace["sp_history"]
    assert len(history) == 2 * (256 // 32)
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.8 * first, (first, last)  # the student's relations moved towards the teacher's
    assert namespace["prediction"].shape == (4,)
