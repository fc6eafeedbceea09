"""One error base class: every error pldistill raises for the user is a PldistillError, and the command
line turns any of them into exit status 2 and one ``pldistill: error: …`` line."""

import importlib
import inspect
import pathlib
import pkgutil

import pytest

import pldistill
from pldistill import cli
from pldistill.errors import PldistillError


def library_error_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(pldistill.__path__, "pldistill."):
        if info.name.endswith("__main__"):  # running it is the command line itself
            continue
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == module.__name__]
    return sorted(set(found), key=lambda c: (c.__module__, c.__qualname__))


ERRORS = library_error_classes()


def test_the_scan_finds_the_known_errors():
    names = {cls.__name__ for cls in ERRORS}
    assert {"RecipeError", "CheckpointError", "DistributedError", "ExportError", "WeightsError", "ResumeError",
            "PackedDatasetError", "CompositionError", "UnknownModelError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_library_error_is_a_pldistill_error(cls):
    assert issubclass(cls, PldistillError), f"{cls.__module__}.{cls.__qualname__} should subclass PldistillError"


def test_builtin_second_bases_are_kept_for_except_valueerror_callers():
    from pldistill.checkpoint import CheckpointError
    from pldistill.distributed import DistributedError
    from pldistill.recipe import RecipeError
    from pldistill.recipe_compose import CompositionError

    assert issubclass(RecipeError, ValueError) and issubclass(CompositionError, ValueError)
    assert issubclass(CheckpointError, RuntimeError) and issubclass(DistributedError, RuntimeError)


@pytest.mark.parametrize("cls", [PldistillError, *ERRORS], ids=lambda c: c.__qualname__)
def test_the_command_line_prints_one_line_and_exits_2(cls, monkeypatch, capsys, tmp_path):
    def fail(args):
        raise cls("something the user can fix")

    monkeypatch.setattr(cli, "_report", fail)
    assert cli.main(["report", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == "pldistill: error: something the user can fix\n" and captured.out == ""


def test_a_bad_override_through_the_real_command_is_one_line(tmp_path, capsys):
    recipe = pathlib.Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml"
    assert cli.main(["run", str(recipe), "schedule.epochs=-1", "--quiet", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pldistill: error: ") and err.count("\n") == 1, err
