"""The validation report: what a paper run did, measured, and judged GO / NO-GO against the criteria.

Runbook 003 "Running Validation": at least 10 trades, win rate at least 45 %, Sharpe at least 0.5, max drawdown at
most 15 % (``[validation]`` holds them). A *trade* is a closed round trip (a position opened and flattened again),
its result the realised PnL after fees. Sharpe is taken from hourly returns of the equity curve, annualised over
8,760 hours (crypto trades every hour of the year), with no risk-free rate. Every figure comes from the engine's
own events, in Decimal; the report keeps money as strings and ratios as numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.kernel.config import ValidationConfig
from engine.kernel.events import (
    AlertRaised,
    EquitySampled,
    Event,
    FillReceived,
    OrderCreated,
    OrderRefused,
    OrderStatus,
    OrderUpdated,
    RoundTripClosed,
)
from engine.trading.stats import DayStats

ZERO = Decimal(0)
HOURS_PER_YEAR = Decimal(8760)
MONEY = Decimal("0.00000001")  # amounts in the report: to the venue's smallest fee unit


@dataclass
class Recorder:
    """Collects, from the engine's bus, the figures a report is made of (an inline handler: ``on_event``)."""

    last_price: Callable[[str], Decimal | None]  # the engine's last price of a symbol (slippage reference)
    trips: list[Decimal] = field(default_factory=list)
    curve: list[tuple[datetime, Decimal]] = field(default_factory=list)
    fills: int = 0
    alerts: dict[str, int] = field(default_factory=lambda: {"INFO": 0, "WARN": 0, "CRIT": 0})
    alert_codes: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    rejected: int = 0
    open_orders: set[str] = field(default_factory=set)  # client ids the engine tracks as open
    _market_refs: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # client id -> (side, ref price)
    _slip_cost: Decimal = ZERO  # sum of (fill - ref) * amount against the order's side, in quote
    _slip_notional: Decimal = ZERO

    def on_event(self, event: Event) -> None:
        if isinstance(event, FillReceived):
            self.fills += 1
            ref = self._market_refs.get(event.fill.client_id or "")
            if ref is not None and ref[1] > 0:
                side, price = ref
                sign = 1 if side == "buy" else -1
                self._slip_cost += sign * (event.fill.price - price) * event.fill.amount
                self._slip_notional += price * event.fill.amount
        elif isinstance(event, OrderCreated):
            order = event.order
            if order.status.is_open:
                self.open_orders.add(order.client_id)
            last = self.last_price(order.symbol)
            if order.type == "market" and last is not None:
                self._market_refs[order.client_id] = (order.side, last)
        elif isinstance(event, RoundTripClosed):
            self.trips.append(event.pnl)
        elif isinstance(event, EquitySampled):
            self.curve.append((event.ts, event.equity))
        elif isinstance(event, OrderUpdated):
            if event.order.status.is_open:
                self.open_orders.add(event.order.client_id)
            else:
                self.open_orders.discard(event.order.client_id)
            if event.order.status == OrderStatus.REJECTED and event.previous != OrderStatus.REJECTED:
                self.rejected += 1
        elif isinstance(event, AlertRaised):
            self.alerts[event.alert.severity.value] += 1
            self.alert_codes[event.alert.code] = self.alert_codes.get(event.alert.code, 0) + 1
        elif isinstance(event, OrderRefused):
            self.refused += 1

    @property
    def avg_slippage_bps(self) -> Decimal | None:
        """Market orders' fills against the last price when they were asked for, weighted by size, in basis
        points; positive is a cost. Limit orders fill at their price or better: no slippage to count."""
        if self._slip_notional == 0:
            return None
        return self._slip_cost / self._slip_notional * 10_000


def max_drawdown_pct(curve: Iterable[tuple[datetime, Decimal]]) -> Decimal:
    """The largest fall from a running peak of the equity curve, in percent of that peak."""
    peak: Decimal | None = None
    worst = ZERO
    for _, equity in curve:
        if peak is None or equity > peak:
            peak = equity
        if peak > 0:
            worst = max(worst, (peak - equity) / peak * 100)
    return worst


def hourly_returns(curve: list[tuple[datetime, Decimal]]) -> list[Decimal]:
    """Returns between the equity at each whole hour since the first sample (the last sample at or before it)."""
    if len(curve) < 2:
        return []
    start, end = curve[0][0], curve[-1][0]
    marks: list[Decimal] = []
    i = 0
    t = start
    while t <= end:
        while i + 1 < len(curve) and curve[i + 1][0] <= t:
            i += 1
        marks.append(curve[i][1])
        t += timedelta(hours=1)
    return [(b - a) / a for a, b in zip(marks, marks[1:]) if a > 0]


def sharpe(curve: list[tuple[datetime, Decimal]]) -> Decimal | None:
    """Annualised Sharpe ratio of the hourly returns (no risk-free rate); None with under two returns or none
    that differ (a flat curve has no risk to reward)."""
    returns = hourly_returns(curve)
    if len(returns) < 2:
        return None
    mean = sum(returns, ZERO) / len(returns)
    variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (len(returns) - 1)
    if variance == 0:
        return None
    return mean / variance.sqrt() * HOURS_PER_YEAR.sqrt()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(MONEY))


def _num(value: Decimal | None, places: int) -> float | None:
    return None if value is None else float(round(value, places))


def _text(value: Decimal) -> str:
    """A figure for a sentence: whole numbers without decimals, others to two places."""
    return str(int(value)) if value == value.to_integral_value() else f"{value:.2f}"


