"""The kill switch through the engine's one command path, against its floor, with the simulator in a process of its
own (as a real venue is: the headline) and, for comparison, inside the engine's process (as ``cockpit`` runs its
built-in paper venue).

- halt: ``Halt`` recorded (state changed, stored, audited).
- cancel-all, ``--orders`` resting orders on 1 symbol: from the command to its answer, which comes after the venue
  listed no order left (``done``), and to the moment the simulator holds no open order (``venue_clear``, marked in
  the simulator's process by one look at its open-order table per order event).
- cancel-all on an idle engine, 2 symbols × ``--orders``/2: the same after a routine venue-wide open-orders listing
  (weight 80) and ``--idle-s`` of idle time.
- close-all, 2 positions (BTC and ETH bought at market): from the command to its answer (decision BEN-11: the
  sells' fills judge what is left; the balances are read back after the answer).
- ``--tiers close_stops`` (alone: its engine places protective stops at the venue, as shipped): close-all of 2
  positions each with its stop resting, against a floor that cancels the two stops too (below).

The floors run in a process with no engine in it (``bench/floor.py``), alternating with the engine's runs: a bare
ccxt client's ``DELETE openOrders`` of the same number of its own orders (one per symbol, in parallel) followed by
the venue-wide listing that confirms none is left, the point where the engine answers (``deletes`` alone is given
too); for close-all, a balance listing plus two market sells (and the same calls close-all makes, as before); with
stops, the two stops' ``DELETE openOrders`` beside the balance listing, then the two market sells.

Where the engine records them (``KillSwitch.marks``), the JSON holds the profile per phase, in ms from the command:
halt committed, first DELETE leaving, close-all's sells written (``sells_written``), cancels answered, reports applied,
listing confirmed, answer, audit stored.

Each ratio is judged against its goal with its spread: "not decided" when the spread is wider than its distance to the
goal. The engine's run and its floor's run alternate, so the p50 goals are judged on the pairs' own ratios
(``benchlib.judge_paired``: the load of the moment weighs on both halves of a pair), the unpaired ratio of medians
(``benchlib.judge``) beside them; p99 is judged unpaired.

Run: .venv/bin/python bench/kill_switch.py [--runs N] [--orders K] [--idle-s S] [--venues process,inline]
[--tiers cancel,idle,close | close_stops]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

from benchlib import Child, VenueAddress, judge, judge_paired, sim_settings, started, summary

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CloseAll, Halt, PlaceOrder, Resume

PARAMS = {"runs": 20, "orders": 100, "idle_s": 0.5, "venues": "process,inline", "tiers": "cancel,idle,close"}
QUICK = {"runs": 1, "orders": 4, "idle_s": 0.0, "venues": "process,inline", "tiers": "cancel,idle,close"}
SYMBOLS = ("BTC/USDT", "ETH/USDT")
GOALS = {"cancel_p50": 1.5, "cancel_p99": 3.0, "close_p50": 1.5}
PHASES = (
    "halt_committed",
    "first_delete",
    "cancels_answered",
    "reports_applied",
    "listing_confirmed",
    "settled",
    "sells_leaving",
    "sells_written",
    "sells_answered",
    "sells_answered_after_cancels",
    "venue_done",
    "halt_synced",
    "answered",
)


async def place(engine: Engine, symbol: str, n: int) -> None:
    last = engine.portfolio.last[symbol]
    amount = Decimal("0.0002") if symbol.startswith("BTC") else Decimal("0.005")
    for i in range(n):
        price = last * (Decimal("0.90") - Decimal(i) / 2000)
        result = await engine.execute(
            PlaceOrder(
                symbol=symbol,
                side="buy",
                type="limit",
                amount=amount,
                price=price,
                stop_loss=price * Decimal("0.9"),
                reason="bench",
            )
        )
        assert result.ok, result.message


async def buy_two(engine: Engine) -> None:
    await engine.execute(Resume(reason="bench"))
    for symbol, amount in (("BTC/USDT", "0.002"), ("ETH/USDT", "0.05")):
        last = engine.portfolio.last[symbol]
        result = await engine.execute(
            PlaceOrder(
                symbol=symbol,
                side="buy",
                type="market",
                amount=Decimal(amount),
                stop_loss=last * Decimal("0.5"),
                reason="bench",
            )
        )
        assert result.ok, result.message
    await asyncio.sleep(0.05)  # let the balance stream settle before the clock starts


async def stops_resting(engine: Engine) -> None:
    """Until both positions' protective stops rest at the venue (acknowledged), as they do between trades."""
    for _ in range(500):
        stops = [o for o in engine.tracker.open_orders() if o.is_protective_stop and o.venue_id is not None]
        if {o.symbol for o in stops} == set(SYMBOLS):
            await asyncio.sleep(0.05)  # the stream's balance (locked by the stops) settles before the clock starts
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the protective stops were not placed at the venue")


