"""Issue 22's proof: a position survives the engine's absence. The real engine process (``cockpit run --headless``)
holds a position whose stop rests at a simulator running in its own process; ``kill -9``; the price falls through
the stop; the venue sells with no engine running; the restart records the fill, the position closed and its PnL,
with no position mismatch and no halt. Beside it a second position whose entry gave a take-profit: its stop and
take-profit rest as one OCO, the price rises through the take-profit with no engine running, and the restart records
that fill, its profit and the stop leg the venue expired. Before that, a crash between the entries' fills and the
protections' placement: the restart places them (tests/crashloop.py's processes and checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from crashloop import CRASH_MONITORS, ROOT, VENUE_TOML, Session, SimProcess, check, http, wait_for

from engine.kernel.events import TradingState

QUIET_CONFIG = (
    VENUE_TOML
    + """poll_s = 0.5
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
)


def stops_at_venue(sim: SimProcess, status: str = "NEW", market: str = "") -> list[dict]:
    """The engine's lone protective stops at the venue in ``status`` (an OCO's stop leg is not counted here)."""
    return [
        o
        for o in sim.account()["orders"]
        if o["type"] == "STOP_LOSS_LIMIT"
        and o["status"] == status
        and o["clientOrderId"].startswith("cs-")
        and o["orderListId"] < 0
        and o["symbol"] == (market or o["symbol"])
    ]


def oco_at_venue(sim: SimProcess, status: str = "NEW") -> list[dict]:
    """The legs of the engine's protective OCOs at the venue in ``status``."""
    return [
        o
        for o in sim.account()["orders"]
        if o["orderListId"] >= 0 and o["status"] == status and o["clientOrderId"].startswith(("cs-", "ct-"))
    ]


def held_at_venue(sim: SimProcess, asset: str) -> Decimal:
    row = sim.account()["balances"].get(asset, {"free": "0", "locked": "0"})
    return Decimal(row["free"]) + Decimal(row["locked"])


def btc_at_venue(sim: SimProcess) -> Decimal:
    return held_at_venue(sim, "BTC")


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
        prices = http("GET", f"{sim.rest}/sim/status", token=sim.token)["prices"]
        stop = (Decimal(prices["BTCUSDT"]) * Decimal("0.97")).quantize(Decimal("0.01"))
        # ETH's entry carries a take-profit: its stop and take-profit rest as one OCO.
        eth_stop = (Decimal(prices["ETHUSDT"]) * Decimal("0.97")).quantize(Decimal("0.01"))
        eth_take_profit = (Decimal(prices["ETHUSDT"]) * Decimal("1.03")).quantize(Decimal("0.01"))

        # 1. The entries fill, their stops cannot rest at the venue (CRIT, retried), and the engine dies right there.
        refuse = sim.fault("order-reject", type="STOP_LOSS_LIMIT")
        session.start_engine()
        order = {"symbol": "BTC/USDT", "side": "buy", "amount": "0.01", "type": "market", "price": None}
        ok, message = session.command("order", {**order, "stop_loss": str(stop)})
        assert ok, message
        eth = {**order, "symbol": "ETH/USDT", "amount": "0.2"}
        ok, message = session.command("order", {**eth, "stop_loss": str(eth_stop), "take_profit": str(eth_take_profit)})
        assert ok, message
        wait_for(lambda: btc_at_venue(sim) > 0 and held_at_venue(sim, "ETH") > 0, 10, "the entries filled")
        wait_for(
            lambda: any(a["code"] == "STOP_NOT_AT_VENUE" for a in session.store().alerts(limit=20)),
            15,
            "CRIT STOP_NOT_AT_VENUE",
        )
        session.kill()
        sim.clear(refuse)
        assert stops_at_venue(sim) == []

        # 2. The restart places the stop and the OCO: the positions are held and nothing protects them yet.
        session.start_engine()
        (resting,) = wait_for(lambda: stops_at_venue(sim, market="BTCUSDT"), 20, "the restart places the stop")
        held = btc_at_venue(sim)
        assert Decimal(resting["stopPrice"]) == stop and Decimal(resting["origQty"]) == held
        legs = wait_for(lambda: len(oco_at_venue(sim)) == 2 and oco_at_venue(sim), 20, "the restart places the OCO")
        assert {o["type"] for o in legs} == {"STOP_LOSS_LIMIT", "LIMIT_MAKER"} and legs[0]["symbol"] == "ETHUSDT"
        assert check(session, _Report(), 1) == []  # store and venue agree (crashloop's check), protections right

        # 3. kill -9 with them resting; BTC falls through its stop and ETH rises through its take-profit; the venue
        # sells both (and expires the OCO's stop leg), no engine running.
        session.kill()
        http("POST", f"{sim.rest}/sim/price", {"symbol": "BTCUSDT", "price": str(stop * Decimal("0.998"))}, sim.token)
        http("POST", f"{sim.rest}/sim/price", {"symbol": "ETHUSDT", "price": str(eth_take_profit + 1)}, sim.token)
        wait_for(lambda: stops_at_venue(sim, "FILLED"), 10, "the venue filled the stop with no engine running")
        wait_for(lambda: oco_at_venue(sim, "FILLED"), 10, "the venue filled the take-profit with no engine running")
        assert btc_at_venue(sim) < Decimal("0.00001") and held_at_venue(sim, "ETH") < Decimal("0.0001")

        # 4. The restart records them: the fills, the positions closed, the PnL of each; no mismatch, no halt, no
        # stop called missing (the OCO's stop leg expired with its list).
        session.start_engine()
        assert check(session, _Report(), 2) == []
        (filled,) = stops_at_venue(sim, "FILLED")
        (profit_leg,) = oco_at_venue(sim, "FILLED")
        (stop_leg,) = oco_at_venue(sim, "EXPIRED")
        stored = {o.client_id: o for o in session.store().orders()}
        assert stored[filled["clientOrderId"]].status.value == "FILLED"
        assert stored[profit_leg["clientOrderId"]].status.value == "FILLED"
        assert stored[stop_leg["clientOrderId"]].status.value == "EXPIRED"
        fills = {f["client_id"] for f in session.store().fills()}
        assert filled["clientOrderId"] in fills and profit_leg["clientOrderId"] in fills
        seen = status(session)
        assert seen["trading_state"] == TradingState.ACTIVE.value and seen["position_mismatch"] == []
        assert seen["positions"] == [] and seen["stops_suspended"] is None
        assert seen["today"]["losing_trades"] == 1 and seen["today"]["winning_trades"] == 1
        codes = {a["code"] for a in session.store().alerts(limit=200)}
        assert not codes & {"POSITION_MISMATCH", "TRADING_HALTED", "STOP_LOSS", "STOP_MISSING_AT_VENUE"}
    finally:
        if session is not None and session.engine is not None and session.engine.poll() is None:
            session.kill()
        sim.stop()


class _Report:
    """What crashloop's ``check`` counts (here only its answer matters)."""

    checks = 0
