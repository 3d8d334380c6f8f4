"""Faults on demand: the catalogue of failures the simulator can produce, and the book of active ones.

Each fault has a name, typed options and an active window (``duration`` seconds, ``count`` hits, until cleared, or
at once for one-shot faults). The book logs every start and end with the fault's id, name and options. What a fault
does lives where it happens: the REST middleware, the stream server and the matching engine ask the book whether a
fault of a given name is active (``hit``), and one-shot or timed effects run in ``effects.py``.

Why one module of this length: the catalogue of faults is one table with its documentation, options and
validation; the tests keep docs/simulator.md in step with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger(__name__)


class FaultError(ValueError):
    """Unknown fault name or a bad option; the message says which names and options are valid."""


@dataclass(frozen=True)
class Option:
    """One option of a fault: name, type (int, float, Decimal, str, bool), default, choices, help."""

    name: str
    type: type
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] = ()

    def convert(self, fault: str, value: Any) -> Any:
        """The option's value in its type, or FaultError naming the fault and option."""
        try:
            if self.type is bool:
                if isinstance(value, str):
                    if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                        raise ValueError(value)
                    converted: Any = value.lower() in ("1", "true", "yes", "on")
                else:
                    converted = bool(value)
            elif self.type is Decimal:
                converted = Decimal(str(value))
                if not converted.is_finite():
                    raise ValueError(value)
            elif self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            else:
                converted = self.type(value)
        except (ValueError, TypeError, InvalidOperation):
            raise FaultError(f"{fault}: option {self.name} must be {self.type.__name__}, got {value!r}") from None
        if self.choices and converted not in self.choices:
            raise FaultError(f"{fault}: option {self.name} must be one of {', '.join(map(str, self.choices))}")
        return converted


# Options shared by the REST faults: which requests they touch and how often.
SCOPE = (
    Option("path", str, None, "only requests to this path (a trailing * matches a prefix), e.g. /api/v3/order"),
    Option("method", str, None, "only this HTTP method, e.g. POST"),
    Option("rate", float, 1.0, "fraction of matching requests affected (0..1, seeded)"),
    Option("count", int, None, "end the fault after this many affected requests"),
)


def venue_symbol(name: str) -> str:
    """A fault's ``symbol`` as the venue names it: any listed market, ``SYM07USDT`` or ``SYM07/USDT`` alike."""
    return name.replace("/", "").upper()


ORDER_SCOPE = (
    Option("symbol", str, None, "only orders of this symbol, e.g. BTCUSDT or SYM07USDT (any listed market)"),
    Option("rate", float, 1.0, "fraction of matching requests affected (0..1, seeded)"),
    Option("count", int, None, "end the fault after this many affected requests"),
)
WHICH = Option("which", str, "all", "which connections: market, user or all", choices=("all", "market", "user"))


