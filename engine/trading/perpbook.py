"""Perpetual futures' round trips from the engine's own fills (runbook 002; decision PERP-08).

A perps position is signed: a buy opens or adds to a long, a sell opens or adds to a short, and a fill against the
position reduces it at the book's average entry. The round trip opens when the position leaves zero and closes when
it is back at zero (a contract's amount is exact: no dust). Its result is the price PnL of what was closed, less
every commission paid in it (entries' included, charged when paid, as the venue's wallet pays them), plus the
funding received or paid while it was open. That makes realised plus the venue's unrealised PnL the change in the
margin balance. A fill larger than the position (impossible for the engine's reduce-only orders; a foreign order
could) closes the trip and opens the next with the remainder.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass
class PerpBook:
    """Fills-based view of one perpetual's position."""

    amount: Decimal = ZERO  # signed: long > 0, short < 0
    cost: Decimal = ZERO  # the open size at its entry prices (no fees), always >= 0
    trip_pnl: Decimal = ZERO  # realised in the round trip now open: price PnL, commissions and funding
    opened_by: str | None = None
    funding: Decimal = ZERO  # funding counted in the round trip now open

    @property
    def entry(self) -> Decimal | None:
        return None if self.amount == 0 else self.cost / abs(self.amount)

    def fill(
        self, side: str, price: Decimal, amount: Decimal, fee: Decimal, origin: str | None
    ) -> tuple[Decimal, tuple[Decimal, str | None] | None]:
        """Apply one fill (``fee`` in the quote). Returns (the PnL it realised, the round trip it closed as (its
        result, who opened it), or None)."""
        signed = amount if side == "buy" else -amount
        realized = -fee
        closed_trip: tuple[Decimal, str | None] | None = None
        if self.amount == 0 or (self.amount > 0) == (signed > 0):
            self._open(signed, price, origin)
            self.trip_pnl -= fee
            return realized, None
        closing = min(abs(signed), abs(self.amount))
        entry = self.cost / abs(self.amount)
        direction = 1 if self.amount > 0 else -1
        pnl = (price - entry) * closing * direction
        realized += pnl
        self.trip_pnl += pnl - fee
        self.cost -= entry * closing
        self.amount -= direction * closing
        if self.amount == 0:
            self.cost = ZERO
            closed_trip = (self.trip_pnl, self.opened_by)
            self.trip_pnl, self.opened_by, self.funding = ZERO, None, ZERO
            rest = abs(signed) - closing
            if rest > 0:  # the remainder of a flip opens the next round trip
                self._open(rest if signed > 0 else -rest, price, origin)
        return realized, closed_trip

    def add_funding(self, amount: Decimal) -> None:
        """Funding received (+) or paid (-) while the position is open: part of the round trip's result."""
        if self.amount != 0:
            self.trip_pnl += amount
            self.funding += amount

    def _open(self, signed: Decimal, price: Decimal, origin: str | None) -> None:
        if self.amount == 0:
            self.trip_pnl, self.opened_by, self.funding = ZERO, origin, ZERO
        self.amount += signed
        self.cost += price * abs(signed)
