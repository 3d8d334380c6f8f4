"""What faults do when they start and end, for those that act on the simulator rather than on one request.

Request-level faults (REST statuses, latency, hangs, rejects, failing cancels) are applied where the request is
served; this module holds the one-shot and timed effects: websocket drops, price moves, foreign fills, balance
changes, clock skew and key revocation.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import errors
from .faults import Fault, FaultError

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger(__name__)

# Price moves are drawn in steps this long (seconds of wall time).
MOVE_STEP = 0.05


class FaultEffects:
    """Start and end hooks of the fault book, bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._start: dict[str, Callable[[Fault], None]] = {
            "ws-drop": self._ws_drop,
            "user-stream-end": self._user_stream_end,
            "foreign-fill": self._foreign_fill,
            "balance-change": self._balance_change,
            "price-jump": self._price_jump,
            "flash-crash": self._flash_crash,
            "clock-skew": self._clock_skew,
            "key-revoked": self._key_revoked,
            "stuck-orders": self._check_symbol,
            "price-freeze": self._check_symbol,
            "cancel-fail": self._check_symbol,
            "order-reject": self._check_symbol,
            "reorder-reports": self._check_reorder,
            "mark-divergence": self._check_futures,
            "funding-spike": self._check_futures,
        }
        self._end: dict[str, Callable[[Fault], None]] = {
            "clock-skew": self._clock_unskew,
            "key-revoked": self._key_restored,
            "stuck-orders": self._unstick,
            "reorder-reports": self._flush_reordered,
        }

    def start(self, fault: Fault) -> None:
        """Apply a fault that has just been injected."""
        action = self._start.get(fault.name)
        if action is not None:
            action(fault)

    def end(self, fault: Fault) -> None:
        """Undo a fault's effect (cancel a running price move)."""
        task = self._tasks.pop(fault.id, None)
        if task is not None and not task.done():
            task.cancel()
        action = self._end.get(fault.name)
        if action is not None:
            action(fault)

    async def stop(self) -> None:
        """Cancel running effects (the simulator is stopping)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----- websockets ------------------------------------------------------------------------------------
    def _ws_drop(self, fault: Fault) -> None:
        dropped = self.sim.streams.drop(fault.options["which"], abrupt=fault.options["abrupt"])
        fault.state["dropped"] = dropped
        log.warning("fault %d ws-drop: dropped %d connection(s)", fault.id, dropped)

    def _user_stream_end(self, fault: Fault) -> None:
        fault.state["ended"] = self.sim.streams.terminate_user_streams()

    # ----- orders and account ----------------------------------------------------------------------------
    def _check_symbol(self, fault: Fault) -> None:
        symbol = fault.options.get("symbol")
        if symbol is not None and symbol not in self.sim.feeds:
            raise FaultError(f"{fault.name}: unknown symbol {symbol!r} (listed: {', '.join(self.sim.feeds)})")

    def _check_futures(self, fault: Fault) -> None:
        if self.sim.perp is None:
            raise FaultError(f"{fault.name}: this simulator serves spot only (start it with --market usdm or both)")
        self._check_symbol(fault)

    def _check_reorder(self, fault: Fault) -> None:
        if fault.options["count"] < 2:
            raise FaultError("reorder-reports: option count must be at least 2")

    def _unstick(self, fault: Fault) -> None:
        # Orders accepted while stuck fill (or expire) at the current price as soon as the venue is unstuck.
        for symbol in self.sim.feeds:
            if not self.sim.engine.is_stuck(symbol):
                self.sim.engine.on_price(symbol)
                if self.sim.perp is not None:
                    self.sim.perp.on_price(symbol)

    def _flush_reordered(self, fault: Fault) -> None:
        self.sim.streams.flush_held_reports()

    def _foreign_fill(self, fault: Fault) -> None:
        o = fault.options
        self._check_symbol(fault)
        client_id = o["client_id"] or f"web_{secrets.token_hex(12)}"
        market = o["market"] or ("usdm" if self.sim.market == "usdm" else "spot")
        if market == "usdm" and self.sim.perp is None:
            raise FaultError("foreign-fill: market usdm, but this simulator serves spot only")
        book = self.sim.perp if market == "usdm" else self.sim.engine
        assert book is not None
        try:
            order = book.new_order(
                symbol=o["symbol"],
                side=o["side"],
                type="MARKET",
                quantity=Decimal(o["qty"]),
                client_order_id=client_id,
                force=True,
            )
        except errors.VenueError as exc:
            raise FaultError(f"foreign-fill: the venue refused the order: {exc.code} {exc.msg}") from None
        fault.state["order_id"] = order.order_id
        log.warning(
            "fault %d foreign-fill (%s): %s %s %s filled as order %d (%s)",
            fault.id,
            market,
            o["side"],
            o["qty"],
            o["symbol"],
            order.order_id,
            client_id,
        )

    def _balance_change(self, fault: Fault) -> None:
        o = fault.options
        try:
            fault.state["free"] = self.sim.engine.adjust_balance(o["asset"], Decimal(o["delta"]))
        except errors.VenueError:
            raise FaultError(f"balance-change: {o['asset']} would go below zero") from None

    def _clock_skew(self, fault: Fault) -> None:
        self.sim.clock.skew_ms += fault.options["ms"]
        if not fault.options["time_shows"]:
            self.sim.clock.unshown_ms += fault.options["ms"]

    def _clock_unskew(self, fault: Fault) -> None:
        self.sim.clock.skew_ms -= fault.options["ms"]
        if not fault.options["time_shows"]:
            self.sim.clock.unshown_ms -= fault.options["ms"]

    def _key_revoked(self, fault: Fault) -> None:
        key = fault.options["key"] or self.sim.api_key
        record = self.sim.auth.keys.get(key)
        if record is None:
            raise FaultError("key-revoked: unknown API key")
        # Revoked before any key-revoked fault touched it? (A second fault inherits the first one's answer.)
        earlier = [
            f
            for f in self.sim.faults.active("key-revoked")
            if f is not fault and (f.options["key"] or self.sim.api_key) == key and "was_revoked" in f.state
        ]
        fault.state["was_revoked"] = earlier[0].state["was_revoked"] if earlier else record.revoked
        record.revoked = True
        self.sim.streams.terminate_user_streams(api_key=key)

    def _key_restored(self, fault: Fault) -> None:
        key = fault.options["key"] or self.sim.api_key
        record = self.sim.auth.keys.get(key)
        if record is None or fault.state.get("was_revoked", False):
            return
        # Another key-revoked fault on the same key still holds it revoked.
        others = [
            f
            for f in self.sim.faults.active("key-revoked")
            if f is not fault and (f.options["key"] or self.sim.api_key) == key
        ]
        if not others:
            record.revoked = False

    # ----- market ----------------------------------------------------------------------------------------
    def _price_jump(self, fault: Fault) -> None:
        self._check_symbol(fault)
        o = fault.options
        start = self.sim.price(o["symbol"])
        target = start * (1 + Decimal(o["percent"]) / 100)
        self._run_move(fault, [(target, o["seconds"])])

    def _flash_crash(self, fault: Fault) -> None:
        self._check_symbol(fault)
        o = fault.options
        start = self.sim.price(o["symbol"])
        bottom = start * (1 - abs(Decimal(o["percent"])) / 100)
        recover = o["seconds"] if o["recover"] is None else o["recover"]
        legs = [(bottom, o["seconds"])]
        if recover > 0:
            legs.append((start, recover))
        self._run_move(fault, legs)

    def _run_move(self, fault: Fault, legs: list[tuple[Decimal, float]]) -> None:
        symbol = fault.options["symbol"]
        spec = self.sim.feeds[symbol].spec
        for target, _ in legs:
            if not spec.min_price <= target <= spec.max_price:
                raise FaultError(f"{fault.name}: target price {target:.2f} outside {spec.min_price}..{spec.max_price}")
        if all(seconds <= 0 for _, seconds in legs):
            for target, _ in legs:
                self.sim.set_price(symbol, target)
            self.sim.faults.end(fault, "done")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise FaultError(f"{fault.name}: a move over time needs the simulator's event loop running") from None
        self.sim.hold_price(symbol, fault.id)
        self._tasks[fault.id] = loop.create_task(self._move(fault, symbol, legs), name=f"sim-fault-{fault.id}")

    async def _move(self, fault: Fault, symbol: str, legs: list[tuple[Decimal, float]]) -> None:
        try:
            for target, seconds in legs:
                start = self.sim.price(symbol)
                steps = max(1, int(seconds / MOVE_STEP))
                for i in range(1, steps + 1):
                    if seconds > 0:
                        await asyncio.sleep(seconds / steps)
                    self.sim.set_price(symbol, start + (target - start) * i / steps)
        except asyncio.CancelledError:
            raise
        except Exception:  # task boundary: log, then end the fault so the feed moves again
            log.exception("fault %d %s: price move failed", fault.id, fault.name)
        finally:
            self.sim.release_price(symbol, fault.id)
            self._tasks.pop(fault.id, None)
        self.sim.faults.end(fault, "done")

    def describe(self) -> dict[str, Any]:
        """Running effects, for the control API."""
        return {"running_moves": sorted(self._tasks)}