@dataclass(frozen=True)
class FaultSpec:
    """A kind of fault: its name, what it does, its options; ``one_shot`` faults act once and end at once."""

    name: str
    summary: str
    options: tuple[Option, ...] = ()
    one_shot: bool = False
    ends_itself: bool = False  # ends when its effect is done (a price move, held reports)

    def option(self, name: str) -> Option | None:
        """The option called ``name`` (dashes or underscores), if any."""
        name = name.replace("-", "_")
        return next((o for o in self.options if o.name == name), None)

    def parse(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Convert and complete raw options; FaultError for an unknown or missing one."""
        result: dict[str, Any] = {}
        for key, value in raw.items():
            opt = self.option(key)
            if opt is None:
                valid = ", ".join(o.name for o in self.options) or "none"
                raise FaultError(f"{self.name}: unknown option {key!r} (valid: {valid})")
            if value is not None:
                result[opt.name] = opt.convert(self.name, value)
        for opt in self.options:
            if opt.name not in result:
                if opt.required:
                    raise FaultError(f"{self.name}: option {opt.name} is required")
                result[opt.name] = opt.default
        rate = result.get("rate")
        if rate is not None and not 0 <= rate <= 1:
            raise FaultError(f"{self.name}: option rate must be between 0 and 1")
        count = result.get("count")
        if count is not None and count < 1:
            raise FaultError(f"{self.name}: option count must be at least 1")
        return {o.name: result[o.name] for o in self.options}  # catalogue order, for stable log lines


CATALOGUE: dict[str, FaultSpec] = {
    s.name: s
    for s in (
        # ----- REST ------------------------------------------------------------------------------------------
        FaultSpec(
            "http-status",
            "REST calls answer an HTTP status (429, 418, 500, 502, 503, 504, ...)",
            (
                Option("status", int, None, "HTTP status to answer", required=True),
                Option("code", int, None, "Binance error code for a JSON body (default: a plain-text body)"),
                Option("msg", str, None, "message of the JSON body"),
                Option("retry_after", int, 1, "Retry-After seconds sent with 429 and 418"),
                Option(
                    "ban_after",
                    int,
                    None,
                    "after a 429, requests sent before its Retry-After passed beyond this many "
                    "are banned with 418, as Binance does (default: no ban)",
                ),
                *SCOPE,
            ),
        ),
        FaultSpec(
            "error-code",
            "REST calls answer a Binance error code as JSON {code, msg}",
            (
                Option("code", int, None, "Binance error code, e.g. -1003, -1007, -2010", required=True),
                Option("msg", str, None, "message (default: Binance's text for the code)"),
                Option("status", int, None, "HTTP status (default: Binance's for the code, else 400)"),
                *SCOPE,
            ),
        ),
        FaultSpec(
            "latency",
            "REST answers are delayed by ms plus a random jitter",
            (
                Option("ms", int, None, "added delay in milliseconds", required=True),
                Option("jitter_ms", int, 0, "plus a uniform random 0..jitter_ms (seeded)"),
                *SCOPE,
            ),
        ),
        FaultSpec(
            "hang",
            "REST requests hang without being processed, then answer 504 (past the client timeout)",
            (Option("seconds", float, 30.0, "how long each request hangs"), *SCOPE),
        ),
        FaultSpec(
            "accept-then-hang",
            "REST requests are processed at once (an order IS placed) but the answer is held",
            (
                Option("seconds", float, 30.0, "how long the answer is held"),
                Option(
                    "status",
                    int,
                    None,
                    "then answer this HTTP status instead (a gateway that lost the answer: 502, "
                    "503, 504), e.g. with seconds 0",
                ),
                *SCOPE,
            ),
        ),
        FaultSpec(
            "garbage",
            "REST calls answer HTTP 200 with a body that is not Binance's (a proxy page, the wrong JSON, "
            "a cut-off body)",
            (
                Option(
                    "body",
                    str,
                    "html",
                    "what comes back: html, json (valid JSON of the wrong shape) or truncated",
                    choices=("html", "json", "truncated"),
                ),
                *SCOPE,
            ),
        ),
        FaultSpec(
            "maintenance",
            "every REST call answers HTTP 503 {code 1, System is under maintenance.}; "
            "new websocket connections are refused",
            (),
        ),
        # ----- websockets ------------------------------------------------------------------------------------
        FaultSpec(
            "ws-drop",
            "close every websocket connection now (clients may reconnect)",
            (
                WHICH,
                Option("abrupt", bool, True, "drop the TCP connection without a close frame (false: close code 1001)"),
            ),
            one_shot=True,
        ),
        FaultSpec("ws-silence", "websocket connections stay open and answer pings but push nothing (stale)", (WHICH,)),
        FaultSpec("ws-refuse", "new websocket connections are refused with HTTP 503 at the handshake", (WHICH,)),
        FaultSpec("user-stream-end", "end every user-data subscription with eventStreamTerminated", (), one_shot=True),
        # ----- orders ----------------------------------------------------------------------------------------
        FaultSpec(
            "stuck-orders",
            "orders are accepted (NEW) but nothing fills while the fault lasts",
            (Option("symbol", str, None, "only this symbol"),),
        ),
        FaultSpec(
            "cancel-fail",
            "cancels fail with an error and the order stays open",
            (
                Option("code", int, -1000, "Binance error code"),
                Option("msg", str, None, "message (default: Binance's text for the code)"),
                Option("status", int, None, "HTTP status (default: Binance's for the code)"),
                *ORDER_SCOPE,
            ),
        ),
        FaultSpec(
            "order-reject",
            "new orders are rejected with a Binance error code",
            (
                Option("code", int, -2010, "Binance error code"),
                Option("msg", str, None, "message (default: Binance's text for the code)"),
                Option("status", int, None, "HTTP status (default: Binance's for the code)"),
                Option("type", str, None, "only orders of this type, e.g. STOP_LOSS_LIMIT (a stop that cannot rest)"),
                *ORDER_SCOPE,
            ),
        ),
        FaultSpec(
            "foreign-fill",
            "a market order the engine did not place fills on the account (position mismatch)",
            (
                Option("symbol", str, "BTCUSDT", "symbol"),
                Option("side", str, "BUY", "BUY or SELL", choices=("BUY", "SELL")),
                Option("qty", Decimal, Decimal("0.001"), "quantity in the base asset"),
                Option("client_id", str, None, "client order id (default web_<random>, as the Binance web UI)"),
                Option(
                    "market",
                    str,
                    None,
                    "spot or usdm: which account (default: the simulator's own; spot when it serves both)",
                    choices=("spot", "usdm"),
                ),
            ),
            one_shot=True,
        ),
        FaultSpec(
            "duplicate-report",
            "the next execution reports are each sent twice on the user-data stream",
            (Option("count", int, 1, "how many reports to duplicate"),),
            ends_itself=True,
        ),
        FaultSpec(
            "reorder-reports",
            "the next execution reports are held and sent in reverse order",
            (Option("count", int, 2, "how many reports to hold (at least 2)"),),
            ends_itself=True,
        ),
        # ----- market ----------------------------------------------------------------------------------------
        FaultSpec(
            "price-jump",
            "the price moves by percent over seconds, then the walk goes on from there",
            (
                Option("percent", Decimal, None, "signed change, e.g. 5 or -20", required=True),
                Option("seconds", float, 0.0, "spread the move over this many seconds (0: at once)"),
                Option("symbol", str, "BTCUSDT", "symbol"),
            ),
            ends_itself=True,
        ),
        FaultSpec(
            "flash-crash",
            "the price drops by percent over seconds, then recovers over recover seconds",
            (
                Option("percent", Decimal, Decimal("10"), "size of the drop in percent"),
                Option("seconds", float, 1.0, "duration of the drop"),
                Option("recover", float, None, "duration of the recovery (default: seconds; 0: no recovery)"),
                Option("symbol", str, "BTCUSDT", "symbol"),
            ),
            ends_itself=True,
        ),
        FaultSpec(
            "mark-divergence",
            "USDⓈ-M futures: the mark price stands percent away from the last price while the fault lasts",
            (
                Option(
                    "percent", Decimal, None, "signed distance of the mark from the last price, e.g. 3", required=True
                ),
                Option("symbol", str, None, "only this symbol"),
            ),
        ),
        FaultSpec(
            "funding-spike",
            "USDⓈ-M futures: the next funding rate jumps to rate; it is charged at the next funding time, then the "
            "fault ends",
            (
                Option("rate", Decimal, Decimal("0.01"), "the funding rate charged next (0.01: 1 percent of notional)"),
                Option("symbol", str, None, "only this symbol"),
            ),
            ends_itself=True,
        ),
        FaultSpec(
            "price-freeze",
            "the price stops moving (trades and tickers keep printing at the same price)",
            (Option("symbol", str, None, "only this symbol"),),
        ),
        # ----- account ---------------------------------------------------------------------------------------
        FaultSpec(
            "clock-skew",
            "the venue clock is shifted, so client timestamps are rejected with -1021",
            (
                Option("ms", int, 5000, "shift of the venue clock in milliseconds (positive: venue ahead)"),
                Option(
                    "time_shows",
                    bool,
                    True,
                    "whether GET /api/v3/time shows the shift (false: it answers the unshifted "
                    "clock while signatures are checked against the shifted one, so no "
                    "resync can fix it)",
                ),
            ),
        ),
        FaultSpec(
            "key-revoked",
            "an API key is revoked: signed calls answer 401 -2015, its user streams end",
            (Option("key", str, None, "the API key (default: the simulator's main key)"),),
        ),
        FaultSpec(
            "balance-change",
            "a balance changes outside the engine (deposit, withdrawal, manual transfer)",
            (
                Option("asset", str, "USDT", "asset"),
                Option("delta", Decimal, None, "signed change of the free balance", required=True),
            ),
            one_shot=True,
        ),
    )
}


def names() -> list[str]:
    """All fault names, in catalogue order."""
    return list(CATALOGUE)


def spec_of(name: str) -> FaultSpec:
    """The spec of a fault name, or FaultError listing the valid names."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r}; valid names: {', '.join(CATALOGUE)}")
    return spec


