"""The checklist's risk self-test (runbook 000 §1 "RiskManager Enforcement"): orders over the risk limits, priced
from what the venue's checks measured (the last price, the quote balance; round figures when the venue gave
neither), must be refused by the risk rules and by the engine's own order checks, and none is sent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from engine.gate.checklist import Check, Status
from engine.kernel.config import Settings
from engine.trading.risk import Exposure, limit_refusal

# The engine's order checks without sending (symbol, side, amount, price, stop): why an order is refused, or None.
Refusal = Callable[[str, str, Decimal, Decimal | None, Decimal | None], str | None]


def risk_self_test(
    settings: Settings,
    prices: dict[str, Decimal],
    balances: dict[str, tuple[Decimal, Decimal]],
    refusal: Refusal | None,
) -> Check:
    """Runbook 000 §1 "RiskManager Enforcement": an order over a limit must be refused, never sent."""
    c = ("risk_self_test", "Risk self-test: an order over a limit is refused")
    risk = settings.risk
    symbol = settings.venue.symbols[0]
    price = prices.get(symbol)
    quote = settings.engine.quote_asset
    equity = sum(balances.get(quote, (Decimal(0), Decimal(0))), Decimal(0))
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
    if refusal is not None:
        # The engine's own order path, up to the point where an order would be stored and sent.
        probes["the engine's order checks (not sent)"] = refusal(symbol, "buy", amount, price, stop)
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
