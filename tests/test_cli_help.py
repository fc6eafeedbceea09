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
