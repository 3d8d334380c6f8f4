"""The runbooks' monitors: each watches one signal, says OK / WARN / CRIT with its value and threshold, and acts
through the one command path with itself named as the actor (``monitor:<code>``).

| code | WARN | CRIT and action |
|---|---|---|
| ws_stale | over ws_stale_warn_s: reconnect | over ws_stale_crit_s: close all (001 §1 "ws_stale: MUST close") |
| rest_errors | half of rest_errors_max | rest_errors_max in rest_errors_window_s: halt (001 §2); 429s are not errors |
| rate_limit_ban | a 429 pause in force: back off (001 §3) | a 418 ban: halt |
| rest_latency / stream_latency | p95 over its threshold (001 §3) | |
| reconnects | more than reconnects_warn_per_hour | |
| stuck_order | an order open over stuck_order_s: cancelled (001 §4) | the cancel failed |
| daily_loss | at daily_loss_warn_pct_of_limit of the limit | at the limit: close all; no resume until UTC midnight |
| max_drawdown | at max_drawdown_warn_pct | at max_drawdown_pct: halt until an operator resumes |
| flash_crash | a crash being confirmed: new entries on that symbol held | confirmed: halt; resume refused until calm |
| position_mismatch | adopted (between the two levels) | over mismatch_halt_pct: halt, the difference kept (001 §6) |
| clock_skew | over clock_skew_warn_ms (calls are signed with its clock) | rest_errors_max -1021s after a resync: halt |
| auth_failure / maintenance | | the key refused / the venue in maintenance: halt |
| leverage, liquidation_distance, funding, mark_divergence, liquidated | perps only: ``engine.safety.perpwatch`` | |

A CRIT acts only after ``confirm_readings`` readings in a row (a single bad reading never trips the kill switch);
where a second reading is a cheap call (auth, maintenance), the first reading makes that call. A CRIT being
confirmed is a WARN under the monitor's code; a CRIT that acts is a CRIT under it, with the reading in its values
(the operator's phone says why, not only that trading halted). Resume is refused while a CRIT that halts still
holds, unless an operator overrides it with a reason (``override``). A monitor whose reading fails is itself CRIT,
and so is the loop that stopped reading (``engine.safety.watchdog``): fail closed.

Why one module of this length: the table of watches and every reading it names are read together; a monitor's
threshold, its reading and what it does on WARN and CRIT sit side by side so that none drifts from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from engine.kernel import clock as engine_clock
from engine.kernel.commands import CloseAll, Command, Halt, Reconnect
from engine.kernel.config import MonitorsConfig, RiskConfig
from engine.kernel.events import EquitySampled, MonitorsChanged, Persisted, Severity, utcnow
from engine.kernel.ports import Ports, VenueLink
from engine.safety.perpwatch import PerpWatch
from engine.safety.pricemoves import PriceMoves
from engine.safety.readings import CRIT, OK, WARN, Reading, Row, pct
from engine.safety.stuck import StuckOrders
from engine.safety.watchdog import Watchdog
from engine.trading.books import Books
from engine.trading.holdings import Holdings
from engine.trading.state import TradingStateMachine
from engine.trading.sync import VenueSync
from engine.venue.health import VenueHealth

log = logging.getLogger(__name__)

# What a monitor's CRIT action does, for its alert's sentence (the rest halt).
ACTIONS = {"ws_stale": "closing everything", "daily_loss": "closing everything"}


@dataclass(frozen=True)
class Watched:
    """What the monitors watch besides the books: the trading state, the link to the venue and its health, the
    sync that keeps the picture fresh, and the holdings reconciled against the venue."""

    state: TradingStateMachine
    link: VenueLink
    health: VenueHealth
    sync: VenueSync
    holdings: Holdings


class Monitors:
    """Every runbook monitor, and the equity curve."""

    def __init__(
        self,
        risk: RiskConfig,
        cfg: MonitorsConfig,
        books: Books,
        watched: Watched,
        ports: Ports,
        clock: Callable[[], float] = engine_clock.monotonic,
    ) -> None:
        self.risk = risk
        self.cfg = cfg
        self.portfolio = books.portfolio
        self.stats = books.stats
        self.tracker = books.tracker
        self.stops = books.stops
        self.drawdown = books.drawdown
        self.state = watched.state
        self.link = watched.link
        self.health = watched.health
        self.sync = watched.sync
        self.holdings = watched.holdings
        self.publish = ports.publish
        self.alert = ports.alert
        self.submit = ports.submit
        self.spawn = ports.spawn
        self.clock = clock
        self.moves = PriceMoves(
            books.portfolio.symbols,
            max(cfg.flash_crash_window_s, cfg.flash_calm_s) + 60,
            window_s=min(60.0, cfg.flash_calm_s) or 1.0,
        )
        self.daily_loss_tripped: date | None = None
        self.flash_tripped = False
        # Per symbol, the range a calm window must stay under after the crash (its own normal; see pricemoves).
        self.flash_bars: dict[str, Decimal] = {}
        # Symbol -> why new entries on it are held (a flash crash being confirmed): REDUCE_ONLY for that symbol.
        self.holds: dict[str, str] = {}
        self.stuck = StuckOrders(cfg, books, ports, watched.link, watched.health, watched.sync)
        self.watchdog = Watchdog(cfg, ports, clock)
        self._probing: set[str] = set()
        self._published: list[dict[str, Any]] = []
        self._latched: dict[str, Any] = {}
        self.ticks = 0
        # code -> (reader, confirm, blocks resume, WARN action, CRIT action)
        self.watches: dict[
            str,
            tuple[
                Callable[[], Reading], bool, bool, Callable[[Reading], None] | None, Callable[[Reading], None] | None
            ],
        ] = {
            "ws_stale": (self.read_ws_stale, True, True, self._reconnect, self._close_all("ws_stale")),
            "rest_errors": (self.read_rest_errors, False, True, None, self._halt("rest_errors")),
            "rate_limit_ban": (self.read_rate_limit, False, True, None, self._halt("rate_limit_ban")),
            "rest_latency": (self.read_rest_latency, True, False, None, None),
            "stream_latency": (self.read_stream_latency, True, False, None, None),
            "reconnects": (self.read_reconnects, True, False, None, None),
            "stuck_order": (self.stuck.read, False, False, None, None),
            "daily_loss": (self.read_daily_loss, True, True, None, self._daily_loss_close),
            "max_drawdown": (self.read_drawdown, True, False, None, self._halt("max_drawdown")),
            "flash_crash": (self.read_flash_crash, True, True, None, self._flash_halt),
            "position_mismatch": (self.read_mismatch, False, True, None, self._halt("position_mismatch")),
            "clock_skew": (self.read_clock_skew, False, True, None, self._halt("clock_skew")),
            "auth_failure": (self.read_auth, True, True, None, self._halt("auth_failure")),
            "maintenance": (self.read_maintenance, True, True, None, self._halt("maintenance")),
        }
        # Perps ([venue] market = "usdm"): leverage, liquidation distance, funding, mark divergence, liquidations.
        self.perps: PerpWatch | None = None
        if books.portfolio.usdm:
            link = watched.link
            self.perps = PerpWatch(
                risk,
                cfg,
                books.portfolio,
                watched.holdings,
                watched.sync.execution.leverage,
                self._command,
                lambda symbol, amount: link.venue.amount_to_precision(symbol, amount) if link.venue else amount,
            )
            self.watches.update(self.perps.watches())
        self.rows = {code: Row(code, confirm, blocks) for code, (_, confirm, blocks, _, _) in self.watches.items()}

    # ------------------------------------------------------------ readings

    @property
    def drawdown_pct(self) -> Decimal:
        """The drawdown from the equity peak, in percent, as of the last reading."""
        return self.drawdown.pct

    def read_ws_stale(self) -> Reading:
        """The market streams' age and the user stream's own age (since it last proved alive: an event, the venue
        listing its subscription, or a subscription confirmed; an open socket is no proof)."""
        cfg = self.cfg
        market = self.sync.market_data_age_s()
        if market is None:
            return Reading(OK, "not streaming yet", f"{cfg.ws_stale_warn_s:g}s / {cfg.ws_stale_crit_s:g}s")
        user = self.sync.user_stream_age_s()
        age, which = (market, "market") if market >= user else (user, "user")
        level = CRIT if age > cfg.ws_stale_crit_s else WARN if age > cfg.ws_stale_warn_s else OK
        dead = self.sync.user_stream_dead
        return Reading(
            level,
            f"{age:.1f}s ({which}); market {market:.1f}s, user {user:.1f}s",
            f"{cfg.ws_stale_warn_s:g}s / {cfg.ws_stale_crit_s:g}s",
            f"no {which} data for {age:.0f}s" + (f"; user stream: {dead}" if dead else ""),
            {"market_age_s": round(market, 1), "user_age_s": round(user, 1), "user_stream": dead or "up"},
        )

    def read_rest_errors(self) -> Reading:
        """REST errors in the window (a 429 or 418 is not one: the rate-limit monitor reads those). WARN from half
        the limit: one more error or so and orders pause."""
        errors = self.health.recent_errors()
        cfg = self.cfg
        count = len(errors)
        level = CRIT if count >= cfg.rest_errors_max else WARN if count and count * 2 >= cfg.rest_errors_max else OK
        return Reading(
            level,
            f"{count} in {cfg.rest_errors_window_s:g}s",
            f"{cfg.rest_errors_max} in {cfg.rest_errors_window_s:g}s",
            "; ".join(errors[-3:]),
            {"errors": errors[-5:], "count": count, "limit": cfg.rest_errors_max, "window_s": cfg.rest_errors_window_s},
        )

    def read_rate_limit(self) -> Reading:
        """A 429 is the venue asking to slow down: every request waits out its Retry-After (WARN, runbook 001 §3);
        a 418 is a ban: CRIT, halt."""
        banned, paused = self.health.banned_for(), self.health.paused_for()
        limited = self.health.recent_rate_limits()
        values = {"banned_s": round(banned, 1), "paused_s": round(paused, 1), "rate_limited": limited[-5:]}
        if banned > 0:
            return Reading(CRIT, f"banned {banned:.0f}s (418)", "no 418", "the venue banned this client", values)
        if paused > 0:
            return Reading(WARN, f"paused {paused:.1f}s (429)", "no 429", "every request waits for Retry-After", values)
        return Reading(OK, "no limit hit", "no 418")

    def read_rest_latency(self) -> Reading:
        venue = self.link.venue
        p95 = venue.latency.percentile(None, 95) if venue else None
        warn = self.cfg.rest_latency_warn_ms
        if p95 is None:
            return Reading(OK, "—", f"{warn:g}ms")
        return Reading(WARN if p95 > warn else OK, f"{p95:.0f}ms", f"{warn:g}ms")

    def read_stream_latency(self) -> Reading:
        p95 = self.sync.stream_latency_p95()
        warn = self.cfg.stream_latency_warn_ms
        if p95 is None:
            return Reading(OK, "—", f"{warn:g}ms")
        return Reading(WARN if p95 > warn else OK, f"{p95:.0f}ms", f"{warn:g}ms")

    def read_reconnects(self) -> Reading:
        count = self.sync.reconnects_last_hour()
        limit = self.cfg.reconnects_warn_per_hour
        return Reading(WARN if count > limit else OK, f"{count}/h", f"{limit}/h")

    def read_daily_loss(self) -> Reading:
        equity = self.portfolio.equity()
        limit = self.risk.daily_loss_limit_pct
        warn = limit * self.cfg.daily_loss_warn_pct_of_limit / 100
        if self.daily_loss_tripped is not None and self.daily_loss_tripped != self.stats.clock().date():
            self.daily_loss_tripped = None  # a new UTC day (the day statistics' clock: one midnight for both)
        loss = self.stats.current().daily_loss_pct(equity) if equity is not None else Decimal(0)
        if limit <= 0:
            return Reading(OK, pct(loss), "off ([risk] daily_loss_limit_pct = 0)")
        threshold = f"{warn:.2f}% / {limit}%"
        if self.daily_loss_tripped is not None or loss >= limit:
            return Reading(
                CRIT,
                pct(loss),
                threshold,
                "trading stays halted until UTC midnight",
                {"daily_loss_pct": str(loss), "limit_pct": str(limit)},
            )
        return Reading(WARN if loss >= warn else OK, pct(loss), threshold)

    def read_drawdown(self) -> Reading:
        risk = self.risk
        equity = self.portfolio.equity()
        if equity is not None:
            self.drawdown.update(equity)
        dd = self.drawdown.pct
        level = CRIT if dd >= risk.max_drawdown_pct else WARN if dd >= risk.max_drawdown_warn_pct else OK
        return Reading(
            level,
            pct(dd),
            f"{risk.max_drawdown_warn_pct}% / {risk.max_drawdown_pct}%",
            "",
            {"drawdown_pct": str(dd), "limit_pct": str(risk.max_drawdown_pct)},
        )

    def read_flash_crash(self) -> Reading:
        cfg = self.cfg
        now = self.clock()
        for symbol in self.moves.samples:
            last = self.portfolio.last.get(symbol)
            if last is not None:
                self.moves.record(symbol, now, last)
        worst, where = self.moves.largest(cfg.flash_crash_window_s, now)
        threshold = f"{cfg.flash_crash_pct}% in {cfg.flash_crash_window_s:g}s"
        crashing = {
            s: move
            for s in self.moves.samples
            if (move := self.moves.move(s, cfg.flash_crash_window_s, now)) > cfg.flash_crash_pct
        }
        # New entries on a symbol crashing now are held from its first bad reading on: between that reading and
        # the one that confirms it (and halts), a strategy must not buy into the crash. Not a halt: the other
        # symbols, reducing orders and cancels go on.
        self.holds = {
            s: f"{s} moved {move:.2f}% within {cfg.flash_crash_window_s:g}s (flash_crash over {cfg.flash_crash_pct}%):"
            " new entries on it are held"
            for s, move in crashing.items()
        }
        if worst > cfg.flash_crash_pct:
            return Reading(
                CRIT,
                f"{worst:.2f}% {where}",
                threshold,
                f"{where} moved {worst:.2f}% in {cfg.flash_crash_window_s:g}s; new entries on "
                + ", ".join(crashing)
                + " held",
                {
                    "held": sorted(crashing),
                    "symbol": where,
                    "move_pct": f"{worst:.2f}",
                    "window_s": cfg.flash_crash_window_s,
                    "limit_pct": str(cfg.flash_crash_pct),
                },
            )
        if self.flash_tripped:
            bars = self.flash_bars or {s: cfg.flash_calm_pct for s in self.moves.samples}
            moving = self.moves.not_calm(cfg.flash_calm_s, bars, now)
            if not moving:
                self.flash_tripped = False
            else:
                window = min(60.0, cfg.flash_calm_s) or 1.0
                return Reading(
                    CRIT,
                    f"{worst:.2f}% {where}".strip(),
                    threshold,
                    f"not calm yet: every {window:g}s of the last {cfg.flash_calm_s:g}s must move under "
                    + ", ".join(f"{s} {b}%" for s, b in bars.items())
                    + f" (each symbol's own normal; the runbook's {cfg.flash_calm_pct}% at least): "
                    + "; ".join(f"{s} {why}" for s, why in moving.items()),
                    {"calm_bars_pct": {s: str(b) for s, b in bars.items()}, "not_calm": moving},
                )
        return Reading(OK, f"{worst:.2f}%", threshold)

    def entry_hold(self, symbol: str) -> str | None:
        """Why new entries on ``symbol`` are held now (a flash crash on it being confirmed), or None."""
        return self.holds.get(symbol)

    def read_mismatch(self) -> Reading:
        worst = self.holdings.worst()
        cfg = self.cfg
        threshold = f"{cfg.mismatch_warn_pct}% / {cfg.mismatch_halt_pct}%"
        if worst is not None:
            return Reading(
                CRIT,
                pct(worst.pct_of_equity),
                threshold,
                f"{worst.asset}: venue {worst.venue}, engine {worst.engine}",
                worst.to_dict(),
            )
        if self.holdings.adopted:
            d = self.holdings.adopted[0]
            return Reading(WARN, pct(d.pct_of_equity), threshold, f"{d.asset}: adopted {d.diff}")
        return Reading(OK, "none", threshold)

    def read_clock_skew(self) -> Reading:
        """The venue's clock against ours (WARN: the venue adapter already signs with the venue's clock), and the
        signed calls the venue refused for their timestamp even after a resync: as many as the REST error limit in
        its window is CRIT, since the engine cannot trade or cancel (runbook 001 §2's numbers; 002 "verify system
        time sync")."""
        cfg, health = self.cfg, self.health
        refused = health.recent_timestamp_refusals()
        skew, offset = health.skew_ms, health.offset_ms
        if len(refused) >= cfg.rest_errors_max:
            return Reading(
                CRIT,
                f"{len(refused)} refused (-1021)",
                f"{cfg.rest_errors_max} in {cfg.rest_errors_window_s:g}s",
                "signed calls refused for their timestamp after a resync ("
                + "; ".join(refused[-3:])
                + "): check the host's time sync",
                {"refused": refused[-5:], "skew_ms": None if skew is None else round(skew), "offset_ms": round(offset)},
            )
        warn = cfg.clock_skew_warn_ms
        if skew is None:
            return Reading(OK, "—", f"{warn:g}ms")
        if abs(skew) > warn:
            return Reading(
                WARN,
                f"{skew:+.0f}ms",
                f"{warn:g}ms",
                f"signing with the venue's clock ({offset:+.0f}ms)",
                {"skew_ms": round(skew), "offset_ms": round(offset)},
            )
        return Reading(OK, f"{skew:+.0f}ms", f"{warn:g}ms")

    def read_auth(self) -> Reading:
        why = self.health.auth_failure
        if why is None:
            return Reading(OK, "key accepted", "no refusal")
        self._probe("auth", self._probe_private)
        return Reading(CRIT, "key refused", "no refusal", why)

    def read_maintenance(self) -> Reading:
        why = self.health.maintenance
        if why is None:
            return Reading(OK, "open", "not in maintenance")
        self._probe("maintenance", self._probe_ping)
        return Reading(CRIT, "in maintenance", "not in maintenance", why)

    # ------------------------------------------------------------ judging and acting

    def tick(self) -> None:
        """Read every monitor once; act on a confirmed CRIT and on a new WARN; publish the statuses."""
        for code, (read, _, _, on_warn, on_crit) in self.watches.items():
            row = self.rows[code]
            confirm, alert_code = row.confirm, code.upper()
            try:
                reading = read()
            except Exception as exc:  # a monitor that cannot read is CRIT: fail closed, and the others go on
                log.error("monitor %s failed", code, exc_info=exc)
                reading = Reading(CRIT, "cannot read", "—", f"{type(exc).__name__}: {exc}"[:200], {"monitor": code})
                on_crit, confirm, alert_code = self._halt("monitor_failed"), False, "MONITOR_FAILED"
            self._judge(row, reading, on_warn, on_crit, confirm, alert_code)
        self.ticks += 1
        statuses = [row.to_dict() for row in self.rows.values()]
        if statuses != self._published:
            self._published = statuses
            self.publish(MonitorsChanged(tuple(statuses)))
        latches = self.latches()
        if latches != self._latched:
            self._latched = latches
            self.publish(Persisted("monitor_latches", latches))
        self.watchdog.passed()  # last: a pass that fails anywhere is no pass

    def latches(self) -> dict[str, Any]:
        """What must survive a restart: the daily-loss trip (until UTC midnight), the flash-crash trip and the calm
        bars it is judged by (the history they were measured on does not survive)."""
        return {
            "daily_loss_tripped": self.daily_loss_tripped.isoformat() if self.daily_loss_tripped else None,
            "flash_tripped": self.flash_tripped,
            "flash_calm_bars_pct": {s: str(b) for s, b in self.flash_bars.items()} if self.flash_tripped else {},
        }

    def restore(self, latches: dict[str, Any] | None, peak: Decimal | None) -> None:
        if latches:
            day = latches.get("daily_loss_tripped")
            self.daily_loss_tripped = date.fromisoformat(day) if day else None
            self.flash_tripped = bool(latches.get("flash_tripped"))
            self.flash_bars = {
                s: Decimal(b) for s, b in (latches.get("flash_calm_bars_pct") or {}).items() if s in self.moves.samples
            }
            self._latched = self.latches()
            # Their action was taken before the restart: a latched trip blocks resume, it does not act again.
            self.rows["daily_loss"].acted = self.daily_loss_tripped is not None
            self.rows["flash_crash"].acted = self.flash_tripped
        if peak is not None:
            self.drawdown.peak = peak

    def _judge(
        self,
        row: Row,
        reading: Reading,
        on_warn: Callable[[Reading], None] | None,
        on_crit: Callable[[Reading], None] | None,
        confirm: bool,
        alert_code: str,
    ) -> None:
        previous = row.reading.level
        if reading.level == OK:
            if previous != OK:
                log.info("monitor %s back to OK (%s)", row.code, reading.value)
            row.reading, row.crit_streak, row.acted, row.warned, row.since = reading, 0, False, False, None
            row.crit_since = None
            return
        now = self.clock()
        if row.since is None:
            row.since = now
        if reading.level == CRIT:
            row.crit_streak += 1
            if row.crit_since is None:
                row.crit_since = now
            if row.crit_streak < (self.cfg.confirm_readings if confirm else 1):
                row.reading = Reading(
                    WARN, reading.value, reading.threshold, "CRIT reading, confirming", reading.values
                )
                if not row.warned:  # the first CRIT reading: a WARN now, the CRIT once it is confirmed
                    row.warned = True
                    self.alert(
                        Severity.WARN,
                        alert_code,
                        f"{row.code}: {reading.value} (limit {reading.threshold}); confirming"
                        f"{'; ' + reading.detail if reading.detail else ''}",
                        values={"value": reading.value, "threshold": reading.threshold, **reading.values},
                    )
                return
            first = utcnow() - timedelta(seconds=now - (row.since or now))
            reading = replace(
                reading,
                values={
                    **reading.values,
                    "first_reading_at": first.isoformat(),
                    # From the first bad reading to this action (the halt or close-all it submits).
                    "seconds_to_act": round(now - (row.since or now), 3),
                    "crit_readings": row.crit_streak,
                },
            )
            row.reading = reading
            if not row.acted:
                row.acted = True
                # The monitor's own CRIT, with its reading: what the operator's phone says is why.
                self.alert(
                    Severity.CRIT,
                    alert_code,
                    f"{row.code}: {reading.value} (limit {reading.threshold})"
                    f"{'; ' + reading.detail if reading.detail else ''}"
                    + ("" if on_crit is None else f"; {self._action_words(row.code)}"),
                    values={"value": reading.value, "threshold": reading.threshold, **reading.values},
                )
                if on_crit is not None:
                    on_crit(reading)
            return
        row.crit_streak, row.crit_since = 0, None
        row.reading = reading
        if not row.warned:
            row.warned = True
            self.alert(
                Severity.WARN,
                alert_code,
                f"{row.code}: {reading.value} over {reading.threshold}"
                f"{'; ' + reading.detail if reading.detail else ''}",
                values=reading.values,
            )
            if on_warn is not None:
                on_warn(reading)

    def _action_words(self, code: str) -> str:
        words = self.perps.action_words(code) if self.perps is not None else None
        return words or ACTIONS.get(code, "halting")

    def _command(self, command: Command) -> None:
        self.spawn(f"{command.actor} {command.name}", self.submit(command))

    def _trip(self, code: str, command: type[Halt] | type[CloseAll]) -> Callable[[Reading], None]:
        """The CRIT action of monitor ``code``: ``command`` by ``monitor:<code>`` with the reading behind it."""

        def act(reading: Reading) -> None:
            detail = f"; {reading.detail}" if reading.detail else ""
            self._command(
                command(
                    actor=f"monitor:{code}",
                    reason=f"{code}: {reading.value} (limit {reading.threshold}){detail}",
                    values={"value": reading.value, "threshold": reading.threshold, **reading.values},
                )
            )

        return act

    def _halt(self, code: str) -> Callable[[Reading], None]:
        return self._trip(code, Halt)

    def _close_all(self, code: str) -> Callable[[Reading], None]:
        return self._trip(code, CloseAll)

    def _daily_loss_close(self, reading: Reading) -> None:
        self.daily_loss_tripped = self.stats.clock().date()
        self._close_all("daily_loss")(reading)

    def _flash_halt(self, reading: Reading) -> None:
        """Halt, and fix the calm bars resume is judged by: each symbol's normal before the crash began (its first
        bad reading, less the crash window)."""
        cfg = self.cfg
        self.flash_tripped = True
        began = (self.rows["flash_crash"].since or self.clock()) - cfg.flash_crash_window_s
        self.flash_bars = self.moves.calm_bars(
            min(60.0, cfg.flash_calm_s) or 1.0, began, cfg.flash_calm_pct, cfg.flash_crash_pct / 2
        )
        bars = {s: str(b) for s, b in self.flash_bars.items()}
        self._halt("flash_crash")(replace(reading, values={**reading.values, "calm_bars_pct": bars}))

    def _reconnect(self, reading: Reading) -> None:
        self._command(
            Reconnect(actor="monitor:ws_stale", reason=f"no data for {reading.value}", values=dict(reading.values))
        )

    def _probe(self, name: str, probe: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A second reading where one is cheap: one call, not two at once."""
        if name not in self._probing and self.link.venue is not None:
            self._probing.add(name)
            self.spawn(f"probe-{name}", self._run_probe(name, probe))

    async def _run_probe(self, name: str, probe: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await probe()
        except Exception as exc:  # the probe's answer is what health recorded; its failure is the reading
            log.info("probe %s: %s: %s", name, type(exc).__name__, exc)
        finally:
            self._probing.discard(name)

    async def _probe_private(self) -> None:
        venue = self.link.venue
        if venue is not None:
            await venue.fetch_balances(urgent=True)

    async def _probe_ping(self) -> None:
        venue = self.link.venue
        if venue is not None:
            await venue.ping()

    async def ping(self) -> None:
        """A cheap public call every ``ping_s``: reachability, latency and clock skew."""
        venue = self.link.venue
        if venue is not None:
            try:
                await venue.ping()
            except Exception as exc:  # recorded by the venue's health already; the monitors read it from there
                log.debug("ping failed: %s", exc)

    def blocking_resume(self, tripped_by_monitor: bool) -> list[str]:
        """Why an operator may not resume now: every halting monitor whose condition still holds, the monitors'
        loop itself stalled; and, after a monitor's trip, until the monitors have looked (just started: the
        condition may still hold)."""
        stalled = [self.watchdog.stalled] if self.watchdog.stalled else []
        if tripped_by_monitor and self.ticks < self.cfg.confirm_readings:
            return [*stalled, "the monitors have not read every signal yet (starting up); try again in a few seconds"]
        return [
            *stalled,
            *(
                f"{row.code}: {row.reading.value} (limit {row.reading.threshold})"
                f"{'; ' + row.reading.detail if row.reading.detail else ''}"
                for row in self.rows.values()
                if row.blocks_resume and row.reading.level == CRIT
            ),
        ]

    def overridden(self) -> list[str]:
        """An operator resumes past the rule (with a stated reason, checked by the caller): what blocked the resume,
        for the record. The flash-crash latch is the operator's judgement of calm, so it is cleared; a condition
        that still holds keeps its CRIT reading (it does not act again: it acted already)."""
        blocking = self.blocking_resume(tripped_by_monitor=False)
        if self.flash_tripped:
            self.flash_tripped, self.flash_bars = False, {}
            self._latched = self.latches()
            self.publish(Persisted("monitor_latches", self._latched))
        return blocking

    def statuses(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows.values()]

    def failed(self, name: str, exc: BaseException) -> None:
        """The monitors' loop itself could not run: fail closed (halt) and say so."""
        self.alert(
            Severity.CRIT,
            "MONITOR_FAILED",
            f"{name} cannot run ({type(exc).__name__}: {exc}): halting, since limits are not being watched",
        )
        self._command(
            Halt(
                actor="monitor:monitor_failed",
                reason=f"{name} cannot run: {exc}",
                values={"monitor": name, "error": f"{type(exc).__name__}: {exc}"[:200]},
            )
        )

    def recovered(self, name: str) -> None:
        self.alert(Severity.INFO, "MONITOR_RECOVERED", f"{name} runs again (trading stays as it is)")

    # ------------------------------------------------------------ stuck orders

    # ------------------------------------------------------------ equity

    def sample_equity(self) -> None:
        """One point of the equity curve (the drawdown itself is read every tick, by ``read_drawdown``)."""
        equity = self.portfolio.equity()
        if equity is None:
            return
        self.stats.equity(equity)
        self.publish(EquitySampled(equity, self.drawdown.peak or equity, self.drawdown.pct))
