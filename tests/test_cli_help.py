"""The command line explains itself: every command listed, each with a worked example."""

import pytest

from pldistill.cli import build_parser, main

COMMANDS = ["run", "sweep", "compare", "check", "report", "pack", "export", "predict"]


def test_top_level_help_lists_every_command_with_an_example(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command} " in text or f"    {command}\n" in text, command
        assert f"pldistill {command} " in text, f"no example for {command}"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert "example" in text and f"pldistill {command}" in text


_IMPORTED = """
import sys
from pldistill.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in ("torch", "timm", "albumentations", "wandb", "matplotlib") if m in sys.modules))
"""


def _imported_by(*argv, cwd=None) -> list[str]:
    import ast
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _IMPORTED, *argv], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_help_and_a_bad_recipe_do_not_load_the_training_code(tmp_path):
    """--help imports nothing heavy; a recipe refused by its schema is refused before timm, albumentations,
    W&B or matplotlib load (torch still loads: the loss and data registries are built from torch modules)."""
    assert _imported_by("--help") == []
    (tmp_path / "bad.yaml").write_text("name: x\nschedule: {epochz: 3}\n")
    assert _imported_by("run", str(tmp_path / "bad.yaml")) == ["torch"]
