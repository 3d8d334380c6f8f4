"""``cockpit preflight``, ``validate`` and ``report daily`` on bad input: what is wrong and what to do, exit 2, never
a traceback."""

from __future__ import annotations

import pytest

from cockpit.cli import main
from cockpit.gate_commands import parse_duration


def test_durations_read_as_an_operator_writes_them():
    assert parse_duration("48h") == 48 * 3600
    assert parse_duration("90m") == 5400 and parse_duration("2d") == 172_800 and parse_duration("3600s") == 3600
    assert parse_duration("1.5") == 5400  # hours by default
    for bad in ("abc", "-2h", "0h", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["validate", "--duration", "two days"],
            "--duration 'two days' is not a duration: write 48h, 90m, 2d or 3600s",
        ),
        (["validate", "--speed", "0"], "--speed must be positive"),
        (["validate", "--replay", "BTCUSDT"], "--replay 'BTCUSDT' must look like BTCUSDT=prices.csv"),
        (["report", "daily", "--date", "2025-13-01"], "--date '2025-13-01' is not a day: write YYYY-MM-DD (UTC)"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(tmp_path, capsys, args, says):
    assert main([*args, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_validation_of_symbols_the_simulator_does_not_list_is_refused(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[venue]\nsymbols = ["BTC/USDT", "SOL/USDT"]\n')
    assert main(["validate", "--duration", "1h", "--config", str(config), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "['SOL/USDT'] cannot be validated on it" in err


def test_a_daily_report_of_a_directory_where_nothing_ran(tmp_path, capsys):
    assert main(["report", "daily", "--data-dir", str(tmp_path)]) == 1
    assert "nothing has run there" in capsys.readouterr().err
