"""The runbooks' monitors: each watches one signal, says OK / WARN / CRIT with its value and threshold, and acts
through the one command path with itself named as the actor (``monitor:<code>``).

| code | WARN | CRIT and action |
|---|---|---|
| ws_stale | over ws_stale_warn_s: reconnect | over ws_stale_crit_s: close all (001 §1 "ws_stale: MUST close") |
| rest_errors | | rest_errors_max in rest_errors_window_s: halt (001 §2) |
| rate_limit_ban | a 429 pause in force | a 418 ban: halt |
| rest_latency / stream_latency | p95 over its threshold (001 §3) | |
| reconnects | more than reconnects_warn_per_hour | |
| stuck_order | an order open over stuck_order_s: cancelled (001 §4) | the cancel failed |
| daily_loss | at daily_loss_warn_pct_of_limit of the limit | at the limit: close all; no resume until UTC midnight |
| max_drawdown | at max_drawdown_warn_pct | at max_drawdown_pct: halt until an operator resumes |
| flash_crash | | a move over flash_crash_pct in flash_crash_window_s: halt; resume refused until calm |
| position_mismatch | adopted (between the two levels) | over mismatch_halt_pct: halt, the difference kept (001 §6) |
| clock_skew | over clock_skew_warn_ms (calls are signed with its clock) | rest_errors_max -1021s after a resync: halt |
| auth_failure / maintenance | | the key refused / the venue in maintenance: halt |

A CRIT acts only after ``confirm_readings`` readings in a row (a single bad reading never trips the kill switch);
where a second reading is a cheap call (auth, maintenance), the first reading makes that call. Resume is refused
while a CRIT that halts still holds. A monitor whose reading fails is itself CRIT: fail closed.

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
from engine.safety.pricemoves import PriceMoves
from engine.safety.readings import CRIT, OK, WARN, Reading, Row, pct
from engine.safety.stuck import StuckOrders
from engine.trading.books import Books
from engine.trading.holdings import Holdings
from engine.trading.state import TradingStateMachine
from engine.trading.sync import VenueSync
from engine.venue.health import VenueHealth

log = logging.getLogger(__name__)


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
        self.moves = PriceMoves(books.portfolio.symbols, max(cfg.flash_crash_window_s, cfg.flash_calm_s) + 60)
        self.daily_loss_tripped: date | None = None
        self.flash_tripped = False
        self.stuck = StuckOrders(cfg, books, ports)
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
        self.rows = {code: Row(code, confirm, blocks) for code, (_, confirm, blocks, _, _) in self.watches.items()}

    # ------------------------------------------------------------ readings

    @property
    def drawdown_pct(self) -> Decimal:
        """The drawdown from the equity peak, in percent, as of the last reading."""
        return self.drawdown.pct

    def read_ws_stale(self) -> Reading:
        cfg = self.cfg
        market = self.sync.market_data_age_s()
        if market is None:
            return Reading(OK, "not streaming yet", f"{cfg.ws_stale_warn_s:g}s / {cfg.ws_stale_crit_s:g}s")
        user = self.sync.user_stream_age_s()
        age, which = (market, "market") if market >= user else (user, "user")
        level = CRIT if age > cfg.ws_stale_crit_s else WARN if age > cfg.ws_stale_warn_s else OK
        return Reading(
            level,
            f"{age:.1f}s ({which})",
            f"{cfg.ws_stale_warn_s:g}s / {cfg.ws_stale_crit_s:g}s",
            f"no {which} data for {age:.0f}s",
            {"market_age_s": round(market, 1), "user_age_s": round(user, 1)},
        )

    def read_rest_errors(self) -> Reading:
        errors = self.health.recent_errors()
        cfg = self.cfg
        level = CRIT if len(errors) >= cfg.rest_errors_max else OK
        return Reading(
            level,
            f"{len(errors)} in {cfg.rest_errors_window_s:g}s",
            f"{cfg.rest_errors_max} in {cfg.rest_errors_window_s:g}s",
            "; ".join(errors[-3:]),
            {"errors": errors[-5:]},
        )

    def read_rate_limit(self) -> Reading:
        banned, paused = self.health.banned_for(), self.health.paused_for()
        if banned > 0:
            return Reading(CRIT, f"banned {banned:.0f}s (418)", "no 418", "the venue banned this client")
        if paused > 0:
            return Reading(WARN, f"paused {paused:.1f}s (429)", "no 429", "every request waits for Retry-After")
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
        if worst > cfg.flash_crash_pct:
            return Reading(
                CRIT,
                f"{worst:.2f}% {where}",
                threshold,
                f"{where} moved {worst:.2f}%",
                {"symbol": where, "move_pct": f"{worst:.2f}"},
            )
        if self.flash_tripped:
            if self.moves.calm(cfg.flash_calm_s, cfg.flash_calm_pct, now):
                self.flash_tripped = False
            else:
                return Reading(
                    CRIT,
                    f"{worst:.2f}% {where}".strip(),
                    threshold,
                    f"not calm yet: every minute of the last {cfg.flash_calm_s:g}s must move under "
                    f"{cfg.flash_calm_pct}%",
                )
        return Reading(OK, f"{worst:.2f}%", threshold)

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
            confirm = row.confirm
            try:
                reading = read()
            except Exception as exc:  # a monitor that cannot read is CRIT: fail closed, and the others go on
                log.error("monitor %s failed", code, exc_info=exc)
                reading = Reading(CRIT, "cannot read", "—", f"{type(exc).__name__}: {exc}"[:200])
                on_crit, confirm = self._halt("monitor_failed"), False
            self._judge(row, reading, on_warn, on_crit, confirm)
        self.ticks += 1
        statuses = [row.to_dict() for row in self.rows.values()]
        if statuses != self._published:
            self._published = statuses
            self.publish(MonitorsChanged(tuple(statuses)))
        latches = self.latches()
        if latches != self._latched:
            self._latched = latches
            self.publish(Persisted("monitor_latches", latches))

    def latches(self) -> dict[str, Any]:
        """What must survive a restart: the daily-loss trip (until UTC midnight) and the flash-crash trip."""
        return {
            "daily_loss_tripped": self.daily_loss_tripped.isoformat() if self.daily_loss_tripped else None,
            "flash_tripped": self.flash_tripped,
        }

    def restore(self, latches: dict[str, Any] | None, peak: Decimal | None) -> None:
        if latches:
            day = latches.get("daily_loss_tripped")
            self.daily_loss_tripped = date.fromisoformat(day) if day else None
            self.flash_tripped = bool(latches.get("flash_tripped"))
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
    ) -> None:
        previous = row.reading.level
        if reading.level == OK:
            if previous != OK:
                log.info("monitor %s back to OK (%s)", row.code, reading.value)
            row.reading, row.crit_streak, row.acted, row.warned, row.since = reading, 0, False, False, None
            return
        if row.since is None:
            row.since = self.clock()
        if reading.level == CRIT:
            row.crit_streak += 1
            if row.crit_streak < (self.cfg.confirm_readings if confirm else 1):
                row.reading = Reading(
                    WARN, reading.value, reading.threshold, "CRIT reading, confirming", reading.values
                )
                return
            first = utcnow() - timedelta(seconds=self.clock() - (row.since or self.clock()))
            reading = replace(reading, values={**reading.values, "first_reading_at": first.isoformat()})
            row.reading = reading
            if not row.acted:
                row.acted = True
                if on_crit is not None:
                    on_crit(reading)
                else:
                    self.alert(
                        Severity.CRIT,
                        row.code.upper(),
                        f"{row.code}: {reading.value} (limit {reading.threshold}) {reading.detail}".strip(),
                        values=reading.values,
                    )
            return
        row.crit_streak = 0
        row.reading = reading
        if not row.warned:
            row.warned = True
            self.alert(
                Severity.WARN,
                row.code.upper(),
                f"{row.code}: {reading.value} over {reading.threshold}"
                f"{'; ' + reading.detail if reading.detail else ''}",
                values=reading.values,
            )
            if on_warn is not None:
                on_warn(reading)

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
        self.flash_tripped = True
        self._halt("flash_crash")(reading)

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
        """Why an operator may not resume now: every halting monitor whose condition still holds; and, after a
        monitor's trip, until the monitors have looked (just started: the condition may still hold)."""
        if tripped_by_monitor and self.ticks < self.cfg.confirm_readings:
            return ["the monitors have not read every signal yet (starting up); try again in a few seconds"]
        return [
            f"{row.code}: {row.reading.value} (limit {row.reading.threshold})"
            f"{'; ' + row.reading.detail if row.reading.detail else ''}"
            for row in self.rows.values()
            if row.blocks_resume and row.reading.level == CRIT
        ]

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
