"""Issue 22's proof: a position survives the engine's absence. The real engine process (``cockpit run --headless``)
holds a position whose stop rests at a simulator running in its own process; ``kill -9``; the price falls through
the stop; the venue sells with no engine running; the restart records the fill, the position closed and its PnL,
with no position mismatch and no halt. Before that, a crash between the entry's fill and the stop's placement: the
restart places the stop (tests/crashloop.py's processes and checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from crashloop import CRASH_MONITORS, ROOT, Session, SimProcess, check, http, wait_for

from engine.kernel.events import TradingState, utcnow

QUIET_CONFIG = """
[venue]
exchange = "binance"
rest_url = "{rest}"
ws_url = "{ws}"
timeout_ms = 3000
retry_backoff_s = [0.2, 0.5, 1.0]
poll_s = 0.5
[engine]
data_dir = "data"
# This proof is about the stop: the start after an unclean stop halting by itself (the default) is proven apart.
after_unclean_stop = "keep"
[risk]
max_position_pct = "20"
{monitors}
[alerts]
daily_summary = false
[strategy]
enabled = false
"""


def stops_at_venue(sim: SimProcess, status: str = "NEW") -> list[dict]:
    return [
        o
        for o in sim.account()["orders"]
        if o["type"] == "STOP_LOSS_LIMIT" and o["status"] == status and o["clientOrderId"].startswith("cs-")
    ]


def oco_at_venue(sim: SimProcess, status: str = "NEW") -> list[dict]:
    """The legs of the engine's protective OCOs at the venue in ``status``."""
    return [
        o
        for o in sim.account()["orders"]
        if o["orderListId"] >= 0 and o["status"] == status and o["clientOrderId"].startswith(("cs-", "ct-"))
    ]


def btc_at_venue(sim: SimProcess) -> Decimal:
    row = sim.account()["balances"]["BTC"]
    return Decimal(row["free"]) + Decimal(row["locked"])


