"""The go/no-go checklist: every pre-launch check of the runbooks, each PASS / WARN / FAIL with its evidence.

Runbook 000 §1 (System Validation, Testnet Trading, Dry-Run Stability) and runbook 003 ("Automated Pre-flight
Checks", "Pre-live Checklist") as one list. Each check says what it measured, against which threshold, and how to
fix a failure. Some checks are FAIL only in live mode and WARN otherwise (a stop-loss or a daily loss limit turned
off, a NO-GO validation report, unproven stability): paper trading is where those are tried out. GO means no FAIL.

The checklist is run by the engine (``Engine.preflight``, through the command path as ``preflight``), by
``cockpit preflight``, and before any live start, which it refuses on a FAIL. Each run is stored with its evidence
(``ChecklistCompleted``).

This module is the runner: which checks run, in which order, and a check that cannot run as that check's FAIL. The
checks are by what they ask: the venue (``venue_checks``: they share what they measured, the server time, balances
and prices, with the checks after them), a perpetuals account (``perp_checks``), the configuration alone
(``config_checks``), the risk rules (``risk_self_test``), what the store holds (``history_checks``), and the smoke
trade (``smoke``).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from engine.gate import config_checks
from engine.gate.checklist import Check, Checklist, Status
from engine.gate.history_checks import stability, validation_report
from engine.gate.perp_checks import PerpChecks
from engine.gate.risk_self_test import Refusal, risk_self_test
from engine.gate.smoke import SmokeTrade
from engine.gate.venue_checks import StreamProbe, VenueChecks
from engine.kernel.config import Settings
from engine.store.db import Store
from engine.venue import errors as vx
from engine.venue.adapter import Venue

# Where the engine and the command line import them from.
__all__ = ["Preflight", "StreamProbe", "run_standalone"]

log = logging.getLogger(__name__)


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
        refusal: Refusal | None = None,
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
        self.venue_label = venue_label
        self.store = store
        self.confirm_live = confirm_live
        self.actor = actor
        self.smoke = smoke
        self.refusal = refusal  # the engine's own order checks, without sending (None: the risk rules alone)
        self.venue_checks = VenueChecks(
            settings,
            venue=venue,
            venue_label=venue_label,
            venue_problem=venue_problem,
            stream_probe=streams,
            smoke=smoke,
        )
        self.perp_checks = PerpChecks(
            settings, venue=venue, live=self.live, venue_missing=self.venue_checks.missing, deadman_state=deadman
        )

    async def run(self) -> Checklist:
        start = time.perf_counter()
        ts = datetime.now(UTC).isoformat()
        checks: list[Check] = []
        venue, perps = self.venue_checks, self.perp_checks
        steps: list[tuple[str, str, Callable[[], Awaitable[Check] | Check]]] = [
            (
                "mode",
                "Mode is what the operator asked for",
                lambda: config_checks.mode(self.settings, self.confirm_live),
            ),
            ("venue", "Venue reachable", venue.reachable),
            ("clock_skew", "Clock skew", venue.clock_skew),
            ("api_key", "API key valid", venue.api_key),
            ("key_permissions", "Key permissions: trading on, withdrawals off", venue.permissions),
            ("balance", "Balance at least the minimum", venue.balance),
            ("symbols", "Every configured symbol trades", venue.symbols),
        ]
        if self.smoke is not None and not self.live:
            steps.append(("smoke_trade", "Smoke trade (market fill, far limit cancelled)", self._smoke))
        steps += [
            ("streams", "Market and user streams deliver events", venue.streams),
            ("rate_limit", "Rate limiting on", lambda: config_checks.rate_limit(self.settings)),
            ("stop_loss", "Stop-loss set", lambda: config_checks.stop_loss(self.settings)),
            ("stops_at_venue", "Stops rest at the venue", venue.stops_at_venue),
            ("daily_loss_limit", "Daily loss limit set", lambda: config_checks.daily_loss_limit(self.settings)),
            (
                "risk_self_test",
                "Risk self-test: an order over a limit is refused",
                lambda: risk_self_test(self.settings, venue.prices, venue.balances, self.refusal),
            ),
            ("alert_sinks", "Alert sinks configured", lambda: config_checks.alert_sinks(self.settings)),
            ("health_loopback", "Health and metrics on loopback", lambda: config_checks.health(self.settings)),
            (
                "validation_report",
                "GO paper-validation report",
                lambda: validation_report(self.settings, self.store, self.live),
            ),
            (
                "stability",
                "Stability over the last 24 h of paper / dry-run",
                lambda: stability(self.settings, self.store, self.live),
            ),
        ]
        if self.settings.venue.market == "usdm":
            steps += [
                ("leverage", "Leverage at most the maximum", perps.leverage),
                ("margin_type", "Margin type as configured", perps.margin_type),
                ("position_mode", "One-way position mode", perps.position_mode),
                ("deadman", "Dead-man's switch armed", perps.deadman),
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

    async def _smoke(self) -> Check:
        assert self.smoke is not None
        return await self.smoke.run(self.venue_checks.prices)


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
