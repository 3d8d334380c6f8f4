"""Listed symbols and a seeded price feed with rolling 24-hour statistics.

Prices follow a geometric random walk with occasional jumps; the random draws are floats, but every price that
leaves this module is a ``Decimal`` rounded to the symbol's tick size.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from .candles import CandleSeries, ClosedMinutes

DAY_MS = 24 * 60 * 60 * 1000
SECONDS_PER_YEAR = 365 * 24 * 60 * 60


@dataclass(frozen=True)
class SymbolSpec:
    """One spot market as exchangeInfo describes it (filters included)."""

    symbol: str
    base: str
    quote: str
    start_price: Decimal
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000.00")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    # Typical size of one synthetic public trade, in base units.
    typical_trade_qty: Decimal = Decimal("0.01")
    # The synthetic order book: one level every level_step (a multiple of the tick), level_qty on average.
    level_step: Decimal = Decimal("0.01")
    level_qty: Decimal = Decimal("1")


SYMBOLS: dict[str, SymbolSpec] = {
    spec.symbol: spec
    for spec in (
        SymbolSpec(
            symbol="BTCUSDT",
            base="BTC",
            quote="USDT",
            start_price=Decimal("65000.00"),
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.00001"),
            min_qty=Decimal("0.00001"),
            max_qty=Decimal("9000"),
            market_max_qty=Decimal("120"),
            typical_trade_qty=Decimal("0.01"),
            level_step=Decimal("0.50"),
            level_qty=Decimal("0.25"),
        ),
        SymbolSpec(
            symbol="ETHUSDT",
            base="ETH",
            quote="USDT",
            start_price=Decimal("3500.00"),
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            max_qty=Decimal("100000"),
            market_max_qty=Decimal("2000"),
            typical_trade_qty=Decimal("0.2"),
            level_step=Decimal("0.05"),
            level_qty=Decimal("3"),
        ),
    )
}


SYNTHETIC_MAX = 999
SYNTHETIC_RE = re.compile(r"SYM(\d{2,3})USDT")


def synthetic_name(n: int) -> str:
    """The venue name of synthetic market ``n`` (1-based): ``SYM01USDT`` ... ``SYM99USDT``, ``SYM100USDT``: the same
    name for the same market whatever the count, so a configuration's list fits any simulator that has it."""
    return f"SYM{n:02d}USDT"


def synthetic_needed(symbols: Iterable[str]) -> int:
    """How many synthetic markets a simulator must list for ``symbols`` (``SYM07/USDT`` needs seven)."""
    numbers = [int(m.group(1)) for s in symbols if (m := SYNTHETIC_RE.fullmatch(s.replace("/", "")))]
    return max(numbers, default=0)


# Start prices of the synthetic markets, a dozen across six orders of magnitude (then again, 7 % higher each round).
SYNTHETIC_PRICES = tuple(
    Decimal(p)
    for p in ("2450", "612", "173.5", "88.2", "31.4", "12.7", "6.35", "2.18", "0.874", "0.4312", "0.0917", "0.0264")
)
# Binance's filter tiers by price: (at least this price, tick size, lot step).
TIERS = (
    (Decimal("1000"), Decimal("0.01"), Decimal("0.0001")),
    (Decimal("100"), Decimal("0.01"), Decimal("0.001")),
    (Decimal("10"), Decimal("0.001"), Decimal("0.01")),
    (Decimal("1"), Decimal("0.0001"), Decimal("0.1")),
    (Decimal("0.1"), Decimal("0.00001"), Decimal("1")),
    (Decimal("0"), Decimal("0.000001"), Decimal("1")),
)