def criteria(
    cfg: ValidationConfig,
    trades: int,
    win_rate: Decimal | None,
    sharpe_ratio: Decimal | None,
    drawdown: Decimal,
    hours_run: Decimal,
    hours_asked: Decimal,
) -> tuple[dict[str, Any], list[str]]:
    """Each criterion with its value, threshold and pass; and a sentence per failure saying by how much."""
    rows = (
        ("trades", "trades", Decimal(trades), Decimal(cfg.min_trades), ">=", ""),
        ("win_rate", "win rate", win_rate, cfg.min_win_rate_pct, ">=", "%"),
        ("sharpe", "Sharpe", sharpe_ratio, cfg.min_sharpe, ">=", ""),
        ("max_drawdown_pct", "max drawdown", drawdown, cfg.max_drawdown_pct, "<=", "%"),
        ("duration_h", "simulated hours", hours_run, hours_asked, ">=", " h"),
    )
    table: dict[str, Any] = {}
    failed: list[str] = []
    for key, label, value, threshold, rule, unit in rows:
        ok = value is not None and (value >= threshold if rule == ">=" else value <= threshold)
        table[key] = {
            "value": _num(value, 4) if key != "trades" else trades,
            "threshold": _num(threshold, 4),
            "rule": rule,
            "pass": ok,
        }
        if ok:
            continue
        if value is None:
            failed.append(f"{label}: no value (too few trades or hours to measure) against {rule} {threshold}{unit}")
            continue
        gap = (threshold - value) if rule == ">=" else (value - threshold)
        word = "short by" if rule == ">=" else "over by"
        failed.append(
            f"{label} {_text(value)}{unit} {'<' if rule == '>=' else '>'} {_text(threshold)}{unit} "
            f"({word} {_text(gap)}{unit})"
        )
    return table, failed


def build_report(
    recorder: Recorder,
    days: list[DayStats],
    cfg: ValidationConfig,
    *,
    hours_asked: Decimal,
    simulated: dict[str, Any],
    source: dict[str, Any],
    settings_summary: dict[str, Any],
    run: dict[str, Any],
    final_equity: Decimal | None,
    funding: Decimal | None = None,
) -> dict[str, Any]:
    """The report: verdict, the four criteria of runbook 003 (and the hours simulated), and the figures around
    them (on perps, ``funding``: what the positions received (+) or paid (-), in the PnL already: the net is the
    margin balance's change, the realised the round trips' results, funding while open included). Everything but
    ``run`` (when and how fast it ran on this machine) repeats exactly for the same seed or CSV and the same
    configuration."""
    trips = recorder.trips
    wins = sum(1 for pnl in trips if pnl > 0)
    win_rate = Decimal(wins) / len(trips) * 100 if trips else None
    curve = list(recorder.curve)
    if final_equity is not None and curve:
        curve.append((curve[-1][0], final_equity))
    drawdown = max_drawdown_pct(curve)
    ratio = sharpe(curve)
    hours_run = Decimal(str(simulated["hours"]))
    table, failed = criteria(cfg, len(trips), win_rate, ratio, drawdown, hours_run, hours_asked)
    fees = sum((d.fees for d in days), ZERO)
    ended = sum(d.orders_done for d in days)
    filled = sum(d.orders_filled for d in days)
    start_equity = curve[0][1] if curve else None
    end_equity = curve[-1][1] if curve else None
    net = end_equity - start_equity if start_equity is not None and end_equity is not None else None
    slippage = recorder.avg_slippage_bps
    rest_errors = sum(d.rest_errors for d in days)
    return {
        "verdict": "GO" if not failed else "NO-GO",
        "trades": len(trips),
        "win_rate": _num(win_rate, 2),
        "sharpe": _num(ratio, 4),
        "max_drawdown_pct": _num(drawdown, 4),
        "criteria": table,
        "failed": failed,
        "pnl": {
            "net": _money(net),
            "realized": _money(sum(trips, ZERO)),
            "return_pct": None if net is None or not start_equity else str(round(net / start_equity * 100, 4)),
        },
        "fees": _money(fees),
        **({} if funding is None else {"funding": _money(funding)}),
        "equity": {"start": _money(start_equity), "end": _money(end_equity), "samples": len(curve)},
        "round_trips": {
            "won": wins,
            "lost": sum(1 for pnl in trips if pnl < 0),
            "flat": sum(1 for pnl in trips if pnl == 0),
        },
        "fills": recorder.fills,
        "orders": {
            "ended": ended,
            "filled": filled,
            "rejected_by_venue": recorder.rejected,
            "refused_by_risk": recorder.refused,
        },
        "fill_rate": _num(Decimal(filled) / ended * 100, 2) if ended else None,
        "avg_slippage_bps": _num(slippage, 3),
        "errors": rest_errors + recorder.rejected,
        "rest_errors": rest_errors,
        "reconnects": sum(d.ws_reconnects for d in days),
        "days": [
            {
                "day": d.day.isoformat(),
                "fills": d.trades_count,
                "won": d.winning_trades,
                "lost": d.losing_trades,
                "net_pnl": _money(d.net_pnl),
                "fees": _money(d.fees),
            }
            for d in days
        ],
        "alerts": dict(recorder.alerts),
        "alert_codes": dict(sorted(recorder.alert_codes.items())),
        **source,
        "simulated": simulated,
        "config": settings_summary,
        "run": run,
    }


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what belongs to the machine and the moment (``run``): equal for equal runs."""
    return {k: v for k, v in report.items() if k != "run"}
