"""A stateful property test (hypothesis): operator commands, strategy orders, price moves and simulator faults
interleaved at random against a real engine on the real simulator (ccxt over loopback, a real SQLite store). After
every step:

- store and venue agree once reconciled: every order in the venue's status and fill, none twice, none unknown, every
  trade a stored fill, balances equal (tests/crashloop.differences);
- nothing is sent while HALTED (an order asked for while HALTED is refused and the venue sees nothing) and no buy
  while REDUCE_ONLY;
- PnL adds up from fills: the venue's balances are the opening balance plus the stored fills' cash flows and fees,
  to the last unit (Decimal), and the engine's realised plus unrealised PnL is its equity change, dust included
  (to Decimal's 28 digits: a partial exit divides the cost);
- every held position has exactly one protection at the venue, its stop or an OCO of the stop with the entry's
  take-profit, of the held amount (less the engine's other sells), within the filters, once the engine settled, and
  none ever had two live at once (issue 22; not while a kill switch has taken the stops until an operator resumes).

The default run is small (README "Proof suites" has the long one):

    .venv/bin/python -m pytest tests/chaos/test_stateful_faults.py --hypothesis-profile=long -p no:cacheprovider \
        --timeout 1200

(profiles in tests/conftest.py: "cockpit", the default, 3 examples of 10 steps; "long", 100 of 40).

``PerpsUnderFaults`` (the ``market = "usdm"`` flag, issue 24) runs the same steps on the simulator's USDⓈ-M
perpetuals, where a sell opens a short: after every step store and venue agree on orders and fills, each position's
side and size in the engine are the venue's, no reduce-only order ever opened or flipped a position, nothing is
sent while HALTED and no entry while REDUCE_ONLY.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from crashloop import OPENING, differences, reduce_only_flips, stops_twice, unexplained_balances, unprotected
from eventually import eventually
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CancelOrder, CloseAll, Halt, PlaceOrder, ReduceOnly, Resume
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import TradingState
from engine.sim import Simulator
from engine.trading.portfolio import base_of

SYMBOLS = ("BTC/USDT", "ETH/USDT")
LOT = {"BTC/USDT": Decimal("0.0005"), "ETH/USDT": Decimal("0.01")}
# Faults that end by themselves (a count, or at once), so they interleave with the steps that meet them.
FAULTS = {
    "5xx hides a placed order": (
        "accept-then-hang",
        dict(seconds=0, status=503, path="/api/v3/order", method="POST", count=1),
    ),
    "answer lost past the timeout": (
        "accept-then-hang",
        dict(seconds=1.5, path="/api/v3/order", method="POST", count=1),
    ),
    "request never arrived": ("hang", dict(seconds=1.5, path="/api/v3/order", method="POST", count=1)),
    "503 on an order": ("http-status", dict(status=503, path="/api/v3/order", method="POST", count=1)),
    "order rejected": ("order-reject", dict(count=1)),
    "cancel fails": ("cancel-fail", dict(count=2)),
    "reports twice": ("duplicate-report", dict(count=2)),
    "reports reordered": ("reorder-reports", dict(count=2)),
    "websockets dropped": ("ws-drop", {}),
    "slow answers": ("latency", dict(ms=300, count=4)),
}


class EngineUnderFaults(RuleBasedStateMachine):
    """One engine on one simulator per example; prices move only when a step moves them."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.sim = Simulator(seed=3, tick_interval=0.05)
        self.engine: Engine | None = None
        self.loop.run_until_complete(self._start())

    async def _start(
        self,
        prefix: str = "cockpit-stateful-",
        venue: dict | None = None,
        risk: dict | None = None,
        monitors: dict | None = None,
    ) -> None:
        """Start the simulator and an engine on it (``venue``, ``risk``, ``monitors``: what a subclass changes)."""
        await self.sim.start()
        self.sim.pause_feed()
        import tempfile
        from pathlib import Path

        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.engine = Engine(
            Settings(
                venue=VenueConfig(
                    **(venue or {}),
                    exchange="binance",
                    rest_url=self.sim.rest_url,
                    ws_url=self.sim.ws_url,
                    api_key=self.sim.api_key,
                    api_secret=self.sim.api_secret,
                    timeout_ms=1000,
                    retry_backoff_s=(0.05, 0.1),
                    poll_s=0.2,
                    stale_s=5.0,
                    breaker_failures=50,
                ),
                engine=EngineConfig(data_dir=self.data_dir, equity_sample_s=0.5),
                risk=RiskConfig(
                    **{"require_stop_loss": True, **(risk or {})},
                    max_position_pct=Decimal("30"),
                    max_orders_per_minute=1000,
                    daily_loss_limit_pct=Decimal("50"),
                    max_drawdown_warn_pct=Decimal("50"),
                    max_drawdown_pct=Decimal("60"),
                ),
                monitors=MonitorsConfig(
                    interval_s=0.2,
                    ping_s=1.0,
                    reconcile_s=0.5,
                    rest_errors_max=1000,
                    ws_stale_warn_s=30,
                    ws_stale_crit_s=60,
                    stuck_order_s=3600,
                    flash_crash_pct=Decimal("50"),
                    **(monitors or {}),
                ),
                strategy=StrategyConfig(enabled=False),
            )
        )
        await self.engine.start()
        await eventually(self.engine.ready.is_set, timeout=20, message="engine connected")

    def teardown(self) -> None:
        async def stop() -> None:
            if self.engine is not None:
                await self.engine.stop()
            await self.sim.stop()
            leftovers = asyncio.all_tasks() - {asyncio.current_task()}  # ccxt's throttlers outlive their clients
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

        self.loop.run_until_complete(stop())
        self.loop.close()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    # ------------------------------------------------------------ steps

    @rule(
        actor=st.sampled_from(["operator:key", "strategy:ladder"]),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["market", "limit near", "limit far"]),
        lots=st.integers(1, 4),
        take_profit=st.booleans(),
    )
    def order(self, actor: str, symbol: str, side: str, kind: str, lots: int, take_profit: bool) -> None:
        engine = self.engine
        last = engine.portfolio.last[symbol]
        amount = LOT[symbol] * lots
        if side == "sell":  # what is held, free or under its protective stop (a sell takes the stop off first)
            held = engine.portfolio.balances.get(base_of(symbol))
            amount = min(amount, held.total if held else Decimal(0))
        price = None if kind == "market" else last * (Decimal("0.999") if kind == "limit near" else Decimal("0.97"))
        if side == "sell" and price is not None:
            price = last * (2 - price / last)
        state, sent = engine.trading_state, len(self.sim.engine.orders)
        result = self.run(
            engine.execute(
                PlaceOrder(
                    actor=actor,
                    symbol=symbol,
                    side=side,
                    type="market" if price is None else "limit",
                    amount=amount,
                    price=price,
                    stop_loss=(price or last) * Decimal("0.5") if side == "buy" else None,
                    # an entry with a take-profit: the position's protection becomes one OCO of stop and take-profit
                    take_profit=(price or last) * Decimal("1.5") if side == "buy" and take_profit else None,
                )
            )
        )
        if state == TradingState.HALTED and engine.trading_state == TradingState.HALTED:
            assert not result.ok and "HALTED" in result.message, result.message
            assert len(self.sim.engine.orders) == sent, "an order reached the venue while HALTED"
        if state == TradingState.REDUCE_ONLY and engine.trading_state == TradingState.REDUCE_ONLY and side == "buy":
            assert not result.ok and len(self.sim.engine.orders) == sent, "a buy reached the venue in REDUCE_ONLY"

    @rule(command=st.sampled_from(["halt", "resume", "reduce-only", "cancel-all", "close-all", "cancel one"]))
    def operator(self, command: str) -> None:
        engine = self.engine
        if command == "cancel one":
            open_orders = engine.tracker.open_orders()
            if open_orders:
                self.run(engine.execute(CancelOrder(actor="operator:key", client_id=open_orders[0].client_id)))
            return
        cls = {
            "halt": Halt,
            "resume": Resume,
            "reduce-only": ReduceOnly,
            "cancel-all": CancelAll,
            "close-all": CloseAll,
        }[command]
        result = self.run(engine.execute(cls(actor="operator:key", reason="stateful test")))
        if command in ("halt", "cancel-all", "close-all"):
            assert engine.trading_state == TradingState.HALTED  # the kill switch halts first, whatever else fails
        if command == "cancel-all" and result.ok:  # all but the protective stops, which it keeps
            assert all(o["clientOrderId"].startswith(("cs-", "ct-")) for o in self.sim.open_orders())
        if command == "close-all" and result.ok:
            assert self.sim.open_orders() == [] and all(sum(self.sim.balance(base_of(s))) < LOT[s] for s in SYMBOLS)

    @rule(symbol=st.sampled_from(SYMBOLS), pct=st.sampled_from(["-3", "-0.5", "0.5", "3"]))
    def move_price(self, symbol: str, pct: str) -> None:
        venue = symbol.replace("/", "")
        self.sim.set_price(venue, self.sim.price(venue) * (1 + Decimal(pct) / 100))

    @rule(fault=st.sampled_from(sorted(FAULTS)))
    def inject(self, fault: str) -> None:
        name, options = FAULTS[fault]
        self.sim.faults.inject(name, **options)

    # ------------------------------------------------------------ after every step

    @invariant()
    def after_every_step(self) -> None:
        """Once the venue's reports are in (streams, or a reconciliation), every check below holds."""
        self.store_and_venue_agree_once_reconciled()
        self.pnl_adds_up_from_fills()

    def store_and_venue_agree_once_reconciled(self) -> None:
        engine = self.engine
        last: list[str] = []

        async def agree() -> bool:
            nonlocal last
            if engine.execution.in_flight:
                return False
            last = self.differences()  # the streams usually have it already
            if not last:
                return True
            try:
                await engine.sync.reconcile_all()
            except Exception as exc:  # a fault may refuse one reconciliation; the next one counts
                last = [f"reconciliation failed: {type(exc).__name__}: {exc}"]
                return False
            last = self.differences()
            return not last

        try:
            self.run(eventually(agree, timeout=20, interval=0.2))
        except AssertionError:
            raise AssertionError(f"store and venue disagree after reconciliation: {last}") from None

    def differences(self) -> list[str]:
        """What still differs: store against venue, and the positions' protective stops against what they hold."""
        account = self.sim.account()
        found = differences(account, self.engine.store) + stops_twice(account)
        if not self.engine.venue_stops.suspended:
            found += unprotected(account, self.engine.store)
        return found

    def pnl_adds_up_from_fills(self) -> None:
        engine, sim = self.engine, self.sim
        assert unexplained_balances(sim.account(), engine.store) == []
        assert engine.stats.current().trades_count == len(engine.store.fills())
        equity = engine.portfolio.equity()
        pnl = sum(engine.portfolio.realized.values(), Decimal(0)) + engine.portfolio.unrealized()
        assert abs(equity - OPENING["USDT"] - pnl) <= Decimal("1e-20"), (equity, pnl)


TestEngineUnderFaults = EngineUnderFaults.TestCase


PERP = "BTC/USDT:USDT"
PERP_LOT = Decimal("0.002")  # over the simulator's USDⓈ-M minimum notional (100 USDT)
PERP_FAULTS = {
    "5xx hides a placed order": (
        "accept-then-hang",
        dict(seconds=0, status=503, path="/fapi/v1/order", method="POST", count=1),
    ),
    "answer lost past the timeout": (
        "accept-then-hang",
        dict(seconds=1.5, path="/fapi/v1/order", method="POST", count=1),
    ),
    "request never arrived": ("hang", dict(seconds=1.5, path="/fapi/v1/order", method="POST", count=1)),
    "503 on an order": ("http-status", dict(status=503, path="/fapi/v1/order", method="POST", count=1)),
    "reports reordered": ("reorder-reports", dict(count=2)),
    "websockets dropped": ("ws-drop", {}),
    "slow answers": ("latency", dict(ms=300, count=4)),
}


class PerpsUnderFaults(EngineUnderFaults):
    """The same engine on the simulator's USDⓈ-M perpetuals (``[venue] market = "usdm"``)."""

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)
        self.loop = asyncio.new_event_loop()
        self.sim = Simulator(seed=3, tick_interval=0.05, market="usdm")
        self.engine = None
        self.loop.run_until_complete(self._start_perps())

    async def _start_perps(self) -> None:
        await self._start(
            "cockpit-stateful-perps-",
            venue=dict(market="usdm", symbols=(PERP,)),
            risk=dict(require_stop_loss=False, stops_at_venue=False),
            monitors=dict(liq_crit_pct=Decimal("1"), liq_warn_pct=Decimal("2")),
        )

    # The spot steps do not apply: their symbols, their faults' paths, their checks of balances and stops.
    order = None  # type: ignore[assignment]
    operator = None  # type: ignore[assignment]
    move_price = None  # type: ignore[assignment]
    inject = None  # type: ignore[assignment]
    after_every_step = None  # type: ignore[assignment]

    @rule(
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["market", "limit near", "limit far"]),
        lots=st.integers(1, 4),
    )
    def perp_order(self, side: str, kind: str, lots: int) -> None:
        engine = self.engine
        last = engine.portfolio.last[PERP]
        amount = PERP_LOT * lots
        away = {"market": None, "limit near": Decimal("0.001"), "limit far": Decimal("0.03")}[kind]
        price = None if away is None else last * (1 - away if side == "buy" else 1 + away)
        entry = not engine.execution.reduces(PERP, side, amount)
        state, sent = engine.trading_state, len(self.sim.futures.orders)
        result = self.run(
            engine.execute(
                PlaceOrder(
                    actor="operator:key",
                    symbol=PERP,
                    side=side,
                    type="market" if price is None else "limit",
                    amount=amount,
                    price=None if price is None else price.quantize(Decimal("0.1")),
                )
            )
        )
        if state == TradingState.HALTED and engine.trading_state == TradingState.HALTED:
            assert not result.ok and "HALTED" in result.message, result.message
            assert len(self.sim.futures.orders) == sent, "an order reached the venue while HALTED"
        if state == TradingState.REDUCE_ONLY and engine.trading_state == TradingState.REDUCE_ONLY and entry:
            assert not result.ok and len(self.sim.futures.orders) == sent, "an entry reached the venue in REDUCE_ONLY"

    @rule(command=st.sampled_from(["halt", "resume", "reduce-only", "cancel-all", "close-all"]))
    def perp_operator(self, command: str) -> None:
        engine = self.engine
        cls = {
            "halt": Halt,
            "resume": Resume,
            "reduce-only": ReduceOnly,
            "cancel-all": CancelAll,
            "close-all": CloseAll,
        }
        result = self.run(engine.execute(cls[command](actor="operator:key", reason="stateful test")))
        if command in ("halt", "cancel-all", "close-all"):
            assert engine.trading_state == TradingState.HALTED
        if command == "close-all" and result.ok:  # flat at the venue, not "only dust"
            assert self.sim.account()["futures"]["positions"] == [] and not self.sim.futures.open_orders()

    @rule(pct=st.sampled_from(["-3", "-0.5", "0.5", "3"]))
    def perp_price(self, pct: str) -> None:
        self.sim.set_price("BTCUSDT", self.sim.price("BTCUSDT") * (1 + Decimal(pct) / 100))

    @rule(fault=st.sampled_from(sorted(PERP_FAULTS)))
    def perp_fault(self, fault: str) -> None:
        name, options = PERP_FAULTS[fault]
        self.sim.faults.inject(name, **options)

    @invariant()
    def perps_agree(self) -> None:
        """Once reconciled: orders and fills as the venue's, the position's side and size as the venue's, and no
        reduce-only fill that grew or flipped a position."""
        engine = self.engine
        last: list[str] = []

        async def agree() -> bool:
            nonlocal last
            if engine.execution.in_flight:
                return False
            try:
                await engine.sync.reconcile_all()
            except Exception as exc:  # a fault may refuse one reconciliation; the next one counts
                last = [f"reconciliation failed: {type(exc).__name__}: {exc}"]
                return False
            futures = self.sim.account()["futures"]
            venue = {p["symbol"]: Decimal(p["positionAmt"]) for p in futures["positions"]}
            mine = {s.replace("/", "").split(":")[0]: p.amount for s, p in engine.portfolio.perps.items()}
            last = differences({**futures, "balances": {}}, engine.store) + reduce_only_flips(futures, engine.store)
            if venue != mine:
                last.append(f"positions: venue {venue}, engine {mine}")
            return not last

        try:
            self.run(eventually(agree, timeout=20, interval=0.2))
        except AssertionError:
            raise AssertionError(f"store and venue disagree after reconciliation: {last}") from None


TestPerpsUnderFaults = PerpsUnderFaults.TestCase