def synthetic(count: int) -> dict[str, SymbolSpec]:
    """``count`` synthetic USDT markets beside BTC and ETH (``cockpit sim --symbols N``): prices across six orders
    of magnitude (0.0264 to 2,450), each with the tick, lot and book a Binance market of that price has. Each walks
    its own seeded path (a feed's randomness is seeded with its name). Deterministic in ``count``."""
    if not 0 <= count <= SYNTHETIC_MAX:
        raise ValueError(f"{count} synthetic markets: give 0 to {SYNTHETIC_MAX}")
    out: dict[str, SymbolSpec] = {}
    for n in range(1, count + 1):
        base_price = SYNTHETIC_PRICES[(n - 1) % len(SYNTHETIC_PRICES)]
        price = base_price * (1 + Decimal("0.07") * ((n - 1) // len(SYNTHETIC_PRICES)))
        _, tick, step = next(tier for tier in TIERS if price >= tier[0])
        name = synthetic_name(n)
        out[name] = SymbolSpec(
            symbol=name,
            base=name.removesuffix("USDT"),
            quote="USDT",
            start_price=round_to_step(price, tick),
            tick_size=tick,
            step_size=step,
            min_qty=step,
            max_qty=floor_to_step(Decimal(900_000_000) / price, step),
            market_max_qty=floor_to_step(Decimal(5_000_000) / price, step),
            min_price=tick,
            typical_trade_qty=max(floor_to_step(Decimal(100) / price, step), step),
            level_step=tick * 10,
            level_qty=max(floor_to_step(Decimal(5000) / price, step), step),
        )
    return out


def markets(extra: int = 0) -> dict[str, SymbolSpec]:
    """BTC and ETH, and ``extra`` synthetic markets after them."""
    return {**SYMBOLS, **synthetic(extra)}


def round_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``value`` to a multiple of ``step`` (tick or lot) with the given rounding mode."""
    return ((value / step).to_integral_value(rounding=rounding) * step).quantize(step)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Truncate ``value`` down to a multiple of ``step``."""
    return round_to_step(value, step, ROUND_DOWN)


@dataclass(frozen=True)
class Stats24h:
    """Rolling 24-hour ticker figures."""

    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    count: int

    @property
    def change(self) -> Decimal:
        """Last minus open."""
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        """Change in percent of the open, three decimals as Binance shows it."""
        if not self.open:
            return Decimal(0)
        return (self.change / self.open * 100).quantize(Decimal("0.001"))

    @property
    def weighted_avg(self) -> Decimal:
        """Volume-weighted average price (last when there was no volume)."""
        if not self.volume:
            return self.last
        return (self.quote_volume / self.volume).quantize(Decimal("0.00000001"))


@dataclass(frozen=True)
class PublicTrade:
    """A trade printed on the public tape (synthetic or one of the account's fills)."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_is_maker: bool


@dataclass
class PriceFeed:
    """Seeded geometric random walk for one symbol; same seed and symbol give the same price sequence."""

    spec: SymbolSpec
    seed: int
    tick_interval: float = 0.25
    annual_vol: float = 0.7
    jump_probability: float = 0.002
    spread_bp: Decimal = Decimal("1")
    price: Decimal = field(init=False)
    _rng: random.Random = field(init=False, repr=False)
    _tape_rng: random.Random = field(init=False, repr=False)
    candles: CandleSeries = field(init=False, repr=False)
    _next_trade_id: int = field(init=False, default=1)
    _last_trade: PublicTrade | None = field(init=False, default=None)
    _tape: deque[PublicTrade] = field(init=False, repr=False)
    # The 24-hour window's figures over its complete minutes (only the current minute still changes).
    _closed: ClosedMinutes = field(init=False, default_factory=ClosedMinutes, repr=False)
    # (price, spread) -> the touch ``bid_ask`` worked out for them.
    _touch_of: tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]] | None = field(
        init=False, default=None, repr=False
    )

    def __post_init__(self) -> None:
        # A string seed is hashed deterministically (unlike hash() of a str, which is salted per process).
        self._rng = random.Random(f"{self.seed}:{self.spec.symbol}")
        # Trade sizes come from their own generator so the price path does not depend on how many were drawn.
        self._tape_rng = random.Random(f"{self.seed}:{self.spec.symbol}:tape")
        self.price = self.spec.start_price
        self.candles = CandleSeries(
            tick_size=self.spec.tick_size,
            step_size=self.spec.step_size,
            typical_qty=self.spec.typical_trade_qty,
            seed=f"{self.seed}:{self.spec.symbol}",
            annual_vol=self.annual_vol,
        )
        self._tape = deque(maxlen=1000)

    @property
    def sigma_per_tick(self) -> float:
        """Standard deviation of one tick's log return for the configured annualised volatility."""
        return self.annual_vol * math.sqrt(max(self.tick_interval, 1e-6) / SECONDS_PER_YEAR)

    def next_price(self) -> Decimal:
        """Advance the walk one tick and return the new price (does not record a trade)."""
        log_return = self._rng.gauss(0.0, self.sigma_per_tick)
        if self._rng.random() < self.jump_probability:
            size = self._rng.uniform(0.005, 0.02)
            log_return += size if self._rng.random() < 0.5 else -size
        factor = Decimal(repr(math.exp(log_return)))
        new_price = round_to_step(self.price * factor, self.spec.tick_size)
        self.price = min(max(new_price, self.spec.min_price), self.spec.max_price)
        return self.price

    def synthetic_trade_qty(self) -> tuple[Decimal, bool]:
        """Size and aggressor side of one synthetic public trade, drawn from the feed's own generator."""
        scale = Decimal(repr(self._tape_rng.uniform(0.1, 3.0)))
        qty = max(floor_to_step(self.spec.typical_trade_qty * scale, self.spec.step_size), self.spec.min_qty)
        return qty, self._tape_rng.random() < 0.5

    def synthetic_aggressor(self) -> bool:
        """The aggressor side of a print whose size is given (a replay's): the generator draws as for
        ``synthetic_trade_qty``, so that the tape's sides are the same whoever sizes the prints."""
        self._tape_rng.uniform(0.1, 3.0)
        return self._tape_rng.random() < 0.5

    def recent_trades(self, limit: int = 500) -> list[PublicTrade]:
        """The last ``limit`` trades of the tape (at most 1000), oldest first."""
        return list(self._tape)[-limit:] if limit > 0 else []

    @property
    def last_trade(self) -> PublicTrade | None:
        """The most recent trade on the tape, if any."""
        return self._last_trade

    def set_price(self, price: Decimal) -> Decimal:
        """Force the price (test hook); returns it rounded to the tick size."""
        self.price = round_to_step(Decimal(price), self.spec.tick_size)
        return self.price

    def bid_ask(self) -> tuple[Decimal, Decimal]:
        """Best bid and ask of the synthetic book around the last price, about ``spread_bp`` basis points apart,
        on the book's level grid (at least one level apart)."""
        key = (self.price, self.spread_bp)
        if self._touch_of is not None and self._touch_of[0] == key:
            # Asked several times per tick (the book's touch, its best levels, matching, the ticker): kept for the
            # price it was worked out for.
            return self._touch_of[1]
        half = self.price * self.spread_bp / Decimal(20000)
        step = self.spec.level_step
        bid = round_to_step(self.price - half, step, ROUND_FLOOR)
        ask = round_to_step(self.price + half, step, ROUND_CEILING)
        if ask <= bid:
            ask = bid + step
        touch = max(bid, step), ask
        self._touch_of = key, touch
        return touch

    def record_trade(self, price: Decimal, qty: Decimal, now_ms: int, buyer_is_maker: bool) -> PublicTrade:
        """Add a trade to the tape and the 24-hour statistics."""
        trade = PublicTrade(self.spec.symbol, self._next_trade_id, price, qty, now_ms, buyer_is_maker)
        self._next_trade_id += 1
        self._last_trade = trade
        self._tape.append(trade)
        self.candles.record(price, qty, now_ms, trade.trade_id, taker_buy=not buyer_is_maker)
        return trade

    def stats(self, now_ms: int) -> Stats24h:
        """Rolling 24-hour open/high/low/volume (minute resolution, history included)."""
        rows, lo, hi = self.candles.window_span(now_ms)
        if lo >= hi:
            p = self.price
            return Stats24h(p, p, p, p, Decimal(0), Decimal(0), now_ms - DAY_MS, now_ms, -1, -1, 0)
        first, current = rows[lo], rows[hi - 1]
        closed = self._closed
        closed.update(rows, lo, hi - 1)
        high, low, volume, quote_volume, count = (
            closed.high,
            closed.low,
            closed.volume,
            closed.quote_volume,
            closed.count,
        )
        first_id, last_id = closed.first_trade_id, closed.last_trade_id
        highs = [current.high, self.price] + ([high] if high is not None else [])
        lows = [current.low, self.price] + ([low] if low is not None else [])
        return Stats24h(
            open=first.open,
            high=max(highs),
            low=min(lows),
            last=self.price,
            volume=volume + current.volume,
            quote_volume=quote_volume + current.quote_volume,
            open_time=max(first.start_ms, now_ms - DAY_MS),
            close_time=now_ms,
            first_trade_id=first_id if first_id >= 0 else current.first_trade_id if current.first_trade_id >= 0 else -1,
            last_trade_id=current.last_trade_id if current.last_trade_id >= 0 else last_id,
            count=count + current.count,
        )
