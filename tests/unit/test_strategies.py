"""The built-in strategies decide from a hand-written view: exact signals, exact stops, no double entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal as D

from engine.kernel.config import LadderConfig, MaCrossConfig, MeanReversionConfig, StrategyConfig
from engine.kernel.events import Order, OrderStatus, Position
from engine.strategies import MaCross, MeanReversion, build_strategies
from engine.strategies.api import Market
from engine.strategies.base import Intent

SYM = "BTC/USDT"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class View:
    """A StrategyView over plain dicts."""

    now: datetime = NOW
    closes_: dict[str, list[D]] = field(default_factory=dict)
    last_: dict[str, D] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, list[Order]] = field(default_factory=dict)
    balances: dict[str, D] = field(default_factory=dict)
    markets: dict[str, Market] = field(default_factory=dict)

    def market(self, symbol: str) -> Market:
        return self.markets.get(symbol, Market())

    def closes(self, symbol: str) -> list[D]:
        return self.closes_.get(symbol, [])

    def last(self, symbol: str) -> D | None:
        return self.last_.get(symbol)

    def position(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def open_orders(self, symbol: str) -> list[Order]:
        return self.orders.get(symbol, [])

    def free(self, asset: str) -> D:
        return self.balances.get(asset, D(0))


def view(closes: list[str], holding: bool = False, open_order: bool = False) -> View:
    prices = [D(c) for c in closes]
    v = View(closes_={SYM: prices}, last_={SYM: prices[-1]})
    if holding:
        v.positions[SYM] = Position(SYM, D("0.5"), prices[0], prices[-1])
    if open_order:
        v.orders[SYM] = [Order("c1", SYM, "buy", "limit", D("0.1"), D("9"), OrderStatus.OPEN, origin="x")]
    return v


MA = MaCrossConfig(fast=2, slow=3, order_quote=D("50"), stop_loss_pct=D("1"))


# ---------------------------------------------------------------- ma_cross


def test_cross_up_buys_once_with_stop_under_last():
    strat = MaCross(MA, (SYM,))
    series = ["10", "10", "10", "10", "13", "14", "15"]
    emitted = [strat.decide(view(series[:n])) for n in range(1, len(series) + 1)]
    buys = [(n, i) for n, intents in enumerate(emitted, 1) for i in intents]
    # prev fast 10 <= slow 10; now fast 11.5 > slow 11: the cross is on the fifth sample only.
    assert buys == [
        (5, Intent("buy", SYM, quote_amount=D("50"), stop_loss=D("12.87"), reason="fast SMA crossed above slow"))
    ]


def test_no_signal_before_slow_plus_one_samples():
    strat = MaCross(MA, (SYM,))
    assert strat.decide(view(["10", "10", "13"])) == []
    assert [i.kind for i in strat.decide(view(["10", "10", "10", "13"]))] == ["buy"]
    assert strat.decide(View()) == []


def test_stop_uses_latest_price():
    v = view(["10", "10", "10", "13"])
    v.last_[SYM] = D("20")
    (intent,) = MaCross(MA, (SYM,)).decide(v)
    assert intent.stop_loss == D("19.80")


def test_exit_on_cross_down_only_when_holding():
    strat = MaCross(MA, (SYM,))
    down = ["10", "10", "10", "10", "7"]
    assert strat.decide(view(down)) == []
    assert strat.decide(view(down, holding=True)) == [Intent("exit", SYM, reason="fast SMA crossed below slow")]
    # Holding, an upward cross is no reason to add.
    assert strat.decide(view(["10", "10", "10", "10", "13"], holding=True)) == []


def test_no_entry_with_an_open_order():
    assert MaCross(MA, (SYM,)).decide(view(["10", "10", "10", "10", "13"], open_order=True)) == []


def test_each_symbol_decided_on_its_own():
    eth = "ETH/USDT"
    v = view(["10", "10", "10", "10", "13"])
    v.closes_[eth] = [D("10")] * 5
    v.last_[eth] = D("10")
    assert [i.symbol for i in MaCross(MA, (SYM, eth)).decide(v)] == [SYM]


# ---------------------------------------------------------------- mean_reversion

MR = MeanReversionConfig(window=5, entry_z=D("2"), exit_z=D("0.5"), order_quote=D("25"), stop_loss_pct=D("1.5"))
# mean 9, population std dev 2, last 5: z = -2 exactly; the leading 1000 is outside the window.
STRETCHED = ["1000", "10", "10", "10", "10", "5"]


def test_mean_reversion_enters_at_entry_z():
    (intent,) = MeanReversion(MR, (SYM,)).decide(view(STRETCHED))
    assert (intent.kind, intent.symbol, intent.quote_amount) == ("buy", SYM, D("25"))
    assert intent.stop_loss == D("4.925")


def test_mean_reversion_no_entry_short_of_entry_z():
    cfg = MR.model_copy(update={"entry_z": D("2.01")})
    assert MeanReversion(cfg, (SYM,)).decide(view(STRETCHED)) == []


def test_mean_reversion_no_entry_with_open_order_or_short_window():
    strat = MeanReversion(MR, (SYM,))
    assert strat.decide(view(STRETCHED, open_order=True)) == []
    assert strat.decide(view(["10", "10", "10", "5"])) == []


def test_mean_reversion_exit_threshold():
    strat = MeanReversion(MR, (SYM,))
    # Holding at z = -2: still stretched, neither exit nor add.
    assert strat.decide(view(STRETCHED, holding=True)) == []
    # z = 0 >= -0.5: back at the mean.
    (intent,) = strat.decide(view(["11", "9", "11", "9", "10"], holding=True))
    assert (intent.kind, intent.symbol) == ("exit", SYM)
    # z >= -exit_z includes the boundary: exit_z = 2 and z = -2 exits.
    wide = MeanReversion(MR.model_copy(update={"exit_z": D("2")}), (SYM,))
    assert [i.kind for i in wide.decide(view(STRETCHED, holding=True))] == ["exit"]


def test_mean_reversion_skips_flat_window():
    strat = MeanReversion(MR, (SYM,))
    assert strat.decide(view(["10"] * 5)) == []
    assert strat.decide(view(["10"] * 5, holding=True)) == []


# ---------------------------------------------------------------- build_strategies


def test_build_strategies_follows_config():
    assert [s.name for s in build_strategies(StrategyConfig(), (SYM,))] == ["ladder"]
    cfg = StrategyConfig(
        ladder=LadderConfig(enabled=False),
        ma_cross=MaCrossConfig(enabled=True),
        mean_reversion=MeanReversionConfig(enabled=True),
    )
    built = build_strategies(cfg, (SYM,))
    assert [(s.name, s.symbols) for s in built] == [("ma_cross", (SYM,)), ("mean_reversion", (SYM,))]
    assert build_strategies(cfg.model_copy(update={"enabled": False}), (SYM,)) == []


# ---------------------------------------------------------------- ladder


def test_the_ladder_stops_adding_before_the_risk_limit_would_refuse_it():
    """Issue 13: on a falling market the default ladder filled buy after buy until max_position_pct refused the
    next one every step (3.95 % > 3 %), filling the log. It now stops at max_holding_quote."""
    from engine.strategies.ladder import Ladder

    ladder = Ladder(LadderConfig(order_quote=D("100"), max_holding_quote=D("200")), (SYM,))
    small = View(last_={SYM: D("100")}, positions={SYM: Position(SYM, D("0.9"), D("101"), D("100"))})
    assert [i.kind for i in ladder.decide(small)] == ["buy"]  # 90 held: one more buy of 100 fits under 200
    big = View(
        last_={SYM: D("100")}, positions={SYM: Position(SYM, D("1.5"), D("101"), D("100"))}, balances={"BTC": D("1.5")}
    )
    assert [i.kind for i in ladder.decide(big)] == ["sell"]  # 150 held: no buy, only the offer over the entry


def test_the_ladder_does_not_offer_what_the_venue_would_refuse_as_too_small():
    """Issue 23: a remainder under the minimum notional was offered again every step (7 FAILED audit rows in 20 s
    on a fresh paper session); the ladder now leaves it alone."""
    from engine.strategies.ladder import Ladder

    ladder = Ladder(LadderConfig(order_quote=D("100"), max_holding_quote=D("200")), (SYM,))
    held = {SYM: Position(SYM, D("1.5"), D("101"), D("100"))}
    limits = {SYM: Market(min_amount=D("0.00001"), min_notional=D("5"))}
    dust = View(last_={SYM: D("100")}, positions=held, balances={"BTC": D("0.04")}, markets=limits)
    assert [i.kind for i in ladder.decide(dust)] == []  # 0.04 x ~101 = 4.04 < 5: nothing to send
    enough = View(last_={SYM: D("100")}, positions=held, balances={"BTC": D("0.05")}, markets=limits)
    assert [i.kind for i in ladder.decide(enough)] == ["sell"]


def test_the_built_ins_ask_for_nothing_under_the_markets_minimum_once_rounded_to_its_step(caplog):
    """Issue 23: on USDⓈ-M BTC the ladder's 100 USDT bought 0.001 BTC once rounded down to the step (~65 USDT), under
    the venue's 100 minimum notional, and was refused at every step (20 FAILED audit rows in 10 s). The built-ins now
    read the market's step and minimums and ask for nothing it would refuse; the ladder says so once."""
    from engine.strategies.ladder import Ladder

    perp = {SYM: Market(min_amount=D("0.001"), min_notional=D("100"), amount_step=D("0.001"))}
    assert perp[SYM].rounded(D("0.00166")) == D("0.001")
    assert not perp[SYM].tradable(D("100") / D("60000"), D("60000"))  # 0.001 x 60,000 = 60 < 100
    assert perp[SYM].tradable(D("150") / D("60000"), D("60000"))  # 0.002 x 60,000 = 120

    ladder = Ladder(LadderConfig(order_quote=D("100"), max_holding_quote=D("1000")), (SYM,))
    flat = View(last_={SYM: D("60000")}, markets=perp)
    with caplog.at_level("WARNING", logger="engine.strategies.ladder"):
        assert ladder.decide(flat) == [] and ladder.decide(flat) == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "order_quote 100" in said[0] and "minimum" in said[0] and SYM in said[0]
    bigger = Ladder(LadderConfig(order_quote=D("150"), max_holding_quote=D("1000")), (SYM,))
    assert [i.kind for i in bigger.decide(flat)] == ["buy"]
    # Its offer of what it holds: 0.0019 rounds down to 0.001 (~60 USDT), under the minimum: not offered.
    held = {SYM: Position(SYM, D("0.0019"), D("60000"), D("60000"))}
    rounded_away = View(last_={SYM: D("60000")}, positions=held, balances={"BTC": D("0.0019")}, markets=perp)
    assert [i.kind for i in bigger.decide(rounded_away)] == ["buy"]

    # ma_cross and mean_reversion: no entry the venue would refuse, and a remainder it would refuse is not held.
    strat = MaCross(MA, (SYM,))  # order_quote 50
    up = view(["10", "10", "10", "10", "13"])
    up.markets = {SYM: Market(min_notional=D("60"))}
    assert strat.decide(up) == []
    up.markets = {SYM: Market(min_notional=D("40"))}
    assert [i.kind for i in strat.decide(up)] == ["buy"]
    down = view(["13", "13", "13", "13", "10"], holding=True)  # 0.5 held at 10 = 5
    assert [i.kind for i in strat.decide(down)] == ["exit"]
    down.markets = {SYM: Market(min_notional=D("6"))}
    assert strat.decide(down) == []  # 5 < 6: nothing an exit could sell
