"""The Simulator: a Binance-compatible venue on loopback (REST + websockets + seeded prices): spot, USDⓈ-M futures,
or both on one simulator (``market``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from . import payloads
from .access import HostCheck, new_token
from .auth import ApiKey, Authenticator
from .clock import SimClock
from .control import ControlApi
from .effects import FaultEffects
from .faults import FaultBook
from .limits import RateLimiter
from .listenkeys import ListenKeys
from .market import PriceFeed, markets
from .matching import MatchingEngine
from .perp import EIGHT_HOURS_MS, PerpAccountUpdate, PerpAlgoUpdate, PerpEngine, PerpEvent, PerpOrderUpdate
from .perppayloads import account_update, algo_update, mark_price_event, order_trade_update, position_risk
from .perppayloads import order_json as perp_order_json
from .perprest import PerpRoutes
from .replay import Replay, load_csv
from .rest import RestApi
from .ws import StreamServer

log = logging.getLogger(__name__)

DEFAULT_BALANCES = {"USDT": Decimal("10000"), "BTC": Decimal("0"), "ETH": Decimal("0")}
DEFAULT_FUTURES_WALLET = Decimal("10000")
MARKETS = ("spot", "usdm", "both")
# How often the venue's own clock looks at countdownCancelAll timers (wall seconds), whoever is connected.
HOUSEKEEPING_INTERVAL = 0.1


class Simulator:
    """A paper Binance spot venue for the real ccxt client: start(), point ccxt at rest_url/ws_url, stop()."""

    def __init__(
        self,
        *,
        seed: int = 1,
        rest_port: int = 0,
        ws_port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        api_secret: str | None = None,
        keys: Iterable[ApiKey | Mapping[str, Any]] = (),
        balances: dict[str, Decimal] | None = None,
        tick_interval: float = 0.25,
        taker_fee: Decimal = Decimal("0.001"),
        maker_fee: Decimal = Decimal("0.001"),
        speed: float = 1.0,
        replay: Mapping[str, str | Path] | None = None,
        replay_start: int | None = None,
        history_days: float = 14,
        weight_limit: int = 6000,
        orders_per_10s: int = 100,
        stepped: bool = False,
        start_ms: int | None = None,
        control_token: str | None = None,
        symbols: int = 0,
        market: str = "spot",
        futures_wallet: Decimal = DEFAULT_FUTURES_WALLET,
        funding_rate: Decimal = Decimal("0.0001"),
        funding_interval_s: float = EIGHT_HOURS_MS / 1000,
    ) -> None:
        """``keys``: extra API keys (ApiKey or dicts of its fields) besides the main ``api_key``, which can trade
        and not withdraw. ``speed``: market time runs this many times faster than real time. ``replay``: symbol ->
        OHLCV CSV replayed instead of the seeded walk (from ``replay_start`` ms, default half the file, at most
        1000 candles, in). ``history_days``: minute candles generated before the start (14 days by default).
        ``weight_limit`` / ``orders_per_10s``: Binance's request-weight and order-rate limits. ``stepped``: market
        time and prices move only when the owner calls ``advance`` and ``tick`` (a validation run), each tick
        ``tick_interval`` market seconds, and the rate limits count market time; ``start_ms``: where market time
        starts (default: now, or the replay's start). ``control_token``: what the control API (``/sim/...``) asks
        of HTTP callers (default: a fresh random one; Python calls need none). ``symbols``: synthetic USDT markets
        listed beside BTC and ETH (``SYM01USDT``...; ``engine.sim.market.synthetic``). ``market``: ``spot`` (the
        default: /api/v3), ``usdm`` (USDⓈ-M perpetuals only: /fapi) or ``both``; the futures account starts with
        ``futures_wallet`` USDT and pays ``funding_rate`` every ``funding_interval_s`` market seconds."""
        if market not in MARKETS:
            raise ValueError(f"market {market!r}: give one of {', '.join(MARKETS)}")
        if funding_interval_s <= 0:
            raise ValueError(f"funding interval {funding_interval_s} s: give a positive number of seconds")
        self.market = market
        self.seed = seed
        self.host = host
        self.tick_interval = tick_interval
        # A stepped driver walks the replayed candles' points between coarse ticks (``walk_to``).
        self.walk = False
        self._want_rest_port = rest_port
        self._want_ws_port = ws_port
        self._rest_port: int | None = None
        self._ws_port: int | None = None
        self.api_key = api_key or secrets.token_hex(32)
        self.api_secret = api_secret or secrets.token_hex(32)
        # The control API's bearer token; ``cockpit sim`` prints it and writes it to ``control_token_file``.
        self.control_token = control_token or new_token()
        self.control_token_file: Path | None = None
        self.host_check = HostCheck(host)
        self.markets = markets(symbols)
        self.replays: dict[str, Replay] = {}
        for symbol, path in (replay or {}).items():
            if symbol not in self.markets:
                raise ValueError(f"cannot replay {symbol}: listed symbols are {', '.join(self.markets)}")
            self.replays[symbol] = Replay(symbol, load_csv(path, self.markets[symbol]), replay_start)
        first_replay = next(iter(self.replays.values()), None)
        self.clock = SimClock(
            speed=speed, start_ms=first_replay.start_ms if first_replay else start_ms, stepped=stepped
        )
        self.feeds = {
            s: PriceFeed(spec, seed, tick_interval=self.clock.market_seconds(tick_interval))
            for s, spec in self.markets.items()
        }
        for symbol, feed in self.feeds.items():
            feed.candles.max_minutes = int(history_days * 1440)
            if symbol in self.replays:
                feed.price = self.replays[symbol].start_price
                feed.candles.preset(self.replays[symbol].history)
            else:
                feed.candles.anchor(self.clock.now_ms(), feed.price)
        self.engine = MatchingEngine(
            self.feeds,
            dict(DEFAULT_BALANCES if balances is None else balances),
            taker_fee=Decimal(taker_fee),
            maker_fee=Decimal(maker_fee),
            clock=self.clock.now_ms,
            seed=seed,
        )
        main_key = ApiKey(self.api_key, self.api_secret, can_trade=True, can_withdraw=False)
        self.auth = Authenticator([main_key, *(k if isinstance(k, ApiKey) else ApiKey(**k) for k in keys)])
        self.effects = FaultEffects(self)
        self.faults = FaultBook(seed, on_start=self.effects.start, on_end=self.effects.end)
        self.engine.is_stuck = lambda symbol: self.faults.is_active("stuck-orders", symbol=symbol) is not None
        self.limiter = RateLimiter(weight_limit=weight_limit, orders_per_10s=orders_per_10s)
        self.perp: PerpEngine | None = None
        if market != "spot":
            self.perp = PerpEngine(
                self.feeds,
                wallet=Decimal(futures_wallet),
                clock=self.clock.now_ms,
                server_clock=self.clock.server_ms,
                faults=self.faults,
                funding_rate=Decimal(funding_rate),
                funding_interval_ms=int(funding_interval_s * 1000),
            )
            self.perp.is_stuck = self.engine.is_stuck
        self.listen_keys = ListenKeys()
        self._rest = RestApi(
            self.engine,
            self.auth,
            self.clock,
            self.faults,
            self.limiter,
            self.clock.server_ms(),
            self.listen_keys,
            self.host_check,
        )
        self._rest.serve_spot = market != "usdm"
        self._control = ControlApi(self)
        self.streams = StreamServer(
            self.engine,
            self.auth,
            self.clock.now_ms,
            self.clock.server_ms,
            self.faults,
            self.listen_keys,
            self.host_check,
        )
        self.engine.listeners.append(self.streams.on_event)
        self._perp_routes: PerpRoutes | None = None
        if self.perp is not None:
            self.perp.listeners.append(self._on_perp_event)
            self._perp_routes = PerpRoutes(
                self.perp,
                self.engine,
                self.auth,
                self.clock,
                self.faults,
                self.limiter,
                self.streams.perp_listen_keys,
            )
        self._housekeeping: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._paused = False
        self._held: dict[str, set[int]] = {}
        self._started = False

    # ----- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind REST and websocket ports (0 = any free port) and start the price feed."""
        if self._started:
            return
        self._started = True
        try:
            self._rest.stopping.clear()
            runner = web.AppRunner(self._rest.build_app(self._add_routes), access_log=None, handle_signals=False)
            await runner.setup()
            self._runner = runner
            site = web.TCPSite(runner, self.host, self._want_rest_port)
            await site.start()
            self._rest_port = runner.addresses[0][1]
            self._ws_port = await self.streams.start(self.host, self._want_ws_port)
        except BaseException:
            await self.stop()
            raise
        if not self.clock.stepped:
            self._ticker = asyncio.create_task(self._tick_loop(), name="sim-price-feed")
        if self.perp is not None:
            self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="sim-countdowns")
        log.info("simulator serving REST %s WS %s (seed %s)", self.rest_url, self.ws_url, self.seed)

    async def stop(self) -> None:
        """Stop the feed, end faults, close websocket connections and the HTTP server; safe to call twice."""
        self._rest.stopping.set()
        if self._started:
            self.faults.clear()
        await self.effects.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            try:
                await self._housekeeping
            except asyncio.CancelledError:
                pass
            self._housekeeping = None
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self.streams.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._started:
            log.info("simulator stopped")
        self._started = False

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- addresses -------------------------------------------------------------------------------------
    @property
    def rest_port(self) -> int:
        """Bound REST port (after start)."""
        if self._rest_port is None:
            raise RuntimeError("simulator not started")
        return self._rest_port

    @property
    def ws_port(self) -> int:
        """Bound websocket port (after start)."""
        if self._ws_port is None:
            raise RuntimeError("simulator not started")
        return self._ws_port

    @property
    def rest_url(self) -> str:
        """``http://host:port`` of the REST API (ccxt appends /api/v3)."""
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port`` of the websocket server (/ws, /ws/<n>, /ws-api/v3)."""
        return f"ws://{self.host}:{self.ws_port}"

    # ----- venue-side truth for tests --------------------------------------------------------------------
    def price(self, symbol: str) -> Decimal:
        """Current simulated last price of ``symbol`` (e.g. "BTCUSDT")."""
        return self.engine.feed(symbol).price

    def bid_ask(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Current simulated best bid and ask."""
        return self.engine.feed(symbol).bid_ask()

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders as Binance order objects (GET /api/v3/openOrders shape)."""
        return [payloads.order_json(o) for o in self.engine.open_orders(symbol)]

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of an asset."""
        return self.engine.balance(asset)

    def account(self) -> dict[str, Any]:
        """The account's truth: balances, every order ever placed (Binance order objects), the trade count; with
        futures, ``futures``: the wallet, positions (positionRisk v2 rows), every order, the trade count."""
        body: dict[str, Any] = {
            "balances": {
                asset: {"free": str(free), "locked": str(locked)}
                for asset, (free, locked) in self.engine.balances.items()
            },
            "orders": [payloads.order_json(o) for o in self.engine.orders.values()],
            "trades": len(self.engine.trades),
        }
        if self.perp is not None:
            perp = self.perp
            body["futures"] = {
                "wallet": str(perp.account.wallet),
                "positions": [position_risk(perp, p, 2) for p in perp.account.positions.values() if p.amt],
                "orders": [perp_order_json(o) for o in perp.orders.values()],
                "open_algo_orders": len(perp.open_algos()),
                "trades": len(perp.fills),
                "next_funding_time": perp.next_funding_ms,
                "countdowns": {s: c.countdown_ms for s, c in perp.countdowns.items()},
            }
        return body

    @property
    def futures(self) -> PerpEngine:
        """The USDⓈ-M futures account (``market`` usdm or both)."""
        if self.perp is None:
            raise RuntimeError("this simulator serves spot only: start it with market='usdm' or 'both'")
        return self.perp

    def mark_price(self, symbol: str) -> Decimal:
        """Current mark price of the perpetual ``symbol``."""
        return self.futures.mark(symbol)

    def schedule_funding(self, seconds: float) -> int:
        """Bring the next funding time to ``seconds`` (market time) from now; returns it (ms). It is charged by
        the next tick after that time."""
        return self.futures.schedule_funding(int(seconds * 1000))

    @property
    def rest_api(self) -> RestApi:
        """The REST application's state (for tests)."""
        return self._rest

    @property
    def user_stream_subscriptions(self) -> int:
        """Live user-data stream subscriptions (WS-API); lets tests wait until a watcher is listening."""
        return self.streams.user_subscriptions

    @property
    def market_stream_connections(self) -> int:
        """Open market-stream websocket connections."""
        return self.streams.market_connections

    def market_stream_subscribed(self, stream: str) -> bool:
        """Whether some connection listens to market stream ``stream`` (e.g. "btcusdt@ticker")."""
        return any(sub.names_for(stream) for sub in self.streams.market.connections.values())

    # ----- test hooks ------------------------------------------------------------------------------------
    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        """Move the price at once (rounded to the tick), print a trade, match resting orders, push tickers."""
        feed = self.engine.feed(symbol)
        new_price = feed.set_price(Decimal(price))
        self._print_synthetic_trade(symbol)
        self.engine.on_price(symbol)
        self.streams.market.publish_prices(symbol)
        self._perp_on_price(symbol)
        return new_price

    def pause_feed(self) -> None:
        """Freeze prices: ticks keep printing trades and tickers at the current price."""
        self._paused = True

    def resume_feed(self) -> None:
        """Let the random walk move prices again."""
        self._paused = False

    def hold_price(self, symbol: str, holder: int) -> None:
        """Keep the random walk of ``symbol`` still while ``holder`` (a fault id) moves the price itself."""
        self._held.setdefault(symbol, set()).add(holder)

    def release_price(self, symbol: str, holder: int) -> None:
        """Let the walk move ``symbol`` again once no holder is left."""
        self._held.get(symbol, set()).discard(holder)

    def price_frozen(self, symbol: str) -> bool:
        """The walk does not move ``symbol`` now (paused, held by a price move, or a price-freeze fault)."""
        return (
            self._paused
            or bool(self._held.get(symbol))
            or self.faults.is_active("price-freeze", symbol=symbol) is not None
        )

    def tick(self) -> None:
        """Advance every symbol one step (what the background feed does each ``tick_interval``)."""
        now = self.clock.now_ms()
        for symbol, feed in self.feeds.items():
            if not self.price_frozen(symbol):
                replay = self.replays.get(symbol)
                if replay is not None:
                    step_ms = self.clock.market_seconds(self.tick_interval) * 1000
                    feed.set_price(replay.price_at(now, feed.spec.tick_size, step_ms, self.walk))
                else:
                    feed.next_price()
            self._print_synthetic_trade(symbol, now)
            self.engine.on_price(symbol)
            self.streams.market.publish_prices(symbol)
            self._perp_on_price(symbol)
        if self.perp is not None:
            self.perp.settle_due_funding()
        self.streams.expire_listen_keys()

    def walk_to(self, target_ms: int) -> None:
        """Move a stepped clock to just before ``target_ms`` through every point of the replayed candles that a
        coarse tick would step over (``Replay.points_between``), each a price the venue's matching engine and tape
        see at its own market time, with no market push (the engine hears of the candle, and of any fill, as the
        venue pushes them; the tick at ``target_ms`` pushes the market). A stop resting inside a wick is reached
        at any tick (decision GATE-25). Sets ``walk``: the ticks then read the last point reached."""
        self.walk = True
        now = self.clock.now_ms()
        step_ms = self.clock.market_seconds(self.tick_interval) * 1000
        due: dict[int, list[tuple[str, Decimal]]] = {}
        for symbol, replay in self.replays.items():
            for t, price in replay.points_between(now, target_ms, step_ms):
                due.setdefault(t, []).append((symbol, price))
        for t in sorted(due):
            self.clock.advance(t - self.clock.now_ms())
            for symbol, price in due[t]:
                if self.price_frozen(symbol):
                    continue
                self.feeds[symbol].set_price(price)
                self._print_synthetic_trade(symbol, t)
                if self.engine.rests(symbol):  # else nothing to fill: the tick's own move refills the book
                    self.engine.on_price(symbol)
                if self.perp is not None:
                    self.perp.on_price(symbol)

    # ----- internals -------------------------------------------------------------------------------------
    def _add_routes(self, router: web.UrlDispatcher) -> None:
        self._control.add_routes(router)
        if self._perp_routes is not None:
            self._perp_routes.add_routes(router)

    def _perp_on_price(self, symbol: str) -> None:
        """Futures side of a price move: fills, triggers, liquidations, then the mark-price streams."""
        if self.perp is None:
            return
        self.perp.on_price(symbol)
        market = self.streams.market
        if not market.connections:
            return
        key, now = symbol.lower(), self.clock.now_ms()
        for name in (f"{key}@markPrice@1s", f"{key}@markPrice"):
            if market.wanted(name):
                market.push(name, mark_price_event(self.perp, symbol, now))
        if market.wanted("!markPrice@arr@1s") or market.wanted("!markPrice@arr"):
            rows = [mark_price_event(self.perp, s, now) for s in self.perp.specs]
            for name in ("!markPrice@arr@1s", "!markPrice@arr"):
                if market.wanted(name):
                    market.push(name, rows)  # type: ignore[arg-type]

    def _on_perp_event(self, event: PerpEvent) -> None:
        assert self.perp is not None
        if isinstance(event, PerpOrderUpdate):
            body = order_trade_update(event)
        elif isinstance(event, PerpAccountUpdate):
            body = account_update(self.perp, event.reason, event.symbols, event.time)
        elif isinstance(event, PerpAlgoUpdate):
            body = algo_update(event.algo, event.time)
        else:
            return
        self.streams.send_perp_user(body)

    async def _housekeeping_loop(self) -> None:
        """The venue's own clock for countdownCancelAll: runs with no client connected, in stepped mode too."""
        assert self.perp is not None
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            try:
                self.perp.expire_countdowns()
            except Exception:  # task boundary: one bad round must not stop the clock
                log.exception("countdown check failed")

    def _print_synthetic_trade(self, symbol: str, now: int | None = None) -> None:
        """Print one trade at the feed's price. ``now``: the market time that price is for (a tick's): a fast clock
        read again here could stamp a replayed minute's price into the next minute."""
        feed = self.feeds[symbol]
        if now is None:
            now = self.clock.now_ms()
        replay = self.replays.get(symbol)
        if replay is not None:  # the file's volume decides the size; the generator still draws its side
            buyer_is_maker = feed.synthetic_aggressor()
            print_ms = replay.print_ms(self.clock.market_seconds(self.tick_interval) * 1000, self.walk)
            qty = replay.trade_qty(now, print_ms, feed.spec)
        else:
            qty, buyer_is_maker = feed.synthetic_trade_qty()
        self.streams.on_event(feed.record_trade(feed.price, qty, now, buyer_is_maker))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.tick()
            except Exception:  # task boundary: one bad tick must not stop the feed
                log.exception("price tick failed")
