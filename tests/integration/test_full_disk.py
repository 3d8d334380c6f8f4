"""A full disk never takes the kill switch away from a shell (issue 25 §2): with the engine's store unable to
write, `cockpit cancel-all` from another shell still reaches the engine (by signal), `cockpit status` tells the truth
(HALTED, the store failing), and once the disk has room again what the store missed (a fill that came meanwhile)
is written without a restart. A real 2 MB tmpfs (root only; skipped otherwise)."""

from __future__ import annotations

import json
from decimal import Decimal

from crashloop import differences
from eventually import eventually
from test_bad_input import fill, small_disk
from test_cli_kill_switch import cli, settings, write_config

from engine.api import beacon
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.events import TradingState
from engine.store.db import Store


def _order(engine: Engine, price: Decimal) -> PlaceOrder:
    return PlaceOrder(
        actor="operator:key",
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=price,
        stop_loss=price * Decimal("0.5"),
    )


async def test_a_full_disk_leaves_the_kill_switch_to_a_shell_and_the_store_catches_up(sim, tmp_path):
    env = write_config(sim, tmp_path)
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        base = settings(sim, tmp_path)
        on_disk = base.model_copy(update={"engine": base.engine.model_copy(update={"data_dir": data})})
        engine = Engine(on_disk, take_signals=True)
        await engine.start()
        try:
            await eventually(engine.ready.is_set, timeout=20, message="engine connected")
            last = engine.portfolio.last["BTC/USDT"]
            near = await engine.execute(_order(engine, last * Decimal("0.999")))
            far = await engine.execute(_order(engine, last * Decimal("0.9")))
            assert near.ok and far.ok and len(sim.open_orders()) == 2
            filler = fill(disk)
            await engine.execute(_order(engine, last * Decimal("0.8")))  # cannot be recorded: refused, halts
            await eventually(lambda: engine.store_failure is not None, timeout=10, message="store failing")
            assert engine.trading_state == TradingState.HALTED and len(sim.open_orders()) == 2

            # A fill arrives while nothing can be written: the engine has it in memory only.
            sim.set_price("BTCUSDT", last * Decimal("0.99"))
            await eventually(lambda: len(sim.open_orders()) == 1, timeout=10, message="the near order filled")
            await eventually(lambda: engine.stats.current().trades_count >= 1, timeout=10, message="fill seen")

            status = await cli(tmp_path, env, "status", "--json", "--data-dir", str(data))
            assert status.returncode == 0, status.stderr
            said = json.loads(status.stdout)
            assert said["trading_state"] == "HALTED" and said.get("store_failure"), said

            # The kill switch from another shell: the engine's socket carries it, whatever the disk.
            result = await cli(tmp_path, env, "cancel-all", "--reason", "disk full", "--data-dir", str(data))
            assert result.returncode == 0, (result.stdout, result.stderr)
            assert "canceled" in result.stdout and "Traceback" not in result.stderr
            await eventually(lambda: sim.open_orders() == [], timeout=15, message="the far order cancelled")
            assert (beacon.read(data) or {}).get("store_failure")
            # With no socket either (an engine that lost it), a store that cannot take the command: by signal.
            (data / "cockpit.sock").unlink()
            result = await cli(tmp_path, env, "halt", "--reason", "disk full, no socket", "--data-dir", str(data))
            assert result.returncode == 0 and "by signal" in result.stdout, (result.stdout, result.stderr)

            filler.unlink()
            await eventually(lambda: engine.store_failure is None, timeout=15, message="the store writes again")
            store = Store.in_dir(data, readonly=True)
            try:
                await eventually(lambda: differences(sim.account(), store) == [], timeout=15, message="caught up")
                audit = [r for r in store.audit(limit=20) if r["command"] == "cancel-all"]
                assert audit and audit[0]["actor"].startswith("operator:cli "), audit
                halts = [r for r in store.audit(limit=20) if r["command"] == "halt"]
                assert halts and halts[0]["actor"] == "operator:signal", halts
            finally:
                store.close()
        finally:
            await engine.stop()
