"""The perpetual-futures monitors (runbook 002 "Key Metrics to Monitor": leverage against the maximum, the buffer
to liquidation; "High Leverage Warning"; "Maintain adequate liquidation buffers"), read in the same table and
judged by the same contract as every other monitor (``engine.safety.monitors``). They exist only when ``[venue]
market = "usdm"``.

| code | WARN | CRIT and action |
|---|---|---|
| leverage | at leverage_warn_pct_of_max of [risk] max_leverage | over it: reduce-only |
| liquidation_distance | under liq_warn_pct | under liq_crit_pct: close it or reduce it (liq_crit_action) |
| funding | the funding about to be paid over funding_warn_pct of equity | |
| mark_divergence | the mark over mark_divergence_warn_pct from the last price | over the CRIT level: reduce-only |
| liquidated | | a position the venue closed with no fill of ours (reconciliation): halt (an incident) |

Every action is a command through the engine's one ``execute``, by ``monitor:<code>``, audited like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.kernel.commands import ClosePosition, Command, Halt, PlaceOrder, ReduceOnly
from engine.kernel.config import MonitorsConfig, RiskConfig
from engine.kernel.events import Position
from engine.safety.readings import CRIT, OK, WARN, Reading, pct
from engine.trading.holdings import Holdings
from engine.trading.portfolio import Portfolio

ZERO = Decimal(0)

# What each perps monitor's CRIT does, for its alert's sentence.
ACTIONS = {
    "leverage": "reduce-only",
    "mark_divergence": "reduce-only",
    "liquidated": "halting",
}

# (reader, confirm, blocks resume, WARN action, CRIT action), as in ``Monitors.watches``.
Watch = tuple[Callable[[], Reading], bool, bool, Callable[[Reading], None] | None, Callable[[Reading], None] | None]


class PerpWatch:
    """Reads the perps signals from the portfolio (the venue's positions, marks and funding rates) and acts
    through ``submit``."""

    def __init__(
        self,
        risk: RiskConfig,
        cfg: MonitorsConfig,
        portfolio: Portfolio,
        holdings: Holdings,
        leverage_set: dict[str, Decimal],
        command: Callable[[Command], None],
        step: Callable[[str, Decimal], Decimal] | None = None,
    ) -> None:
        self.risk = risk
        self.cfg = cfg
        self.portfolio = portfolio
        self.holdings = holdings
        self.leverage_set = leverage_set  # symbol -> the leverage the venue confirmed (Execution.leverage)
        self.command = command
        self.step = step or (lambda symbol, amount: amount)  # the venue's amount precision

    def watches(self) -> dict[str, Watch]:
        return {
            "leverage": (self.read_leverage, True, False, None, self._reduce_only("leverage")),
            "liquidation_distance": (self.read_liquidation, True, False, None, self._liquidation_action),
            "funding": (self.read_funding, False, False, None, None),
            "mark_divergence": (self.read_mark_divergence, True, False, None, self._reduce_only("mark_divergence")),
            "liquidated": (self.read_liquidated, False, False, None, self._liquidated),
        }

    def action_words(self, code: str) -> str | None:
        if code == "liquidation_distance":
            return "closing the position" if self.cfg.liq_crit_action == "close" else "reducing the position"
        return ACTIONS.get(code)

    # ------------------------------------------------------------ readings

    def _positions(self) -> tuple[Position, ...]:
        return self.portfolio.positions()

    def read_leverage(self) -> Reading:
        """The account's leverage (every position's notional over equity, runbook 002 "Leverage: Current vs maximum
        allowed"); CRIT too when a symbol's leverage at the venue (what sets its liquidation price) is over the
        maximum, whatever the account's."""
        cap = self.risk.max_leverage
        warn = cap * self.cfg.leverage_warn_pct_of_max / 100
        threshold = f"{warn:.2f}x / {cap}x"
        equity = self.portfolio.equity()
        notional = sum((self.portfolio.position_value(s) for s in self.portfolio.symbols), ZERO)
        account = notional / equity if equity and equity > 0 else ZERO
        venue = {p.symbol: p.leverage for p in self._positions() if p.leverage is not None}
        venue.update({s: v for s, v in self.leverage_set.items() if s not in venue})
        over = sorted(s for s, v in venue.items() if v > cap)
        values = {
            "account_leverage": f"{account:.2f}",
            "venue_leverage": {s: str(v) for s, v in venue.items()},
            "max_leverage": str(cap),
        }
        if over:
            detail = ", ".join(f"{s} {venue[s]}x" for s in over) + " at the venue"
            return Reading(CRIT, f"{max(venue[s] for s in over)}x ({over[0]})", threshold, detail, values)
        level = CRIT if account > cap else WARN if account >= warn else OK
        return Reading(level, f"{account:.2f}x", threshold, "", values)

    def read_liquidation(self) -> Reading:
        """The nearest position to its liquidation price: the mark's distance to it, in percent of the mark."""
        cfg = self.cfg
        threshold = f"{cfg.liq_warn_pct}% / {cfg.liq_crit_pct}%"
        near = [(d, p) for p in self._positions() if (d := p.liquidation_distance_pct) is not None]
        if not near:
            return Reading(OK, "no position", threshold)
        distance, p = min(near, key=lambda dp: dp[0])
        level = CRIT if distance < cfg.liq_crit_pct else WARN if distance < cfg.liq_warn_pct else OK
        under = sorted(q.symbol for d, q in near if d < cfg.liq_crit_pct)
        return Reading(
            level,
            f"{pct(distance)} {p.symbol}",
            threshold,
            ""
            if level == OK
            else f"{p.symbol} {p.side} {abs(p.amount)}: mark {p.last}, liquidation at {p.liquidation_price}",
            {
                "symbol": p.symbol,
                "side": p.side,
                "amount": str(p.amount),
                "mark": str(p.last),
                "liquidation_price": str(p.liquidation_price),
                "distance_pct": f"{distance:.2f}",
                "under_crit": under,
                "action": cfg.liq_crit_action,
            },
        )

    def read_funding(self) -> Reading:
        """The funding each position is about to pay at the next funding time (its notional times the rate: a long
        pays a positive rate, a short a negative one), the largest as a share of equity."""
        warn = self.cfg.funding_warn_pct
        equity = self.portfolio.equity()
        worst: tuple[Decimal, str, Decimal, Decimal] | None = None
        for p in self._positions():
            rate, _ = self.portfolio.funding_rates.get(p.symbol, (None, None))
            if rate is None or p.value is None:
                continue
            pays = p.value * rate * (1 if p.amount > 0 else -1)
            share = pays / equity * 100 if equity and equity > 0 else ZERO
            if worst is None or share > worst[0]:
                worst = (share, p.symbol, rate, pays)
        if worst is None:
            return Reading(OK, "none due", f"{warn}% of equity")
        share, symbol, rate, pays = worst
        level = WARN if share > warn else OK
        return Reading(
            level,
            f"{pct(share)} {symbol}",
            f"{warn}% of equity",
            f"{symbol} pays {pays:.4f} at the next funding (rate {rate})" if level == WARN else "",
            {"symbol": symbol, "funding_rate": str(rate), "payment": f"{pays:.8f}", "share_pct": f"{share:.4f}"},
        )

    def read_mark_divergence(self) -> Reading:
        """The venue's mark price against the market's price (the index of the same answer, else the last traded
        price): liquidation follows the mark, so a mark far from the market is a venue (or index) problem the
        operator must see before trading on it."""
        cfg = self.cfg
        threshold = f"{cfg.mark_divergence_warn_pct}% / {cfg.mark_divergence_crit_pct}%"
        gaps = [
            (abs(mark - last) / last * 100, s, mark, last)
            for s, (mark, index) in self.portfolio.marks.items()
            if (last := index or self.portfolio.last.get(s))
        ]
        if not gaps:
            return Reading(OK, "—", threshold)
        gap, symbol, mark, last = max(gaps)
        level = CRIT if gap > cfg.mark_divergence_crit_pct else WARN if gap > cfg.mark_divergence_warn_pct else OK
        return Reading(
            level,
            f"{pct(gap)} {symbol}",
            threshold,
            f"{symbol} mark {mark} vs market {last}" if level != OK else "",
            {"symbol": symbol, "mark": str(mark), "last": str(last), "gap_pct": f"{gap:.4f}"},
        )

    def read_liquidated(self) -> Reading:
        """A position the venue closed with no fill of the engine's (reconciliation, confirmed twice)."""
        gone = self.holdings.liquidated
        if not gone:
            return Reading(OK, "none", "no liquidation")
        return Reading(
            CRIT,
            ", ".join(f"{d.asset} {d.engine}" for d in gone),
            "no liquidation",
            "the venue closed "
            + ", ".join(f"{d.asset} {d.engine}" for d in gone)
            + " with no fill of the engine's: liquidated",
            {"liquidated": [d.to_dict() for d in gone]},
        )

    # ------------------------------------------------------------ actions

    def _reduce_only(self, code: str) -> Callable[[Reading], None]:
        def act(reading: Reading) -> None:
            self.command(
                ReduceOnly(
                    actor=f"monitor:{code}",
                    reason=f"{code}: {reading.value} (limit {reading.threshold})",
                    values={"value": reading.value, "threshold": reading.threshold, **reading.values},
                )
            )

        return act

    def _liquidation_action(self, reading: Reading) -> None:
        """Runbook 002 "Maintain adequate liquidation buffers": each position under liq_crit_pct is closed
        (``close``) or reduced by liq_reduce_pct with a reduce-only market order (``reduce``)."""
        cfg = self.cfg
        values: dict[str, Any] = {"value": reading.value, "threshold": reading.threshold, **reading.values}
        for p in self._positions():
            distance = p.liquidation_distance_pct
            if distance is None or distance >= cfg.liq_crit_pct:
                continue
            reason = f"liquidation_distance: {p.symbol} {pct(distance)} (limit {cfg.liq_crit_pct}%)"
            actor = "monitor:liquidation_distance"
            if cfg.liq_crit_action == "close":
                self.command(ClosePosition(actor=actor, reason=reason, values=values, symbol=p.symbol))
                continue
            amount = self.step(
                p.symbol, (abs(p.amount) * cfg.liq_reduce_pct / 100).quantize(Decimal("1e-12"), ROUND_DOWN)
            )
            if amount <= 0:
                amount = abs(p.amount)  # under one step: the whole position
            side = "buy" if p.amount < 0 else "sell"
            self.command(
                PlaceOrder(
                    actor=actor, reason=reason, values=values, symbol=p.symbol, side=side, type="market", amount=amount
                )
            )

    def _liquidated(self, reading: Reading) -> None:
        """Halt (an incident opens with it), then let the reading go back to OK: the venue's flat position was
        taken, and the alert, the incident and the audit record keep what happened."""
        self.command(
            Halt(
                actor="monitor:liquidated",
                reason=f"liquidated at the venue: {reading.value}",
                values={"value": reading.value, **reading.values},
            )
        )
        self.holdings.liquidated = []
