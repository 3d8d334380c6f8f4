"""An operator's odd number is a refusal that names the field: never an arithmetic error, never a CRIT that pages
people (issue 25 §5). Driven as an operator does: `cockpit order` from another shell to a running engine."""

from __future__ import annotations

from eventually import eventually
from test_cli_kill_switch import cli, settings, write_config

from engine.core.engine import Engine
from engine.kernel.events import Severity


async def test_huge_negative_and_zero_numbers_are_refused_by_name_with_no_crit(sim, tmp_path):
    env = write_config(sim, tmp_path)
    engine = Engine(settings(sim, tmp_path))
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        cases = [
            (["1e309", "--stop-loss", "100"], "amount 1E+309 is out of range"),
            (["0.001", "--price", "-5", "--stop-loss", "1"], "price must be positive"),
            (["0.001", "--price", "1e400", "--stop-loss", "1"], "price 1E+400 is out of range"),
            (["0.001", "--stop-loss", "-1"], "stop-loss must be positive"),
        ]
        for extra, words in cases:
            result = await cli(tmp_path, env, "order", "buy", "BTC/USDT", *extra, "--data-dir", str(tmp_path / "data"))
            assert result.returncode == 1, (extra, result.stdout, result.stderr)
            assert words in result.stdout + result.stderr, (extra, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr and "InvalidOperation" not in result.stdout + result.stderr
        crit = [a for a in engine.alert_book.recent if a.severity == Severity.CRIT]
        assert crit == [], [a.code for a in crit]
        assert sim.open_orders() == []
    finally:
        await engine.stop()
