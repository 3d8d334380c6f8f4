"""The checklist's checks that ask the venue: reachable, this machine's clock against the venue's, the API key and
what it may do, the balance, the symbols, stops resting at the venue, and its market and user streams (runbook 000
§1, runbook 003 "Automated Pre-flight Checks").

They run in the checklist's order and build on what the checks before them measured: the server time (the clock
skew), the balances (the balance check, the risk self-test) and the last prices (the smoke trade, the risk
self-test), kept here for the checks after them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.gate import config_checks
from engine.gate.checklist import Check, Status
from engine.gate.smoke import SmokeTrade
from engine.kernel.config import Settings
from engine.venue import errors as vx
from engine.venue.adapter import Venue, dec

# Binance refuses a signed request stamped more than 1 s ahead of its clock (and one older than recvWindow).
SKEW_FAIL_MS = 1000.0


@dataclass
class StreamProbe:
    """How the streams check sees an engine's streams: each stream's last event (monotonic seconds) and whether
    the user-data connection is open. Without one, the check opens its own watches on the venue client."""

    last_event: Callable[[str], float | None]
    user_connected: Callable[[], bool]


class VenueChecks:
    """The venue client's checks, in the checklist's order, and what they measured."""

    def __init__(
        self,
        settings: Settings,
        *,
        venue: Venue | None,
        venue_label: str,
        venue_problem: str,
        stream_probe: StreamProbe | None,
        smoke: SmokeTrade | None,
    ) -> None:
        self.settings = settings
        self.venue = venue
        self.venue_label = venue_label
        self.venue_problem = venue_problem  # why the venue client cannot be used, if known
        self.stream_probe = stream_probe
        self.smoke = smoke
        self._skew_ms: float | None = None
        self.balances: dict[str, tuple[Decimal, Decimal]] = {}
        self.prices: dict[str, Decimal] = {}

    def missing(self, code: str, title: str) -> Check | None:
        """The FAIL of a check that needs the venue client when there is none; None when there is one."""
        if self.venue is None:
            why = self.venue_problem or "no venue client"
            return Check(code, title, Status.FAIL, f"cannot check: {why}", {}, "fix the venue connection first")
        return None

    async def reachable(self) -> Check:
        c = ("venue", "Venue reachable")
        if (missing := self.missing(*c)) is not None:
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

    def clock_skew(self) -> Check:
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

    async def api_key(self) -> Check:
        c = ("api_key", "API key valid")
        if (missing := self.missing(*c)) is not None:
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
        self.balances.update(balances)
        return Check(
            *c, Status.PASS, "a signed request (account balances) was accepted", {"assets": len(self.balances)}
        )

    async def permissions(self) -> Check:
        c = ("key_permissions", "Key permissions: trading on, withdrawals off")
        if (missing := self.missing(*c)) is not None:
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

    async def balance(self) -> Check:
        c = ("balance", "Balance at least the minimum")
        if (missing := self.missing(*c)) is not None:
            return missing
        quote = self.settings.engine.quote_asset
        minimum = self.settings.preflight.min_balance
        if not self.balances:
            return Check(
                *c,
                Status.FAIL,
                "balances unknown (the key check failed)",
                {"min": str(minimum)},
                "fix the API key first",
            )
        free, used = self.balances.get(quote, (Decimal(0), Decimal(0)))
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

    async def symbols(self) -> Check:
        c = ("symbols", "Every configured symbol trades")
        if (missing := self.missing(*c)) is not None:
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
                self.prices[symbol] = last
        return Check(*c, Status.PASS, f"{', '.join(symbols)} listed and trading", evidence)

    def stops_at_venue(self) -> Check:
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
        if (missing := self.missing(*c)) is not None:
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

    async def streams(self) -> Check:
        c = ("streams", "Market and user streams deliver events")
        if (missing := self.missing(*c)) is not None:
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
        if self.stream_probe is None:
            return None
        last = self.stream_probe.last_event(name)
        return None if last is None else time.monotonic() - last

    async def _user_stream(self, timeout: float) -> str:
        assert self.venue is not None
        if self.stream_probe is not None and self.stream_probe.user_connected():
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
