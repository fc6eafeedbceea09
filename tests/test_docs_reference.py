"""The generated reference pages in docs/reference/ match what docs/generate_reference.py writes now."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_reference", ROOT / "docs" / "generate_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_pages_are_current():
    pages = _generator().generate()
    assert "recipe.md" in pages
    for name, text in pages.items():
        path = ROOT / "docs" / "reference" / name
        assert path.exists(), f"docs/reference/{name} is missing: run `make docs-reference`"
        assert path.read_text() == text, (
            f"docs/reference/{name} differs from the recipe schema: run `make docs-reference` and commit it"
        )


def test_recipe_reference_lists_every_data_kind():
    generator = _generator()
    text = generator.generate()["recipe.md"]
    kinds = generator.data_kinds()
    assert len(kinds) >= 2
    for kind in kinds:
        assert f"### `kind: {generator._kind_of(kind)}`" in text
    for key in ("distill.losses.N.weight", "schedule.batch_size", "data.augment.hflip"):
        assert f"`{key}`" in text
