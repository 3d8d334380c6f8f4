"""Health and metrics for the tools around cockpit (runbook 001 §8 ``curl localhost:8000/health``, 004
``curl localhost:9108/metrics``): ``GET /health`` answers JSON with HTTP 200 when healthy and 503 otherwise (a load
balancer or a systemd watchdog can act on the code); ``GET /metrics`` is Prometheus' text format, through
prometheus-client. ``[health] port = 0`` (the default) serves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.kernel.events import AlertRaised, AlertUpdated, CommandAudited, Event

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

STATES = ("ACTIVE", "REDUCE_ONLY", "HALTED")


class Metrics:
    """The engine's numbers in one prometheus-client registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.equity = Gauge("cockpit_equity", "Account equity in the quote currency", registry=r)
        self.drawdown = Gauge("cockpit_drawdown_pct", "Drawdown from the equity peak, percent", registry=r)
        self.day_pnl = Gauge("cockpit_day_pnl", "Today's PnL in the quote currency (realised + unrealised)", registry=r)
        self.open_orders = Gauge("cockpit_open_orders", "Orders open at the venue, as tracked", registry=r)
        self.positions = Gauge("cockpit_positions", "Positions held (over dust)", registry=r)
        self.stream_age = Gauge(
            "cockpit_stream_age_seconds", "Seconds since the stalest market stream's last event", registry=r
        )
        self.user_stream_age = Gauge(
            "cockpit_user_stream_age_seconds",
            "Seconds since the user-data stream last proved alive (an event, or the venue listing its subscription)",
            registry=r,
        )
        self.monitors_age = Gauge(
            "cockpit_monitors_age_seconds", "Seconds since the monitors last completed a pass", registry=r
        )
        self.rest_errors = Gauge("cockpit_rest_errors_today", "REST errors today", registry=r)
        self.reconnects = Gauge("cockpit_ws_reconnects_today", "Websocket reconnects today", registry=r)
        self.state = Gauge("cockpit_trading_state", "1 for the trading state the engine is in", ["state"], registry=r)
        self.connected = Gauge("cockpit_venue_connected", "1 while the venue is connected", registry=r)
        self.monitor = Gauge("cockpit_monitor_status", "Each monitor: 0 OK, 1 WARN, 2 CRIT", ["code"], registry=r)
        self.alerts = Counter("cockpit_alerts", "Alerts raised (escalations count as CRIT)", ["severity"], registry=r)
        self.kill_switch = Counter(
            "cockpit_kill_switch_trips", "Kill-switch commands carried out", ["command"], registry=r
        )
        self.rest_latency = Histogram(
            "cockpit_rest_latency_seconds",
            "Venue REST round trips",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
        )

    def observe_rest(self, endpoint: str, ms: float) -> None:
        self.rest_latency.observe(ms / 1000)

    def on_event(self, event: Event) -> None:
        """Inline bus handler: alerts and kill-switch trips are counted as they happen."""
        if isinstance(event, AlertRaised):
            self.alerts.labels(event.alert.severity.value).inc()
        elif isinstance(event, AlertUpdated) and event.change == "escalated":
            self.alerts.labels("CRIT").inc()
        elif isinstance(event, CommandAudited) and event.kill_switch:
            self.kill_switch.labels(event.command).inc()  # a trip counts whether or not the venue let it finish

    def update(self, report: Mapping[str, Any]) -> None:
        """Gauges from the health report, just before a scrape."""
        numbers = report.get("numbers", {})
        for name in (
            "equity",
            "drawdown",
            "day_pnl",
            "open_orders",
            "positions",
            "stream_age",
            "user_stream_age",
            "monitors_age",
            "rest_errors",
            "reconnects",
        ):
            value = numbers.get(name)
            getattr(self, name).set(float("nan") if value is None else float(value))  # unknown is not zero
        for state in STATES:
            self.state.labels(state).set(1 if report.get("trading_state") == state else 0)
        self.connected.set(1 if report.get("venue", {}).get("connected") else 0)
        for m in report.get("monitors", []):
            self.monitor.labels(m["code"]).set({"OK": 0, "WARN": 1, "CRIT": 2}[m["status"]])

    def text(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """Serves ``/health`` and ``/metrics`` on ``host:port`` from the engine's report."""

    def __init__(self, report: Callable[[], dict[str, Any]], metrics: Metrics, host: str, port: int) -> None:
        self.report = report
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from aiohttp import web  # only with a [health] port: aiohttp's server takes ~0.2 s to import

        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]  # the site's socket, bound by start(): (host, port)
        log.info("health and metrics on http://%s:%d/health and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        report = self.report()
        body = {k: v for k, v in report.items() if k != "numbers"}
        from aiohttp import web

        return web.json_response(
            body,
            status=200 if report["status"] == "healthy" else 503,
            dumps=lambda v: __import__("json").dumps(v, default=str),
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        self.metrics.update(self.report())
        return web.Response(body=self.metrics.text(), headers={"Content-Type": CONTENT_TYPE_LATEST})
