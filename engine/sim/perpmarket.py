"""USDⓈ-M perpetual contracts of the simulator: their filters and maintenance-margin tiers (leverage brackets).

A perpetual trades on the same seeded price feed as the spot market of the same name (one price per symbol, see
decision SIM-05 in docs/decisions.md); its lot, notional and bracket figures are Binance futures' own for BTCUSDT and
ETHUSDT (GET /fapi/v1/exchangeInfo and /fapi/v1/leverageBracket), and one generic table for the synthetic markets.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .market import SymbolSpec


@dataclass(frozen=True)
class Bracket:
    """One maintenance-margin tier: notional in [floor, cap) may use up to ``initial_leverage``; the maintenance
    margin is ``notional * mmr - cum`` (``cum`` makes it continuous across tiers)."""

    bracket: int
    initial_leverage: int
    floor: Decimal
    cap: Decimal
    mmr: Decimal
    cum: Decimal


def brackets(tiers: tuple[tuple[str, int, str], ...]) -> tuple[Bracket, ...]:
    """Tiers from (cap, max leverage, maintenance rate) rows; floors and ``cum`` follow as Binance computes them
    (cum_n = cum_{n-1} + floor_n * (mmr_n - mmr_{n-1}))."""
    out: list[Bracket] = []
    floor, cum, prev_mmr = Decimal(0), Decimal(0), Decimal(0)
    for n, (cap, leverage, mmr) in enumerate(tiers, start=1):
        rate = Decimal(mmr)
        cum += floor * (rate - prev_mmr)
        out.append(Bracket(n, leverage, floor, Decimal(cap), rate, cum))
        floor, prev_mmr = Decimal(cap), rate
    return tuple(out)


BTC_TIERS = brackets(
    (
        ("50000", 125, "0.004"),
        ("600000", 100, "0.005"),
        ("3000000", 75, "0.0065"),
        ("12000000", 50, "0.01"),
        ("70000000", 25, "0.02"),
        ("100000000", 20, "0.025"),
        ("230000000", 10, "0.05"),
        ("480000000", 5, "0.1"),
        ("600000000", 4, "0.125"),
        ("800000000", 3, "0.15"),
        ("1200000000", 2, "0.25"),
        ("1800000000", 1, "0.5"),
    )
)
ETH_TIERS = brackets(
    (
        ("50000", 125, "0.004"),
        ("600000", 100, "0.005"),
        ("3000000", 75, "0.0065"),
        ("12000000", 50, "0.01"),
        ("50000000", 25, "0.02"),
        ("65000000", 20, "0.025"),
        ("150000000", 10, "0.05"),
        ("320000000", 5, "0.1"),
        ("400000000", 4, "0.125"),
        ("530000000", 3, "0.15"),
        ("800000000", 2, "0.25"),
        ("1200000000", 1, "0.5"),
    )
)
SMALL_TIERS = brackets(
    (
        ("5000", 75, "0.005"),
        ("25000", 50, "0.01"),
        ("100000", 25, "0.02"),
        ("250000", 20, "0.025"),
        ("1000000", 10, "0.05"),
        ("2000000", 5, "0.1"),
        ("5000000", 4, "0.125"),
        ("10000000", 3, "0.15"),
        ("20000000", 2, "0.25"),
        ("50000000", 1, "0.5"),
    )
)


@dataclass(frozen=True)
class PerpSpec:
    """One USDⓈ-M perpetual as exchangeInfo describes it; prices share the spot market's tick."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal
    max_price: Decimal
    tiers: tuple[Bracket, ...]

    def bracket(self, notional: Decimal) -> Bracket:
        """The tier of an absolute notional (the last tier beyond the table)."""
        for tier in self.tiers:
            if notional < tier.cap:
                return tier
        return self.tiers[-1]

    @property
    def max_leverage(self) -> int:
        """The first tier's leverage: what POST /fapi/v1/leverage accepts at most."""
        return self.tiers[0].initial_leverage

    def max_notional(self, leverage: int) -> Decimal:
        """The largest position notional allowed at ``leverage`` (the cap of the last tier that allows it)."""
        allowed = [t.cap for t in self.tiers if t.initial_leverage >= leverage]
        return allowed[-1] if allowed else Decimal(0)


PERP_LOTS = {  # symbol -> (step, max qty, market max qty, min notional)
    "BTCUSDT": (Decimal("0.001"), Decimal("1000"), Decimal("120"), Decimal("100"), BTC_TIERS),
    "ETHUSDT": (Decimal("0.001"), Decimal("10000"), Decimal("2000"), Decimal("20"), ETH_TIERS),
}


def perp_spec(spot: SymbolSpec) -> PerpSpec:
    """The perpetual listed beside spot market ``spot``."""
    step, max_qty, market_max, min_notional, tiers = PERP_LOTS.get(
        spot.symbol, (spot.step_size, spot.max_qty, spot.market_max_qty, Decimal("5"), SMALL_TIERS)
    )
    return PerpSpec(
        symbol=spot.symbol,
        base=spot.base,
        quote=spot.quote,
        tick_size=spot.tick_size,
        step_size=step,
        min_qty=step,
        max_qty=max_qty,
        market_max_qty=market_max,
        min_notional=min_notional,
        min_price=spot.min_price,
        max_price=spot.max_price,
        tiers=tiers,
    )
