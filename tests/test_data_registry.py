"""Data kinds declare themselves: the registry, not a list, decides what a recipe's ``data`` may be."""

import ast
import pkgutil
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import pytest

import pldistill.data
from pldistill.data.registry import data_kinds, data_union, kind_name, kinds_with, register_data_kind
from pldistill.data.section import DataSection
from pldistill.recipe import Recipe, RecipeError, parse_recipe

DATA_DIR = Path(pldistill.data.__file__).parent


def union_members(annotation) -> dict[str, type]:
    """kind name → class of a union, bare (a pydantic field's annotation) or Annotated with its discriminator."""
    union = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    return {kind_name(cls): cls for cls in get_args(union)}


def kind_literals_in_source() -> dict[str, str]:
    """Every ``kind: Literal["<name>"]`` written in a module of pldistill/data/ → that module's name."""
    found = {}
    for module in pkgutil.iter_modules([str(DATA_DIR)]):
        tree = ast.parse((DATA_DIR / f"{module.name}.py").read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "kind"
                    and isinstance(node.annotation, ast.Subscript)
                    and isinstance(node.annotation.slice, ast.Constant)):
                found[node.annotation.slice.value] = module.name
    return found


def test_the_recipe_data_union_is_exactly_the_registered_kinds():
    kinds = data_kinds()
    assert union_members(Recipe.model_fields["data"].annotation) == kinds
    assert Recipe.model_fields["data"].discriminator == "kind"
    assert union_members(data_union()) == kinds
    assert all(issubclass(cls, DataSection) and kind_name(cls) == name for name, cls in kinds.items())


def test_the_scan_finds_every_kind_defined_in_the_package_and_each_lives_beside_its_adapter():
    written = kind_literals_in_source()
    assert set(written) == set(data_kinds())
    for name, cls in data_kinds().items():
        assert cls.__module__ == f"pldistill.data.{written[name]}", name


@pytest.mark.parametrize("owner, field, capability", [
    ("class_paired", "primary", "class_pairable"),
    ("class_paired", "partner", "class_pairable"),
    ("resolution_pairs", "source", "resolution_source"),
])
def test_nested_unions_hold_exactly_the_kinds_with_the_capability(owner, field, capability):
    nested = union_members(data_kinds()[owner].model_fields[field].annotation)
    declared = {name for name, cls in data_kinds().items() if getattr(cls, capability)}
    assert set(nested) == set(kinds_with(capability)) == declared
    assert declared  # the capability is in use


def test_the_capabilities_are_the_ones_each_kind_supported_before_the_registry():
    assert set(kinds_with("class_pairable")) == {"image_classes", "speech_digits", "dtd"}
    assert set(kinds_with("resolution_source")) == {"synthetic_shapes", "nyu_depth_v2", "folders", "packed",
                                                    "image_classes", "dtd", "sunrgbd"}


def test_an_unknown_capability_is_an_error_naming_it():
    with pytest.raises(KeyError, match="'pairable' is not a data-kind capability"):
        kinds_with("pairable")


def test_an_unknown_data_kind_is_a_one_line_error_listing_the_known_kinds():
    with pytest.raises(RecipeError) as err:
        parse_recipe({"name": "x", "data": {"kind": "nyu"}, "teacher": {"model": "resnet18", "modality": "depth"},
                      "student": {"model": "resnet18", "modality": "rgb"},
                      "distill": {"losses": [{"name": "kd", "weight": 1.0}]},
                      "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.001}}, "r.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("r.yaml: data.kind: 'nyu' is not a data kind")
    assert all(repr(name) in message for name in data_kinds())


def test_a_missing_data_kind_names_the_key_and_the_kinds():
    with pytest.raises(RecipeError, match=r"data\.kind: required key is missing; use one of 'class_paired'"):
        parse_recipe({"name": "x", "data": {"image_size": 32}}, "r.yaml")


def test_a_nested_kind_without_the_capability_lists_only_the_kinds_that_fit():
    with pytest.raises(RecipeError) as err:
        parse_recipe({"name": "x", "data": {"kind": "resolution_pairs",
                                            "source": {"kind": "speech_digits", "root": "x"}}}, "r.yaml")
    line = next(m for m in str(err.value).splitlines() if "data.source.kind" in m)
    assert all(repr(name) in line for name in kinds_with("resolution_source"))
    assert "'speech_digits'," not in line and "'class_paired'" not in line


def test_a_kind_name_is_registered_once():
    existing = data_kinds()["packed"]

    class Impostor(DataSection):
        kind: Literal["packed"]

    with pytest.raises(TypeError, match="'packed' is defined twice"):
        register_data_kind(Impostor)
    assert data_kinds()["packed"] is existing


def data_imports() -> dict[str, set[str]]:
    """Module of pldistill/data/ → the pldistill modules it imports, anywhere in it (lazy imports too)."""
    graph = {}
    for path in DATA_DIR.glob("*.py"):
        name = "pldistill.data" if path.stem == "__init__" else f"pldistill.data.{path.stem}"
        package = "pldistill.data".split(".")
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                graph[name].add(f"{base}.{node.module}" if node.module else base)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                graph[name] |= {n for n in names if n and n.startswith("pldistill")}
    return graph


def test_data_modules_do_not_import_the_recipe():
    for module, imported in data_imports().items():
        assert not any(m.startswith("pldistill.recipe") for m in imported), module


def test_the_data_modules_import_each_other_without_cycles():
    graph = data_imports()
    done, on_path = set(), []

    def visit(module):
        if module in on_path:
            raise AssertionError(f"import cycle: {' → '.join(on_path[on_path.index(module):] + [module])}")
        if module in done or module not in graph:
            return
        on_path.append(module)
        for imported in graph[module] - {"pldistill.data"}:  # every module imports its package first
            visit(imported)
        on_path.pop()
        done.add(module)

    for module in graph:
        visit(module)