class InlineVenue:
    """The simulator inside this process (``cockpit``'s built-in paper venue), with the same "venue clear" mark."""

    def __init__(self) -> None:
        from engine.sim import Simulator

        self.sim = Simulator(seed=1, orders_per_10s=1_000_000)
        self.mark: dict[str, float] = {}

    async def start(self) -> VenueAddress:
        await self.sim.start()
        opened = self.sim.engine._open  # the matching engine's open orders (read only): one look per event

        def listener(event: Any) -> None:
            if not opened and "clear" not in self.mark and type(event).__name__ == "OrderUpdate":
                self.mark["clear"] = time.perf_counter()

        self.sim.engine.listeners.append(listener)
        return VenueAddress(self.sim.rest_url, self.sim.ws_url, self.sim.api_key, self.sim.api_secret)

    async def arm(self) -> None:
        self.mark.clear()

    async def clear(self) -> tuple[float | None, int]:
        return self.mark.get("clear"), len(self.sim.engine._open)

    async def stop(self) -> None:
        await self.sim.stop()


class ProcessVenue:
    """The simulator in its own process (``bench/simproc.py``)."""

    def __init__(self) -> None:
        self.child = Child("simproc.py", "1")

    async def start(self) -> VenueAddress:
        return VenueAddress(**await self.child.start())

    async def arm(self) -> None:
        await self.child.ask(op="arm")

    async def clear(self) -> tuple[float | None, int]:
        answer = await self.child.ask(op="clear")
        return answer["clear"], answer["open"]

    async def stop(self) -> None:
        await self.child.stop()


async def timed(engine: Engine, command: Any, out: dict[str, list[float]], name: str) -> Any:
    """Run ``command``; record its time and, where the engine marks them, its phases (ms from the command)."""
    marks: dict[str, float] | None = getattr(engine.kill_switch, "marks", None)  # None: an engine before issue 27
    t = time.perf_counter()
    result = await engine.execute(command)
    done = time.perf_counter()
    out[name].append((done - t) * 1000)
    if marks:
        for phase in PHASES:
            if phase in marks:
                out.setdefault(f"{name}.{phase}", []).append((marks[phase] - t) * 1000)
        if "answered" in marks:
            out.setdefault(f"{name}.audit_stored", []).append((done - t) * 1000)
    return result, t


