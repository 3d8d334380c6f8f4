"""The go/no-go checklist: every pre-launch check of the runbooks, each PASS / WARN / FAIL with its evidence.

Runbook 000 §1 (System Validation, Testnet Trading, Dry-Run Stability) and runbook 003 ("Automated Pre-flight
Checks", "Pre-live Checklist") as one list. Each check says what it measured, against which threshold, and how to
fix a failure. Some checks are FAIL only in live mode and WARN otherwise (a stop-loss or a daily loss limit turned
off, a NO-GO validation report, unproven stability): paper trading is where those are tried out. GO means no FAIL.

The checklist is run by the engine (``Engine.preflight``, through the command path as ``preflight``), by
``cockpit preflight``, and before any live start, which it refuses on a FAIL. Each run is stored with its evidence
(``ChecklistCompleted``).

Why one module of this length: the checks run in one order and share what they measured (server time, balances,
prices); each check is a short method, and splitting them would pass that state around instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.gate import config_checks
from engine.gate.checklist import Check, Checklist, Status
from engine.gate.history_checks import stability, validation_report
from engine.gate.smoke import SmokeTrade
from engine.kernel.config import Settings
from engine.store.db import Store
from engine.trading.risk import Exposure, limit_refusal
from engine.venue import errors as vx
from engine.venue.adapter import Venue, dec

log = logging.getLogger(__name__)

# Binance refuses a signed request stamped more than 1 s ahead of its clock (and one older than recvWindow).
SKEW_FAIL_MS = 1000.0


@dataclass
class StreamProbe:
    """How the streams check sees an engine's streams: each stream's last event (monotonic seconds) and whether
    the user-data connection is open. Without one, the check opens its own watches on the venue client."""

    last_event: Callable[[str], float | None]
    user_connected: Callable[[], bool]


class Preflight:
    """Runs the checklist against a venue client, the store and the configuration."""

    def __init__(
        self,
        settings: Settings,
        *,
        venue: Venue | None,
        venue_label: str,
        store: Store | None,
        confirm_live: bool,
        actor: str,
        streams: StreamProbe | None = None,
        smoke: SmokeTrade | None = None,
        refusal: Callable[[str, str, Decimal, Decimal | None, Decimal | None], str | None] | None = None,
        venue_problem: str = "",
        mode: str | None = None,
        deadman: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        # The mode the engine runs in now (an operator may have switched it since start), else the configured one.
        if mode is not None and mode != settings.engine.mode:
            settings = settings.model_copy(update={"engine": settings.engine.model_copy(update={"mode": mode})})
        self.settings = settings
        self.mode = settings.engine.mode
        self.live = self.mode == "live"
        self.venue = venue
        self.venue_label = venue_label
        self.store = store
        self.confirm_live = confirm_live
        self.actor = actor
        self.streams = streams
        self.smoke = smoke
        self.refusal = refusal  # the engine's own order checks, without sending (None: the risk rules alone)
        self.venue_problem = venue_problem  # why the venue client cannot be used, if known
        self.deadman = deadman  # a running engine's dead-man's switch state (perps), None: no engine
        self._skew_ms: float | None = None
        self._balances: dict[str, tuple[Decimal, Decimal]] = {}
        self._prices: dict[str, Decimal] = {}

    async def run(self) -> Checklist:
        start = time.perf_counter()
        ts = datetime.now(UTC).isoformat()
        checks: list[Check] = []
        steps: list[tuple[str, str, Callable[[], Awaitable[Check] | Check]]] = [
            (
                "mode",
                "Mode is what the operator asked for",
                lambda: config_checks.mode(self.settings, self.confirm_live),
            ),
            ("venue", "Venue reachable", self._reachable),
            ("clock_skew", "Clock skew", self._clock_skew),
            ("api_key", "API key valid", self._api_key),
            ("key_permissions", "Key permissions: trading on, withdrawals off", self._permissions),
            ("balance", "Balance at least the minimum", self._balance),
            ("symbols", "Every configured symbol trades", self._symbols),
        ]
        if self.smoke is not None and not self.live:
            steps.append(("smoke_trade", "Smoke trade (market fill, far limit cancelled)", self._smoke))
        steps += [
            ("streams", "Market and user streams deliver events", self._streams),
            ("rate_limit", "Rate limiting on", lambda: config_checks.rate_limit(self.settings)),
            ("stop_loss", "Stop-loss set", lambda: config_checks.stop_loss(self.settings)),
            ("stops_at_venue", "Stops rest at the venue", self._stops_at_venue),
            ("daily_loss_limit", "Daily loss limit set", lambda: config_checks.daily_loss_limit(self.settings)),
            ("risk_self_test", "Risk self-test: an order over a limit is refused", self._risk_self_test),
            ("alert_sinks", "Alert sinks configured", lambda: config_checks.alert_sinks(self.settings)),
            ("health_loopback", "Health and metrics on loopback", lambda: config_checks.health(self.settings)),
            ("validation_report", "GO paper-validation report", self._validation),
            ("stability", "Stability over the last 24 h of paper / dry-run", self._stability),
        ]
        if self.settings.venue.market == "usdm":
            steps += [
                ("leverage", "Leverage at most the maximum", self._leverage),
                ("margin_type", "Margin type as configured", self._margin_type),
                ("position_mode", "One-way position mode", self._position_mode),
                ("deadman", "Dead-man's switch armed", self._deadman),
            ]
        if self.live or self.settings.chat.telegram.enabled or self.settings.chat.slack.enabled:
            # Live asks for it (runbook 003 pre-live checklist 7); elsewhere it is listed once a bot is set up.
            steps.append(("chat_control", "Chat control configured", lambda: config_checks.chat_control(self.settings)))
        for code, title, step in steps:
            try:
                result = step()
                check = await result if inspect.isawaitable(result) else result
            except vx.BaseError as exc:
                check = Check(
                    code,
                    title,
                    Status.FAIL,
                    f"the venue answered {type(exc).__name__}: {str(exc)[:200]}",
                    {"error": type(exc).__name__},
                    "see the detail; fix the venue connection or the key",
                )
            except Exception as exc:  # one check that cannot run is a FAIL of that check, never a crash of them all
                log.error("preflight check %s could not run", code, exc_info=exc)
                check = Check(
                    code,
                    title,
                    Status.FAIL,
                    f"the check could not run: {type(exc).__name__}: {exc}",
                    {"error": type(exc).__name__},
                    "report this; fix what the detail names and run again",
                )
            checks.append(Check(code, title, check.status, check.detail, check.evidence, check.fix))
        return Checklist(
            tuple(checks), self.mode, self.venue_label, ts, self.actor, (time.perf_counter() - start) * 1000
        )

    # ------------------------------------------------------------ the venue

    def _venue_missing(self, code: str, title: str) -> Check | None:
        if self.venue is None:
            why = self.venue_problem or "no venue client"
            return Check(code, title, Status.FAIL, f"cannot check: {why}", {}, "fix the venue connection first")
        return None

    async def _reachable(self) -> Check:
        c = ("venue", "Venue reachable")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        warn_ms = self.settings.monitors.rest_latency_warn_ms
        pinged = None
        start = time.time()
        try:
            # Runbook 000 §1 "API Connectivity": GET /api/v3/ping, then GET /api/v3/time.
            if await self.venue.probe_ping():
                pinged = round((time.time() - start) * 1000, 1)
                start = time.time()
            server_ms = await self.venue.probe_server_time(self.settings.venue.symbols[0])
        except vx.BaseError as exc:
            return Check(
                *c,
                Status.FAIL,
                f"{self.venue_label} did not answer: {type(exc).__name__}: {str(exc)[:160]}",
                {"error": type(exc).__name__},
                "check the network, [venue] rest_url and the venue's status",
            )
        end = time.time()
        latency = (end - start) * 1000
        if server_ms is not None:
            self._skew_ms = float(server_ms) - (start + end) / 2 * 1000
        evidence = {"ping_ms": pinged, "latency_ms": round(latency, 1), "server_time": server_ms, "warn_ms": warn_ms}
        if latency > warn_ms:
            return Check(
                *c,
                Status.WARN,
                f"answered in {latency:.0f} ms (over {warn_ms:g} ms)",
                evidence,
                "check the network path to the venue (runbook 000 §3 'High Latency')",
            )
        ping = "" if pinged is None else f"ping in {pinged:.0f} ms, "
        return Check(*c, Status.PASS, f"{self.venue_label}: {ping}server time in {latency:.0f} ms", evidence)

    def _clock_skew(self) -> Check:
        c = ("clock_skew", "Clock skew")
        warn = self.settings.monitors.clock_skew_warn_ms
        if self._skew_ms is None:
            return Check(
                *c,
                Status.FAIL if self.venue is None else Status.WARN,
                "not measured (the venue gave no server time)",
                {},
                "see the venue check",
            )
        skew = self._skew_ms
        evidence = {"skew_ms": round(skew, 1), "warn_ms": warn, "fail_ms": SKEW_FAIL_MS}
        if abs(skew) > SKEW_FAIL_MS:
            return Check(
                *c,
                Status.FAIL,
                f"this machine's clock is {skew:+.0f} ms off the venue's (over "
                f"{SKEW_FAIL_MS:g} ms: signed requests are refused)",
                evidence,
                "synchronise the clock (chrony / `timedatectl set-ntp true`)",
            )
        if abs(skew) > warn:
            return Check(
                *c,
                Status.WARN,
                f"{skew:+.0f} ms off the venue's clock (over {warn:g} ms)",
                evidence,
                "synchronise the clock (chrony / `timedatectl set-ntp true`)",
            )
        return Check(*c, Status.PASS, f"{skew:+.0f} ms off the venue's clock (limit {warn:g} ms)", evidence)

    async def _api_key(self) -> Check:
        c = ("api_key", "API key valid")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        cfg = self.settings.venue
        if cfg.exchange != "sim" and (cfg.api_key is None or cfg.api_secret is None):
            return Check(
                *c,
                Status.FAIL,
                "no API key",
                {},
                "set COCKPIT_VENUE__API_KEY and COCKPIT_VENUE__API_SECRET in the environment or .env",
            )
        try:
            balances = await self.venue.probe_balances()
        except vx.AuthenticationError as exc:
            return Check(
                *c,
                Status.FAIL,
                f"the venue refused the key: {str(exc)[:160]}",
                {"error": type(exc).__name__},
                "check the key pair (and that it was not revoked); create a new trade-only key",
            )
        except vx.InvalidNonce as exc:
            return Check(
                *c,
                Status.FAIL,
                f"signed request refused for its timestamp: {str(exc)[:160]}",
                {"error": "InvalidNonce"},
                "synchronise this machine's clock",
            )
        self._balances.update(balances)
        return Check(
            *c, Status.PASS, "a signed request (account balances) was accepted", {"assets": len(self._balances)}
        )

    async def _permissions(self) -> Check:
        c = ("key_permissions", "Key permissions: trading on, withdrawals off")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        if not self.venue.exchange_id.startswith("binance"):
            return Check(
                *c,
                Status.WARN,
                f"not checked: only Binance reports a key's permissions; {self.venue.exchange_id} does not",
                {},
                "check on the exchange that the key cannot withdraw",
            )
        try:
            r = await self.venue.key_permissions()
        except (vx.NotSupported, vx.BadRequest, vx.ExchangeNotAvailable) as exc:
            return Check(
                *c,
                Status.WARN,
                f"the venue did not report the key's permissions ({type(exc).__name__}; a testnet has no /sapi)",
                {"error": type(exc).__name__},
                "check on the exchange's API management page that withdrawals are off",
            )
        evidence = {
            k: r.get(k) for k in ("enableReading", "enableSpotAndMarginTrading", "enableWithdrawals", "ipRestrict")
        }
        if r.get("enableWithdrawals"):
            return Check(
                *c,
                Status.FAIL,
                "the key can WITHDRAW: a leaked key could empty the account",
                evidence,
                "create a key with spot trading only, withdrawals off (runbook 003), and use that",
            )
        if not r.get("enableSpotAndMarginTrading"):
            return Check(
                *c,
                Status.FAIL,
                "the key cannot trade spot",
                evidence,
                "enable spot trading on the key (withdrawals stay off)",
            )
        if not r.get("ipRestrict"):
            return Check(
                *c,
                Status.WARN,
                "trading on, withdrawals off; the key is not restricted to this machine's IP",
                evidence,
                "restrict the key to the trading host's IP on the exchange",
            )
        return Check(*c, Status.PASS, "trading on, withdrawals off, IP-restricted", evidence)

    async def _balance(self) -> Check:
        c = ("balance", "Balance at least the minimum")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        quote = self.settings.engine.quote_asset
        minimum = self.settings.preflight.min_balance
        if not self._balances:
            return Check(
                *c,
                Status.FAIL,
                "balances unknown (the key check failed)",
                {"min": str(minimum)},
                "fix the API key first",
            )
        free, used = self._balances.get(quote, (Decimal(0), Decimal(0)))
        evidence = {"asset": quote, "free": str(free), "locked": str(used), "min": str(minimum)}
        if free + used < minimum:
            return Check(
                *c,
                Status.FAIL,
                f"{free + used} {quote} is under the minimum {minimum} {quote}",
                evidence,
                f"fund the account with at least {minimum} {quote} or lower [preflight] min_balance",
            )
        return Check(*c, Status.PASS, f"{free + used} {quote} (minimum {minimum})", evidence)

    async def _symbols(self) -> Check:
        c = ("symbols", "Every configured symbol trades")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        markets = self.venue.markets or await self.venue.load_markets()
        symbols = self.settings.venue.symbols
        missing_symbols = [s for s in symbols if s not in markets]
        inactive = [s for s in symbols if s in markets and markets[s].get("active") is False]
        evidence = {"symbols": list(symbols), "missing": missing_symbols, "inactive": inactive}
        if missing_symbols or inactive:
            return Check(
                *c,
                Status.FAIL,
                f"not traded on {self.venue_label}: {', '.join(missing_symbols + inactive)}",
                evidence,
                "fix [venue] symbols",
            )
        for symbol in symbols:
            ticker = await self.venue.probe_ticker(symbol)
            if (last := dec(ticker.get("last"))) is not None:
                self._prices[symbol] = last
        return Check(*c, Status.PASS, f"{', '.join(symbols)} listed and trading", evidence)

    # ------------------------------------------------------------ perpetual futures (runbook 002)

    async def _leverage(self) -> Check:
        """Runbook 002 RISK_MAX_LEVERAGE: each symbol's leverage at the venue at most [risk] max_leverage."""
        c = ("leverage", "Leverage at most the maximum")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        cap = self.settings.risk.max_leverage
        held = await self.venue.symbol_settings(self.settings.venue.symbols)
        over = {s: str(lev) for s, (lev, _) in held.items() if lev is None or lev > cap}
        evidence = {"max_leverage": str(cap), "leverage": {s: str(lev) for s, (lev, _) in held.items()}}
        if over:
            return Check(
                *c,
                Status.FAIL,
                f"over {cap}x (or unknown) at the venue: " + ", ".join(f"{s} {v}x" for s, v in over.items()),
                evidence,
                "lower the leverage at the venue, or let the engine set [risk] leverage (reconnect)",
            )
        return Check(*c, Status.PASS, f"every symbol at most {cap}x ({evidence['leverage']})", evidence)

    async def _margin_type(self) -> Check:
        c = ("margin_type", "Margin type as configured")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        want = self.settings.risk.margin_mode
        held = await self.venue.symbol_settings(self.settings.venue.symbols)
        wrong = {s: mode for s, (_, mode) in held.items() if mode != want}
        evidence = {"margin_mode": want, "at_venue": {s: mode for s, (_, mode) in held.items()}}
        if wrong:
            return Check(
                *c,
                Status.FAIL,
                f"not {want} at the venue: " + ", ".join(f"{s} {m}" for s, m in wrong.items()),
                evidence,
                "the venue changes it only with no position and no open order in the symbol: close them, then "
                "reconnect (the engine sets [risk] margin_mode)",
            )
        return Check(*c, Status.PASS, f"{want} on every symbol", evidence)

    async def _position_mode(self) -> Check:
        c = ("position_mode", "One-way position mode")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        mode = await self.venue.position_mode()
        if mode != "one-way":
            return Check(
                *c,
                Status.FAIL,
                f"the account is in {mode} mode: cockpit trades one signed position per symbol",
                {"position_mode": mode},
                "switch the account to one-way mode at the venue",
            )
        return Check(*c, Status.PASS, "one-way", {"position_mode": mode})

    async def _deadman(self) -> Check:
        """The venue cancels a dead engine's orders within [venue] deadman_s: set, and (with an engine) armed."""
        c = ("deadman", "Dead-man's switch armed")
        seconds = self.settings.venue.deadman_s
        if seconds <= 0:
            return Check(
                *c,
                Status.FAIL if self.live else Status.WARN,
                "off ([venue] deadman_s = 0): a dead engine's working orders stay at the venue",
                {"deadman_s": seconds},
                "set [venue] deadman_s (runbook 002: nothing rests that no one watches)",
            )
        state = self.deadman() if self.deadman is not None else None
        if state is None:
            if (missing := self._venue_missing(*c)) is not None:
                return missing
            assert self.venue is not None
            # No engine runs: the venue is asked whether it takes the countdown, with 0 (which arms nothing).
            await self.venue.arm_deadman(self.settings.venue.symbols[0], 0)
            return Check(*c, Status.PASS, f"{seconds:g}s; the venue takes countdownCancelAll", {"deadman_s": seconds})
        if not state.get("armed"):
            why = state.get("failure") or state.get("held_back") or "not renewed yet"
            return Check(*c, Status.FAIL, f"not armed: {why}", dict(state), "see DEADMAN_FAILED; check the venue")
        return Check(*c, Status.PASS, f"armed, renewed {state.get('renewed_s_ago')}s ago ({seconds:g}s)", dict(state))

    def _stops_at_venue(self) -> Check:
        """Runbook 003 "Emergency Procedures": stop-losses on-exchange protect a position while the engine is down.
        Off by configuration is a WARN; a venue that cannot hold them (an order type it lacks) FAILs in live."""
        c = ("stops_at_venue", "Stops rest at the venue")
        if not self.settings.risk.stops_at_venue:
            return Check(
                *c,
                Status.WARN,
                "[risk] stops_at_venue = false: stops live in the engine only and protect nothing while it is down",
                {"stops_at_venue": False},
                "set [risk] stops_at_venue = true",
            )
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        symbols = [s for s in self.settings.venue.symbols if s in self.venue.markets]
        support = {s: self.venue.stop_orders(s) for s in symbols}
        evidence = {"stop_orders": support, "offset_pct": str(self.settings.risk.stop_limit_offset_pct)}
        lacking = [s for s, ok in support.items() if ok is False]
        unknown = [s for s, ok in support.items() if ok is None]
        if lacking:
            return Check(
                *c,
                config_checks.live_fail(self.settings),
                f"{self.venue_label} takes no stop-limit order on {', '.join(lacking)}: those positions would be "
                "protected only while the engine runs",
                evidence,
                "trade symbols whose stop-limit orders the venue takes, or accept engine-only stops in paper",
            )
        if unknown:
            return Check(
                *c,
                Status.WARN,
                f"{self.venue_label} does not say whether it takes stop-limit orders on {', '.join(unknown)}",
                evidence,
                "place a stop on the venue's testnet and check it rests",
            )
        return Check(
            *c,
            Status.PASS,
            f"stop-limit orders rest at the venue ({', '.join(symbols)}), limit {evidence['offset_pct']}% under",
            evidence,
        )

    async def _smoke(self) -> Check:
        assert self.smoke is not None
        return await self.smoke.run(self._prices)

    async def _streams(self) -> Check:
        c = ("streams", "Market and user streams deliver events")
        if (missing := self._venue_missing(*c)) is not None:
            return missing
        assert self.venue is not None
        timeout = self.settings.preflight.stream_timeout_s
        symbols = self.settings.venue.symbols
        evidence: dict[str, Any] = {"timeout_s": timeout}
        quiet: list[str] = []

        async def market(symbol: str) -> None:
            name = f"ticker {symbol}"
            age = self._stream_age(name)
            if age is None or age > timeout:  # nothing recent from the engine's own watch: watch it here
                assert self.venue is not None
                try:
                    async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancellation (3.11)
                        await self.venue.probe_ticker_stream(symbol)
                    age = 0.0
                except (TimeoutError, vx.BaseError) as exc:
                    quiet.append(f"{name}: {type(exc).__name__}")
                    age = None
            evidence[name] = None if age is None else round(age, 2)

        user, *_ = await asyncio.gather(self._user_stream(timeout), *(market(s) for s in symbols))
        evidence["user"] = user
        smoke = self.smoke.stream_evidence() if self.smoke is not None else None
        if smoke is not None:
            evidence["orders_stream"] = smoke
        if quiet or user != "connected":
            parts = quiet + ([] if user == "connected" else [f"user stream: {user}"])
            return Check(
                *c,
                Status.FAIL,
                "no event within the timeout: " + "; ".join(parts),
                evidence,
                "check [venue] ws_url, the network's websocket access and the venue's status",
            )
        detail = f"market data from {len(symbols)} ticker stream(s); user-data stream connected"
        if smoke:
            detail += f"; {smoke}"
        return Check(*c, Status.PASS, detail, evidence)

    def _stream_age(self, name: str) -> float | None:
        if self.streams is None:
            return None
        last = self.streams.last_event(name)
        return None if last is None else time.monotonic() - last

    async def _user_stream(self, timeout: float) -> str:
        assert self.venue is not None
        if self.streams is not None and self.streams.user_connected():
            return "connected"
        if self.venue.user_stream_connected():
            return "connected"
        watch = asyncio.ensure_future(self.venue.probe_balance_stream())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.venue.user_stream_connected():
                    return "connected"
                if watch.done():
                    exc = watch.exception()
                    if exc is not None:
                        return f"refused: {type(exc).__name__}"
                await asyncio.sleep(0.05)
            return f"not connected within {timeout:g}s"
        finally:
            watch.cancel()

    async def _risk_self_test(self) -> Check:
        """Runbook 000 §1 "RiskManager Enforcement": an order over a limit must be refused, never sent."""
        c = ("risk_self_test", "Risk self-test: an order over a limit is refused")
        risk = self.settings.risk
        symbol = self.settings.venue.symbols[0]
        price = self._prices.get(symbol)
        quote = self.settings.engine.quote_asset
        equity = sum(self._balances.get(quote, (Decimal(0), Decimal(0))), Decimal(0))
        assumed = price is None or equity <= 0  # the venue gave neither: the rules are tested on round figures
        if price is None or equity <= 0:
            price, equity = price or Decimal("100"), equity if equity > 0 else Decimal("10000")
        value = equity * risk.max_position_pct / 100 * 2  # twice the largest position allowed
        amount = value / price
        stop = price * Decimal("0.9")
        exposure = Exposure(
            equity=equity,
            position_value=Decimal(0),
            open_positions=0,
            holds_symbol=False,
            drawdown_pct=Decimal(0),
            daily_loss_pct=Decimal(0),
        )
        probes: dict[str, str | None] = {
            "position over max_position_pct": limit_refusal(risk, exposure, "buy", value, stop, price)
        }
        if risk.daily_loss_limit_pct > 0:
            at_limit = Exposure(equity, Decimal(0), 0, False, Decimal(0), risk.daily_loss_limit_pct)
            probes["entry at the daily loss limit"] = limit_refusal(risk, at_limit, "buy", value / 10, stop, price)
        if risk.require_stop_loss:
            probes["entry without a stop-loss"] = limit_refusal(risk, exposure, "buy", value / 10, None, price)
        if self.refusal is not None:
            # The engine's own order path, up to the point where an order would be stored and sent.
            probes["the engine's order checks (not sent)"] = self.refusal(symbol, "buy", amount, price, stop)
        evidence = {
            "symbol": symbol,
            "price": str(price),
            "equity": str(equity),
            "assumed": assumed,
            "order_value": str(round(value, 2)),
            "max_position_pct": str(risk.max_position_pct),
            "refusals": probes,
        }
        passed = [k for k, v in probes.items() if v is None]
        if passed:
            return Check(
                *c,
                Status.FAIL,
                f"NOT refused: {', '.join(passed)}",
                evidence,
                "do not go live: the risk checks let a limit breach through; report it",
            )
        return Check(
            *c,
            Status.PASS,
            f"{len(probes)} order(s) over a limit refused, none sent: "
            + "; ".join(f"{k}: {v}" for k, v in probes.items())[:300],
            evidence,
        )

    # ------------------------------------------------------------ what the store holds

    def _validation(self) -> Check:
        return validation_report(self.settings, self.store, self.live)

    def _stability(self) -> Check:
        return stability(self.settings, self.store, self.live)


async def run_standalone(settings: Settings, store: Store | None, *, confirm_live: bool, actor: str) -> Checklist:
    """The checklist with a venue client of its own, with no engine running: the live start's gate, and
    ``cockpit preflight`` in live mode (no smoke trade there: the money is real)."""
    cfg = settings.venue
    venue: Venue | None = None
    problem = ""
    if cfg.exchange == "sim":
        problem = "the built-in simulator exists only inside a running engine"
    else:
        venue = Venue.from_settings(cfg, settings.engine.mode, backoff_s=(0.5,))
        try:
            await venue.load_markets()
        except vx.BaseError as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:160]}"
    try:
        return await Preflight(
            settings,
            venue=venue,
            venue_label=cfg.exchange,
            store=store,
            confirm_live=confirm_live,
            actor=actor,
            venue_problem=problem,
        ).run()
    finally:
        if venue is not None:
            await venue.close()
