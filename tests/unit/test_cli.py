"""The one program's argument handling: every subcommand takes --config/--data-dir; sim fault is routed."""

import pytest

from cockpit.cli import build_parser, main


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
