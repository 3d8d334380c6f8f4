"""The read model: what front ends and the tools around cockpit read of the engine, as plain values.

The first frame's snapshot, the health line, ``GET /health`` and the snapshot archive's parts are all built here
from the engine's parts, so no front end reaches into them. (The service API serves these same views.)
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.kernel.events import Event, HealthUpdated, TradingState
from engine.trading.execution import perp_record

if TYPE_CHECKING:
    from engine.core.engine import Engine


def _alert_dict(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "ts": a.ts,
        "severity": a.severity.value,
        "code": a.code,
        "message": a.message,
        "values": a.values,
        "count": a.count,
        "acked_by": a.acked_by,
        "escalated": a.escalated,
    }


def _order_dict(o: Any) -> dict[str, Any]:
    return {
        "client_id": o.client_id,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.type,
        "amount": o.amount,
        "price": o.price,
        "status": o.status.value,
        "filled": o.filled,
        "origin": o.origin,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


def _describe_events(events: list[tuple[datetime, Event]]) -> list[dict[str, Any]]:
    return [{"ts": ts.isoformat(), "type": type(event).__name__, "event": str(event)[:600]} for ts, event in events]


def _describe_orders(orders: list[Any]) -> list[dict[str, Any]]:
    return [_order_dict(o) for o in orders]


class ReadModel:
    """Typed views of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def snapshot(self) -> dict[str, Any]:
        """Everything a front end needs to draw its first frame."""
        return {
            "mode": self.engine.mode,
            "venue": self.engine.venue_label,
            "state": self.engine.trading_state,
            "state_info": dict(self.engine.state_info),
            "connected": self.engine.connected,
            "orders": self.engine.tracker.open_orders(),
            "balances": tuple(self.engine.portfolio.balances.values()),
            "positions": self.engine.portfolio.positions(),
            "alerts": list(self.engine.alert_book.recent),
        }

    def health(self) -> dict[str, Any]:
        """Numbers for the health line: stream age, REST latency p95, errors, breaker, polling."""
        venue = self.engine.link.venue
        return {
            "connected": self.engine.connected,
            "market_data_age_s": self.engine.sync.market_data_age_s(),
            "streams_down": dict(self.engine.sync.stream_down),
            "polling": self.engine.sync.polling,
            "rest_p50_ms": venue.latency.percentile(None, 50) if venue else None,
            "rest_p95_ms": venue.latency.percentile(None, 95) if venue else None,
            "latency": venue.latency.summary() if venue else {},
            "breaker": venue.breaker.state.value if venue else None,
            "today": self.engine.stats.current().to_dict(),
            "drawdown_pct": str(self.engine.monitors.drawdown_pct),
            "strategies": self.engine.runner.status(),
            "monitors": self.engine.monitors.statuses(),
            "monitors_loop": self.engine.monitors.watchdog.status(),
            "user_stream_age_s": round(self.engine.sync.user_stream_age_s(), 1),
            "entry_holds": dict(self.engine.monitors.holds),
        }

    def health_event(self) -> HealthUpdated:
        """The health line's numbers, published every second. Building it is also the monitors' watchdog's look
        (``engine.safety.watchdog``): the engine calls this every second from outside the monitors' loop, so a
        loop that stopped reading is noticed, and halts, here."""
        monitors_age = self.engine.monitors.watchdog.look()
        venue, day = self.engine.link.venue, self.engine.stats.current()
        return HealthUpdated(
            market_data_age_s=self.engine.sync.market_data_age_s(),
            rest_p95_ms=venue.latency.percentile(None, 95) if venue else None,
            rest_errors_today=day.rest_errors,
            ws_reconnects_today=day.ws_reconnects,
            breaker=venue.breaker.state.value if venue else None,
            polling=self.engine.sync.polling,
            streams_down=tuple(self.engine.sync.stream_down),
            day_pnl=day.net_pnl + self.engine.portfolio.unrealized(),
            drawdown_pct=self.engine.monitors.drawdown_pct,
            monitors_age_s=None if monitors_age is None else round(monitors_age, 2),
            monitors_stalled=self.engine.monitors.watchdog.stalled is not None,
            user_stream_age_s=round(self.engine.sync.user_stream_age_s(), 1),
            chat=tuple(f"{bot['name']} {bot['state']}" for bot in self.engine.chat.states()),
        )

    def snapshot_parts(self) -> dict[str, Any]:
        """Everything an investigation needs, without a secret: the config is dumped with its secrets masked."""
        config = self.engine.settings.model_dump(mode="json")
        for target in config.get("alerts", {}).get("notify", []):
            target["url"] = "**********"
        return {
            "state": {
                "trading_state": self.engine.trading_state.value,
                "info": self.engine.state_info,
                "mode": self.engine.mode,
                "venue": self.engine.venue_label,
                "connected": self.engine.connected,
            },
            # Put into words by the thread that writes the archive: records are immutable, and describing 500 of
            # them on the loop would hold up the kill switch whose trip took this snapshot.
            "events": partial(_describe_events, list(self.engine.recent_events)),
            "alerts": [_alert_dict(a) for a in self.engine.alert_book.recent],
            "orders": partial(_describe_orders, self.engine.tracker.all()[-500:]),
            # Perps (runbook 002): side, leverage, margin, liquidation price and distance, funding, as the status shows.
            "positions": [
                perp_record(p)
                if self.engine.portfolio.usdm
                else {"symbol": p.symbol, "amount": p.amount, "avg_entry": p.avg_entry, "last": p.last}
                for p in self.engine.portfolio.positions()
            ],
            "balances": [
                {"asset": b.asset, "free": b.free, "locked": b.locked} for b in self.engine.portfolio.balances.values()
            ],
            "monitors": self.engine.monitors.statuses(),
            "holdings": self.engine.holdings.to_dict(),
            "health": self.health(),
            "config": config,
        }

    def health_report(self) -> dict[str, Any]:
        """``GET /health``: healthy only when connected, not halted, no monitor WARN or CRIT, and the monitors'
        loop reading (its age is ``monitors_loop``)."""
        monitors = self.engine.monitors.statuses()
        loop = self.engine.monitors.watchdog.status()
        troubled = [m["code"] for m in monitors if m["status"] != "OK"] + (
            ["monitors_stalled"] if loop["stalled"] else []
        )
        if self.engine.trading_state == TradingState.HALTED:
            status = "halted"
        elif not self.engine.connected or troubled:
            status = "degraded"
        else:
            status = "healthy"
        day = self.engine.stats.current()
        equity = self.engine.portfolio.equity()
        return {
            "status": status,
            "mode": self.engine.mode,
            "trading_state": self.engine.trading_state.value,
            "state_changed": dict(self.engine.state_info),
            "venue": {
                "name": self.engine.venue_label,
                "connected": self.engine.connected,
                "streams": self.engine.sync.stream_states(),
                "market_data_age_s": self.engine.sync.market_data_age_s(),
                "user_stream_age_s": round(self.engine.sync.user_stream_age_s(), 1),
                "breaker": self.engine.venue.breaker.state.value if self.engine.venue else None,
            },
            "open_orders": len(self.engine.tracker.open_orders()),
            "positions": [{"symbol": p.symbol, "amount": str(p.amount)} for p in self.engine.portfolio.positions()],
            "kill_switch": {
                "halted": self.engine.trading_state == TradingState.HALTED,
                "retrying": self.engine.kill_switch_retrying(),
            },
            "monitors": monitors,
            "monitors_loop": loop,
            "entry_holds": dict(self.engine.monitors.holds),
            "troubled": troubled,
            "numbers": {
                "equity": equity,
                "drawdown": self.engine.monitors.drawdown_pct,
                "day_pnl": day.net_pnl + self.engine.portfolio.unrealized(),
                "open_orders": len(self.engine.tracker.open_orders()),
                "positions": len(self.engine.portfolio.positions()),
                "stream_age": self.engine.sync.market_data_age_s(),
                "user_stream_age": self.engine.sync.user_stream_age_s(),
                "monitors_age": loop["last_pass_age_s"],
                "rest_errors": day.rest_errors,
                "reconnects": day.ws_reconnects,
            },
        }