def status(session: Session) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "cockpit.cli", "status", "--json"],
        cwd=session.work,
        env=session.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_position_survives_the_engine_being_killed(tmp_path):
    sim = SimProcess.start(22, tmp_path / "sim.log")
    session = None
    try:
        (tmp_path / "config.toml").write_text(QUIET_CONFIG.format(rest=sim.rest, ws=sim.ws, monitors=CRASH_MONITORS))
        env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
        env.update(COCKPIT_VENUE__API_KEY=sim.key, COCKPIT_VENUE__API_SECRET=sim.secret, PYTHONPATH=str(ROOT))
        session = Session(sim, tmp_path, env)
        sim.fault("price-freeze")
        last = Decimal(http("GET", f"{sim.rest}/sim/status", token=sim.token)["prices"]["BTCUSDT"])
        stop = (last * Decimal("0.97")).quantize(Decimal("0.01"))

        # 1. The entry fills, its stop cannot rest at the venue (CRIT, retried), and the engine dies right there.
        refuse = sim.fault("order-reject", type="STOP_LOSS_LIMIT")
        session.start_engine()
        order = {"symbol": "BTC/USDT", "side": "buy", "amount": "0.01", "type": "market", "price": None}
        ok, message = session.command("order", {**order, "stop_loss": str(stop)})
        assert ok, message
        wait_for(lambda: btc_at_venue(sim) > 0, 10, "the entry filled at the venue")
        wait_for(
            lambda: any(a["code"] == "STOP_NOT_AT_VENUE" for a in session.store().alerts(limit=20)),
            15,
            "CRIT STOP_NOT_AT_VENUE",
        )
        session.kill()
        sim.clear(refuse)
        assert stops_at_venue(sim) == []

        # 2. The restart places the stop: the position is held and nothing protects it yet.
        session.start_engine()
        (resting,) = wait_for(lambda: stops_at_venue(sim), 20, "the restart places the stop at the venue")
        held = btc_at_venue(sim)
        assert Decimal(resting["stopPrice"]) == stop and Decimal(resting["origQty"]) == held
        assert check(session, _Report(), 1) == []  # store and venue agree (crashloop's check)

        # 3. kill -9 with the stop resting; the price falls through it; the venue sells, no engine running.
        session.kill()
        http("POST", f"{sim.rest}/sim/price", {"symbol": "BTCUSDT", "price": str(stop * Decimal("0.998"))}, sim.token)
        wait_for(lambda: stops_at_venue(sim, "FILLED"), 10, "the venue filled the stop with no engine running")
        assert btc_at_venue(sim) < Decimal("0.00001")

        # 4. The restart records it: the fill, the position closed, the PnL; no mismatch, no halt.
        session.start_engine()
        assert check(session, _Report(), 2) == []
        (filled,) = stops_at_venue(sim, "FILLED")
        stored = {o.client_id: o for o in session.store().orders()}
        assert stored[filled["clientOrderId"]].status.value == "FILLED"
        assert [f for f in session.store().fills() if f["client_id"] == filled["clientOrderId"]]
        seen = status(session)
        assert seen["trading_state"] == TradingState.ACTIVE.value and seen["position_mismatch"] == []
        assert not any(p["symbol"] == "BTC/USDT" for p in seen["positions"])
        assert Decimal(seen["today"]["net_pnl"]) < 0 and seen["today"]["losing_trades"] == 1
        codes = {a["code"] for a in session.store().alerts(limit=200)}
        assert not codes & {"POSITION_MISMATCH", "TRADING_HALTED", "STOP_LOSS"}

        # 5. An entry with a take-profit: its stop and take-profit rest as one OCO. kill -9; the price rises through
        # the take-profit; the venue sells it and expires the stop leg, no engine running.
        now = Decimal(http("GET", f"{sim.rest}/sim/status", token=sim.token)["prices"]["BTCUSDT"])
        stop, take_profit = (
            (now * Decimal("0.97")).quantize(Decimal("0.01")),
            (now * Decimal("1.03")).quantize(Decimal("0.01")),
        )
        entry = {**order, "stop_loss": str(stop), "take_profit": str(take_profit)}
        ok, message = session.command("order", entry)
        assert ok, message
        wait_for(lambda: len(oco_at_venue(sim)) == 2, 15, "the stop and the take-profit rest as one OCO")
        session.kill()
        http("POST", f"{sim.rest}/sim/price", {"symbol": "BTCUSDT", "price": str(take_profit + 1)}, sim.token)
        wait_for(lambda: oco_at_venue(sim, "FILLED"), 10, "the venue filled the take-profit with no engine running")
        assert btc_at_venue(sim) < Decimal("0.00001")

        # 6. The restart records it: the fill, the position closed with a profit; no mismatch, no halt, no stop
        # called missing (its leg expired with the list).
        session.start_engine()
        assert check(session, _Report(), 3) == []
        (profit_leg,) = oco_at_venue(sim, "FILLED")
        (stop_leg,) = oco_at_venue(sim, "EXPIRED")
        stored = {o.client_id: o for o in session.store().orders()}
        assert stored[profit_leg["clientOrderId"]].status.value == "FILLED"
        assert stored[stop_leg["clientOrderId"]].status.value == "EXPIRED"
        assert [f for f in session.store().fills() if f["client_id"] == profit_leg["clientOrderId"]]
        store = session.store()  # check() above: no mismatch, balances explained by the fills, protections right
        try:
            assert store.trading_state()[0] == TradingState.ACTIVE
            assert store.load_day(utcnow().date().isoformat())["winning_trades"] == 1
            assert "BTC/USDT" not in (store.load_json("take_profits") or {})
            codes = {a["code"] for a in store.alerts(limit=200)}
        finally:
            store.close()
        assert not codes & {"POSITION_MISMATCH", "TRADING_HALTED", "STOP_MISSING_AT_VENUE"}
    finally:
        if session is not None and session.engine is not None and session.engine.poll() is None:
            session.kill()
        sim.stop()


class _Report:
    """What crashloop's ``check`` counts (here only its answer matters)."""

    checks = 0
