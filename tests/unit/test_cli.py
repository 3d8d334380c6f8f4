"""The one program's argument handling: every subcommand takes --config/--data-dir; sim fault is routed."""

import pytest

from cockpit.cli import main
from cockpit.cli.parser import build_parser, parse_args


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "d", "status"],
        ["status", "--data-dir", "d"],
        ["halt", "--config", "c.toml", "--data-dir", "d"],
        ["run", "--headless", "--data-dir", "d"],
        ["sim", "--data-dir", "d", "--seed", "3"],
        ["tui", "--data-dir", "d"],
    ],
)
def test_common_flags_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert str(args.data_dir) == "d"


def test_sim_fault_is_routed_to_the_simulator_cli(capsys):
    assert main(["sim", "fault", "names"]) == 0
    assert "flash-crash" in capsys.readouterr().out


def test_unknown_fault_is_a_usage_error(capsys):
    assert main(["sim", "fault", "no-such-fault"]) == 2
    assert "valid names" in capsys.readouterr().err


def test_bad_port_is_refused(capsys):
    assert main(["sim", "--rest-port", "70000"]) == 2
    assert "is not a port" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--config", "c.toml", "--data-dir=d"],
        ["--confirm-live", "--data", "d"],
        ["--url", "http://a:1", "--token-file", "t", "--url", "http://b:2", "--token-file", "u"],
        ["tui", "--data-dir", "d"],
        ["status", "--json"],
        ["--data-dir", "d", "halt", "--reason", "r"],
    ],
)
def test_the_screens_command_line_is_read_as_the_full_parser_reads_it(argv):
    """``cockpit`` with no command is read without building every command's parser (decision BEN-10): the same
    values, and anything else goes to the full parser."""
    assert vars(parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--c", "x"], ["--bogus"], ["--config"], ["--url"], ["-h"]])
def test_what_the_screens_parser_cannot_read_is_said_by_the_full_one(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    said = capsys.readouterr()
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert capsys.readouterr() == said
