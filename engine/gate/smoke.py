"""The checklist's smoke trade on a paper or testnet venue (runbook 000 §1 "Testnet Trading").

A market buy of the smallest size the venue takes must appear in the order tracker within 5 s and be FILLED with
the position updated; it is then sold back. A limit buy far under the price must rest (OPEN), and once cancelled
reach CANCELED within 5 s. Every order goes through the engine's one command path as ``preflight:smoke``, so the
risk checks, the store and the audit trail see them like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

from engine.gate.checklist import Check, Status
from engine.kernel.commands import CancelOrder, Permit, PlaceOrder
from engine.kernel.events import OrderStatus
from engine.kernel.ports import Submit, VenueLink
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio, base_of
from engine.venue.adapter import Venue

ACTOR = "preflight:smoke"
WITHIN_S = 5.0  # runbook 000 §1: "Order appears in tracker within 5s"
FAR = Decimal("0.8")  # the resting buy's price against the last: far enough not to fill, inside percent filters
SIZE = Decimal("1.5")  # the orders' value against the venue's minimum notional


class SmokeTrade:
    """Places, watches and undoes the smoke trade's orders through the engine's ports."""

    def __init__(
        self,
        submit: Submit,
        tracker: OrderTracker,
        portfolio: Portfolio,
        link: VenueLink,
        refusal: Callable[[Permit], str | None],
        symbol: str,
        mode: str,
        last_event: Callable[[str], float | None],
    ) -> None:
        self.submit = submit
        self.tracker = tracker
        self.portfolio = portfolio
        self.link = link
        self.refusal = refusal
        self.symbol = symbol
        self.mode = mode
        self.last_event = last_event
        self._started: float | None = None

    async def run(self, prices: dict[str, Decimal]) -> Check:
        c = ("smoke_trade", "Smoke trade (market fill, far limit cancelled)")
        if self.mode == "dry-run":
            return Check(
                *c,
                Status.WARN,
                "not run: dry-run sends no orders",
                {},
                "run the checklist in paper mode on the testnet before going live",
            )
        why = self.refusal(Permit.ENTRY)
        if why:
            return Check(*c, Status.WARN, f"not run: {why}", {}, "resume trading, then run the checklist again")
        venue = self.link.venue
        if venue is None or not self.link.connected or not venue.markets_loaded:
            return Check(*c, Status.FAIL, "not run: the venue is not connected", {}, "fix the venue connection")
        symbol = self.symbol
        price = prices.get(symbol) or self.portfolio.last.get(symbol)
        if not price:
            return Check(*c, Status.FAIL, f"not run: no price for {symbol}", {}, "check the market data")
        self._started = time.monotonic()
        evidence: dict[str, object] = {"symbol": symbol, "price": str(price)}
        base = base_of(symbol)
        amount = self._size(venue, symbol, price)
        before = self._held(base)
        t0 = time.monotonic()
        placed = await self.submit(
            PlaceOrder(
                actor=ACTOR,
                reason="pre-flight smoke trade: market buy",
                symbol=symbol,
                side="buy",
                type="market",
                amount=amount,
                stop_loss=venue.price_to_precision(symbol, price * Decimal("0.9")),
            )
        )
        evidence["market_buy"] = placed.message
        if not placed.ok:
            return Check(
                *c,
                Status.FAIL,
                f"market buy of {amount} {symbol} not done: {placed.message}",
                evidence,
                "see the venue's answer; fix the key's trading permission or the venue",
            )
        cid = str(placed.details.get("client_id", ""))
        seen = await self._until(lambda: self.tracker.get(cid) is not None)
        filled = await self._until(lambda: self._status(cid) == OrderStatus.FILLED and self._held(base) > before)
        evidence.update(
            {
                "market_client_id": cid,
                "in_tracker_ms": _ms(seen, t0),
                "filled_ms": _ms(filled, t0),
                "held_before": str(before),
                "held_after": str(self._held(base)),
            }
        )
        if seen is None or filled is None:
            status = self._status(cid)
            return Check(
                *c,
                Status.FAIL,
                f"market buy {cid} not FILLED with the position updated within "
                f"{WITHIN_S:g}s (status {status.value if status else 'unknown'})",
                evidence,
                "check the user-data stream and the venue's order handling",
            )
        evidence["sold_back"] = await self._sell_back(venue, symbol, base, self._held(base) - before)
        far_price = venue.price_to_precision(symbol, price * FAR)
        t1 = time.monotonic()
        rest = await self.submit(
            PlaceOrder(
                actor=ACTOR,
                reason="pre-flight smoke trade: far limit buy",
                symbol=symbol,
                side="buy",
                type="limit",
                amount=self._size(venue, symbol, far_price),
                price=far_price,
                stop_loss=venue.price_to_precision(symbol, far_price * Decimal("0.9")),
            )
        )
        evidence["limit_buy"] = rest.message
        if not rest.ok:
            return Check(
                *c,
                Status.FAIL,
                f"limit buy at {far_price} not placed: {rest.message}",
                evidence,
                "see the venue's answer",
            )
        cid2 = str(rest.details.get("client_id", ""))
        resting = await self._until(lambda: self._status(cid2) == OrderStatus.OPEN)
        cancel = await self.submit(CancelOrder(actor=ACTOR, reason="pre-flight smoke trade: cancel", client_id=cid2))
        canceled = await self._until(lambda: self._status(cid2) == OrderStatus.CANCELED)
        evidence.update(
            {
                "limit_client_id": cid2,
                "open_ms": _ms(resting, t1),
                "cancel": cancel.message,
                "canceled_ms": _ms(canceled, t1),
            }
        )
        if resting is None or canceled is None:
            status = self._status(cid2)
            return Check(
                *c,
                Status.FAIL,
                f"limit buy {cid2} did not rest and reach CANCELED within {WITHIN_S:g}s "
                f"(status {status.value if status else 'unknown'})",
                evidence,
                "check cancels at the venue (runbook 000 §3 'Stuck Orders')",
            )
        return Check(
            *c,
            Status.PASS,
            f"market buy {amount} {symbol} in the tracker after {evidence['in_tracker_ms']} "
            f"ms, FILLED after {evidence['filled_ms']} ms, position updated; limit buy at {far_price} OPEN, "
            f"CANCELED after {evidence['canceled_ms']} ms",
            evidence,
        )

    def stream_evidence(self) -> str | None:
        """What the orders stream did since the smoke trade began (None when it did not run)."""
        if self._started is None:
            return None
        last = self.last_event("orders")
        if last is None or last < self._started:
            return "the orders stream delivered no event for the smoke trade"
        return "the orders stream delivered the smoke trade's order events"

    @staticmethod
    def _size(venue: Venue, symbol: str, price: Decimal) -> Decimal:
        """About the smallest amount the venue takes: some room over its minimum notional and amount, rounded down
        to its step by the venue's own precision rules."""
        return venue.amount_to_precision(
            symbol, max(venue.min_cost(symbol) * SIZE / price, venue.min_amount(symbol) * 2)
        )

    def _held(self, asset: str) -> Decimal:
        b = self.portfolio.balances.get(asset)
        return b.total if b else Decimal(0)

    def _status(self, client_id: str) -> OrderStatus | None:
        order = self.tracker.get(client_id)
        return order.status if order else None

    async def _until(self, predicate: Callable[[], bool]) -> float | None:
        """When ``predicate`` came true (monotonic), within WITHIN_S; None if it did not."""
        deadline = time.monotonic() + WITHIN_S
        while True:
            if predicate():
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)

    async def _sell_back(self, venue, symbol: str, base: str, bought: Decimal) -> str:  # type: ignore[no-untyped-def]
        amount = venue.amount_to_precision(symbol, min(bought, self.portfolio.free(base)))
        if amount < venue.min_amount(symbol):
            return f"nothing to sell back ({bought} {base} is under the venue's minimum)"
        result = await self.submit(
            PlaceOrder(
                actor=ACTOR,
                reason="pre-flight smoke trade: sell back",
                symbol=symbol,
                side="sell",
                type="market",
                amount=amount,
            )
        )
        return result.message


def _ms(at: float | None, since: float) -> int | None:
    return None if at is None else round((at - since) * 1000)