async def one_venue(where: str, runs: int, orders: int, idle_s: float, tiers: str) -> dict[str, Any]:
    venue: InlineVenue | ProcessVenue = InlineVenue() if where == "inline" else ProcessVenue()
    address = await venue.start()
    # ``close_stops``: the positions carry their protective stops at the venue (the shipped configuration); the other
    # tiers time against bare ccxt orders on the same account, which a resting stop would lock (``sim_settings``).
    stops = "close_stops" in tiers.split(",")
    assert not stops or tiers == "close_stops", "close_stops runs alone (an engine with stops at the venue)"
    settings = sim_settings(address, stops_at_venue=stops)
    # Reconciliation hourly, so the floor client's own orders are not adopted meanwhile.
    settings = settings.model_copy(update={"monitors": settings.monitors.model_copy(update={"reconcile_s": 3600.0})})
    engine = await started(Engine(settings))
    floor = Child("floor.py", env={"BENCH_VENUE": json.dumps(address.keys())})
    await floor.start()
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "halt",
            "cancel",
            "cancel_clear",
            "floor_cancel_deletes",
            "floor_cancel",
            "idle",
            "idle_clear",
            "floor_idle_deletes",
            "floor_idle",
            "close",
            "floor_close",
            "floor_close_same_calls",
            "close_stops",
            "floor_close_stops",
        )
    }
    try:
        for _ in range(runs):
            if "cancel" in tiers:  # cancel-all, 1 symbol
                await engine.execute(Resume(reason="bench"))
                await place(engine, "BTC/USDT", orders)
                await timed(engine, Halt(reason="bench"), out, "halt")
                await venue.arm()
                result, t = await timed(engine, CancelAll(reason="bench"), out, "cancel")
                clear, left = await venue.clear()
                assert result.ok and left == 0 and clear is not None, result.message
                out["cancel_clear"].append((clear - t) * 1000)
                answer = await floor.ask(op="cancel", symbols=["BTC/USDT"], orders=orders)
                assert answer["left"] == 0, answer
                out["floor_cancel_deletes"].append(answer["deletes"])
                out["floor_cancel"].append(answer["confirmed"])
            if "idle" in tiers:  # idle engine, 2 symbols
                await engine.execute(Resume(reason="bench"))
                for symbol in SYMBOLS:
                    await place(engine, symbol, orders // 2)
                await engine.link.require().fetch_open_orders(None)  # a routine venue-wide listing (weight 80)
                await asyncio.sleep(idle_s)
                await venue.arm()
                result, t = await timed(engine, CancelAll(reason="bench"), out, "idle")
                clear, left = await venue.clear()
                assert result.ok and left == 0 and clear is not None, result.message
                out["idle_clear"].append((clear - t) * 1000)
                answer = await floor.ask(op="cancel", symbols=list(SYMBOLS), orders=orders)
                assert answer["left"] == 0, answer
                out["floor_idle_deletes"].append(answer["deletes"])
                out["floor_idle"].append(answer["confirmed"])
            if stops:  # close-all, 2 positions, each with its protective stop resting at the venue
                await buy_two(engine)
                await stops_resting(engine)
                result, _ = await timed(engine, CloseAll(reason="bench"), out, "close_stops")
                assert result.ok and "closed 2 position(s)" in result.message, result.message
                answer = await floor.ask(op="close_stops")
                out["floor_close_stops"].append(answer["cancels_balances_and_sells"])
            if "close" in tiers.split(","):  # close-all, 2 positions
                await buy_two(engine)
                result, _ = await timed(engine, CloseAll(reason="bench"), out, "close")
                assert result.ok and "closed 2 position(s)" in result.message, result.message
                answer = await floor.ask(op="close")
                out["floor_close"].append(answer["listing_and_sells"])
                out["floor_close_same_calls"].append(answer["same_calls"])
    finally:
        await floor.stop()
        await engine.stop()
        await venue.stop()
    s = {k: summary(v) for k, v in out.items()}

    def phases(name: str) -> dict[str, Any]:
        return {p: s[f"{name}.{p}"] for p in (*PHASES, "audit_stored") if f"{name}.{p}" in s}

    result: dict[str, Any] = {"halt": s["halt"]}
    if "cancel" in tiers:
        result["cancel_all_1_symbol"] = {
            "done": s["cancel"],
            "venue_clear": s["cancel_clear"],
            "phases": phases("cancel"),
            "floor_bare_ccxt_delete_and_listing": s["floor_cancel"],
            "floor_bare_ccxt_delete": s["floor_cancel_deletes"],
            "p50": judge_paired(out["cancel"], out["floor_cancel"], GOALS["cancel_p50"]),
            "p50_unpaired": judge(out["cancel"], out["floor_cancel"], GOALS["cancel_p50"]),
            "p99": judge(out["cancel"], out["floor_cancel"], GOALS["cancel_p99"], "p99"),
        }
    if "idle" in tiers:
        result["cancel_all_idle_2_symbols"] = {
            "done": s["idle"],
            "venue_clear": s["idle_clear"],
            "phases": phases("idle"),
            "floor_bare_ccxt_2_deletes_and_listing": s["floor_idle"],
            "floor_bare_ccxt_2_deletes": s["floor_idle_deletes"],
            "p50": judge_paired(out["idle"], out["floor_idle"], GOALS["cancel_p50"]),
            "p50_unpaired": judge(out["idle"], out["floor_idle"], GOALS["cancel_p50"]),
            "p99": judge(out["idle"], out["floor_idle"], GOALS["cancel_p99"], "p99"),
        }
    if stops:
        result["close_all_2_positions_with_stops"] = {
            "done": s["close_stops"],
            "phases": phases("close_stops"),
            "floor_bare_ccxt_stop_cancels_and_balances_then_2_sells": s["floor_close_stops"],
            "p50": judge_paired(out["close_stops"], out["floor_close_stops"], GOALS["close_p50"]),
            "p50_unpaired": judge(out["close_stops"], out["floor_close_stops"], GOALS["close_p50"]),
        }
    if "close" in tiers.split(","):
        result["close_all_2_positions"] = {
            "done": s["close"],
            "phases": phases("close"),
            "floor_bare_ccxt_listing_and_2_sells": s["floor_close"],
            "floor_bare_ccxt_same_calls": s["floor_close_same_calls"],
            "p50": judge_paired(out["close"], out["floor_close"], GOALS["close_p50"]),
            "p50_unpaired": judge(out["close"], out["floor_close"], GOALS["close_p50"]),
            "p50_vs_same_calls": judge(out["close"], out["floor_close_same_calls"], GOALS["close_p50"]),
        }
    return result


async def measure(runs: int, orders: int, idle_s: float, venues: str, tiers: str) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "kill_switch", "runs": runs, "orders": orders, "unit": "ms"}
    for where in venues.split(","):
        result[f"venue_{where}"] = await one_venue(where, runs, orders, idle_s, tiers)
    headline = result.get("venue_process") or result[f"venue_{venues.split(',')[0]}"]
    goals = {
        "cancel-all 1 symbol p50": ("cancel_all_1_symbol", "p50"),
        "cancel-all 1 symbol p99": ("cancel_all_1_symbol", "p99"),
        "cancel-all idle 2 symbols p50": ("cancel_all_idle_2_symbols", "p50"),
        "cancel-all idle 2 symbols p99": ("cancel_all_idle_2_symbols", "p99"),
        "close-all 2 positions p50": ("close_all_2_positions", "p50"),
        "close-all 2 positions with their stops p50": ("close_all_2_positions_with_stops", "p50"),
    }
    result["goals"] = {name: headline[key][p] for name, (key, p) in goals.items() if key in headline}
    return result


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