@dataclass
class Fault:
    """One injected fault: its id, name, options and active window."""

    id: int
    name: str
    options: dict[str, Any]
    duration: float | None
    started_at: float  # wall clock, seconds
    ended_at: float | None = None
    end_reason: str = ""
    hits: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # effect-specific scratch space
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _deadline: float | None = field(default=None, repr=False)  # monotonic

    @property
    def active(self) -> bool:
        """Still in effect."""
        return self.ended_at is None

    def to_json(self) -> dict[str, Any]:
        """The control API's view of the fault."""
        return {
            "id": self.id,
            "name": self.name,
            "active": self.active,
            "options": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.options.items()},
            "duration": self.duration,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason or None,
            "hits": self.hits,
        }

    def describe(self) -> str:
        """``options`` without the unset ones, for log lines."""
        shown = {k: v for k, v in self.options.items() if v is not None}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no options"


Hook = Callable[[Fault], None]


class FaultBook:
    """The simulator's faults: ``inject`` starts one, ``clear`` ends one or all, ``hit`` asks whether one applies."""

    def __init__(self, seed: int = 1, on_start: Hook | None = None, on_end: Hook | None = None) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._on_start = on_start
        self._on_end = on_end
        self._next_id = 1
        self._faults: dict[int, Fault] = {}

    # ----- commands --------------------------------------------------------------------------------------
    def inject(self, name: str, *, duration: float | None = None, **options: Any) -> int:
        """Start a fault; returns its id. ``duration`` seconds (None: until cleared or its count is used up)."""
        spec = spec_of(name)
        if duration is not None:
            duration = float(duration)
            if duration <= 0:
                raise FaultError(f"{name}: duration must be positive")
        parsed = spec.parse(options)
        fault = Fault(self._next_id, name, parsed, duration, time.time())
        self._next_id += 1
        self._faults[fault.id] = fault
        window = describe_window(spec, duration, parsed.get("count"))
        log.warning("fault %d %s started (%s) %s", fault.id, name, fault.describe(), window)
        try:
            if self._on_start is not None:
                self._on_start(fault)
        except Exception:
            self._end(fault, "failed to start")
            raise
        if spec.one_shot:
            self._end(fault, "done")
        elif duration is not None and fault.active:
            fault._deadline = time.monotonic() + duration
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # no loop: expiry is noticed on the next lookup
            if loop is not None:
                fault._timer = loop.call_later(duration, self._expire, fault)
        return fault.id

    def clear(self, fault_id: int | None = None) -> list[int]:
        """End one fault (or every active fault); returns the ids ended. Unknown id: FaultError."""
        if fault_id is not None:
            fault = self._faults.get(int(fault_id))
            if fault is None:
                raise FaultError(f"no fault with id {fault_id}")
            if not fault.active:
                return []
            self._end(fault, "cleared")
            return [fault.id]
        ended = [f for f in self._faults.values() if f.active]
        for fault in ended:
            self._end(fault, "cleared")
        return [f.id for f in ended]

    def end(self, fault: Fault, reason: str) -> None:
        """End a fault from its effect (e.g. a price move that finished)."""
        if fault.active:
            self._end(fault, reason)

    # ----- queries ---------------------------------------------------------------------------------------
    def get(self, fault_id: int) -> Fault:
        """A fault by id (active or ended)."""
        fault = self._faults.get(int(fault_id))
        if fault is None:
            raise FaultError(f"no fault with id {fault_id}")
        return fault

    def all(self) -> list[Fault]:
        """Every fault injected so far, oldest first."""
        self._sweep()
        return list(self._faults.values())

    def active(self, name: str | None = None) -> list[Fault]:
        """Active faults, optionally of one name."""
        if not self._faults:
            return []  # none injected (a backtest): asked at every push
        self._sweep()
        return [f for f in self._faults.values() if f.active and (name is None or f.name == name)]

    def is_active(self, name: str, **match: Any) -> Fault | None:
        """The first active fault of ``name`` whose set options equal ``match`` (None options match anything);
        no rate or count is consumed."""
        for fault in self.active(name):
            if all(fault.options.get(k) in (None, v) for k, v in match.items()):
                return fault
        return None

    def hit(
        self,
        name: str,
        *,
        method: str | None = None,
        path: str | None = None,
        symbol: str | None = None,
        order_type: str | None = None,
    ) -> Fault | None:
        """The first active fault of ``name`` that applies to this request, after its seeded ``rate``; counts
        the hit and ends the fault when its ``count`` is used up."""
        for fault in self.active(name):
            opts = fault.options
            if opts.get("method") and method is not None and opts["method"].upper() != method.upper():
                continue
            if opts.get("path") and path is not None and not _path_matches(opts["path"], path):
                continue
            if opts.get("symbol") and symbol is not None and venue_symbol(opts["symbol"]) != symbol:
                continue
            if opts.get("type") and opts["type"] != order_type:
                continue
            rate = opts.get("rate")
            if rate is not None and rate < 1 and self._rng.random() >= rate:
                continue
            self.consume(fault)
            return fault
        return None

    def consume(self, fault: Fault) -> None:
        """Count one hit; end the fault once ``count`` hits are used up."""
        fault.hits += 1
        count = fault.options.get("count")
        if count is not None and fault.hits >= count:
            self._end(fault, f"count {count} reached")

    def uniform(self, low: float, high: float) -> float:
        """A seeded random draw for effects (latency jitter)."""
        return self._rng.uniform(low, high)

    # ----- internals -------------------------------------------------------------------------------------
    def _sweep(self) -> None:
        now = time.monotonic()
        for fault in list(self._faults.values()):
            if fault.active and fault._deadline is not None and now >= fault._deadline:
                self._end(fault, "expired")

    def _expire(self, fault: Fault) -> None:
        if fault.active:
            self._end(fault, "expired")

    def _end(self, fault: Fault, reason: str) -> None:
        fault.ended_at = time.time()
        fault.end_reason = reason
        if fault._timer is not None:
            fault._timer.cancel()
            fault._timer = None
        log.warning(
            "fault %d %s ended (%s) after %.1fs", fault.id, fault.name, reason, fault.ended_at - fault.started_at
        )
        if self._on_end is not None:
            try:
                self._on_end(fault)
            except Exception:  # an effect that cannot undo itself must not keep the fault alive
                log.exception("fault %d %s: ending its effect failed", fault.id, fault.name)


def describe_window(spec: FaultSpec, duration: float | None, count: int | None) -> str:
    """How long a fault lasts, in words: once, for 30s, for 3 request(s), until done, until cleared."""
    if spec.one_shot:
        return "once"
    if duration:
        return f"for {duration:g}s"
    if spec.ends_itself:
        return "until done"
    if count:
        return f"for {count} request(s)"
    return "until cleared"


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern
