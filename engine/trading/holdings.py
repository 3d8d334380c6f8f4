"""What the engine holds from its own fills, against what the venue holds (runbook 001 §6, 003 "Going Live").

Positions shown come from the venue's balances; this ledger says how much of each base asset the engine's own
fills account for. A trade made outside the engine (a foreign fill, a manual sale, a deposit) is a difference,
never a position adopted silently: over ``mismatch_warn_pct`` of equity the venue's amount is adopted and logged,
over ``mismatch_halt_pct`` the monitors halt and the difference is kept for the operator. A difference must be
seen on two reconciliations in a row before anything is done: a fill and the balance it moves can arrive in
either order.

Only the baseline (and the mismatch kept for the operator) is stored; the fills' net is recomputed from the stored
fills at every start. A net stored apart from the fills could miss one: a ``kill -9`` between the fill's commit and
the holdings' (tests/crashloop.py, during a close-all) made the engine believe it held coins the venue had sold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.kernel.events import Event, Fill, FillReceived, HoldingsChanged, Severity
from engine.kernel.ports import AlertPort, Publish
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio, base_of

log = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Difference:
    """One base asset whose venue amount differs from what the engine's own fills say."""

    asset: str
    engine: Decimal  # what the engine's fills (and adopted amounts) account for
    venue: Decimal
    pct_of_equity: Decimal

    @property
    def diff(self) -> Decimal:
        return self.venue - self.engine

    def to_dict(self) -> dict[str, str]:
        return {
            "asset": self.asset,
            "engine": str(self.engine),
            "venue": str(self.venue),
            "diff": str(self.diff),
            "pct_of_equity": f"{self.pct_of_equity:.4f}",
        }


class Holdings:
    """The engine's own holdings per base asset: a baseline (what the venue held when the engine first looked, plus
    what was adopted since) and the net of the engine's own fills since."""

    def __init__(
        self,
        portfolio: Portfolio,
        tracker: OrderTracker,
        warn_pct: Decimal,
        halt_pct: Decimal,
        publish: Publish,
        alert: AlertPort,
    ) -> None:
        self.portfolio = portfolio
        self.tracker = tracker
        self.warn_pct = warn_pct
        self.halt_pct = halt_pct
        self.publish = publish
        self.alert = alert
        self.baseline: dict[str, Decimal] | None = None
        self.own: dict[str, Decimal] = {}
        self.suspect: dict[str, Decimal] = {}  # asset -> the difference seen on the last reconciliation
        self.mismatch: list[Difference] = []  # confirmed differences over the halt level, kept for the operator
        self.adopted: list[Difference] = []  # the latest adoptions
        # Perps: positions the venue closed without a fill of the engine's (a liquidation, runbook 002), confirmed
        # like any difference; the ``liquidated`` monitor halts on them (an incident) and then clears the list.
        self.liquidated: list[Difference] = []

    # ------------------------------------------------------------ state kept across restarts

    def restore(self, saved: dict[str, Any] | None, fills: Iterable[Fill]) -> None:
        """The stored baseline, and the net of the engine's own fills recomputed from ``fills`` (the stored ones;
        the tracker must hold the stored orders already, it says which fills are the engine's own)."""
        if saved:
            self.baseline = {k: Decimal(v) for k, v in saved.get("baseline", {}).items()}
        self.own = {}
        for fill in fills:
            if self._is_own(fill):
                self._add(fill)
        if saved and "own" in saved:
            # A store from before the net was recomputed keeps one: say when it missed fills (a crash between the
            # two writes; the fills' amounts are taken), and store the record without it.
            kept = {k: Decimal(v) for k, v in saved["own"].items()}
            if {k: v for k, v in kept.items() if v} != {k: v for k, v in self.own.items() if v}:
                log.warning(
                    "holdings: the stored net of own fills (%s) differs from the stored fills' (%s); the "
                    "fills' is taken",
                    _words(kept),
                    _words(self.own),
                )
            self._save()

    def to_dict(self) -> dict[str, Any]:
        """Baseline, own fills' net and kept mismatch (a snapshot; ``stored`` is what survives a restart)."""
        return {**self.stored(), "own": {k: str(v) for k, v in self.own.items()}}

    def stored(self) -> dict[str, Any]:
        """What is kept across restarts: the own fills' net is not, the stored fills are its record."""
        return {
            "baseline": {k: str(v) for k, v in (self.baseline or {}).items()},
            "mismatch": [d.to_dict() for d in self.mismatch],
        }

    def _save(self) -> None:
        self.publish(HoldingsChanged(self.stored()))

    # ------------------------------------------------------------ fed by the order path

    def on_event(self, event: Event) -> None:
        """Inline bus handler: a new fill of an order this engine placed moves what it holds."""
        if isinstance(event, FillReceived) and self._is_own(event.fill):
            self._add(event.fill)

    def _is_own(self, fill: Fill) -> bool:
        """A fill of an order the engine placed (not one it only adopted from the venue, nor an unknown one)."""
        order = self.tracker.get(fill.client_id) if fill.client_id else None
        return order is not None and order.origin != "venue"

    def _add(self, fill: Fill) -> None:
        """A fill of the engine's own moves what it holds (nothing is stored: the fill itself is)."""
        base = base_of(fill.symbol)
        delta = fill.amount if fill.side == "buy" else -fill.amount
        if fill.fee_asset == base:
            delta -= fill.fee
        self.own[base] = self.own.get(base, ZERO) + delta

    # ------------------------------------------------------------ the check

    def engine_amount(self, asset: str) -> Decimal:
        return (self.baseline or {}).get(asset, ZERO) + self.own.get(asset, ZERO)

    def differences(self) -> list[Difference]:
        """Every base asset of a configured symbol whose venue amount differs from the engine's."""
        equity = self.portfolio.equity() or ZERO
        out = []
        for symbol in self.portfolio.symbols:
            asset = base_of(symbol)
            venue = self.portfolio.held_amount(symbol)  # perps: the signed position at the venue
            engine = self.engine_amount(asset)
            if venue == engine:
                continue
            price = self.portfolio.last.get(symbol) or ZERO
            pct = abs(venue - engine) * price / equity * 100 if equity > 0 else Decimal(100)
            out.append(Difference(asset, engine, venue, pct))
        return out

    def check(self) -> list[Difference]:
        """Compare after a balance refresh: adopt small differences seen twice, keep large ones seen twice.

        Returns the differences found now (for ``cockpit reconcile``)."""
        if self.baseline is None:
            # The first look: whatever the venue holds beyond the engine's own fills was there before it.
            self.baseline = {}
            for symbol in self.portfolio.symbols:
                asset = base_of(symbol)
                self.baseline[asset] = self.portfolio.held_amount(symbol) - self.own.get(asset, ZERO)
            self._save()
            return []
        found = self.differences()
        confirmed, suspect, mismatch, adopted = [], {}, [], []
        for d in found:
            if d.pct_of_equity <= self.warn_pct:
                continue
            suspect[d.asset] = d.diff
            if self.suspect.get(d.asset) == d.diff:  # seen on the reconciliation before too: confirmed
                confirmed.append(d)
        for d in confirmed:
            if self.portfolio.usdm and d.venue == 0 and d.engine != 0:
                # Gone at the venue with no fill of ours: liquidated. The venue's flat position is taken (nothing
                # is left to close), and the monitor says so loudly.
                self.baseline[d.asset] = self.baseline.get(d.asset, ZERO) + d.diff
                self.liquidated.append(d)
                continue
            if d.pct_of_equity > self.halt_pct:
                mismatch.append(d)
            else:
                self.baseline[d.asset] = self.baseline.get(d.asset, ZERO) + d.diff
                adopted.append(d)
                self.alert(
                    Severity.WARN,
                    "POSITION_ADOPTED",
                    f"{d.asset}: the venue holds {d.venue}, the engine's fills {d.engine} "
                    f"({d.pct_of_equity:.2f}% of equity); the venue's amount is adopted",
                    values=d.to_dict(),
                )
        self.suspect = suspect
        self.adopted = adopted
        if mismatch != self.mismatch:
            self.mismatch = mismatch
            self._save()
        elif adopted or self.liquidated:
            self._save()
        return found

    def adopt_all(self) -> list[Difference]:
        """The operator's answer to a kept mismatch: take the venue's amounts as the engine's."""
        taken = self.differences()
        if self.baseline is None:
            self.baseline = {}
        for d in taken:
            self.baseline[d.asset] = self.baseline.get(d.asset, ZERO) + d.diff
        self.mismatch, self.suspect = [], {}
        self._save()
        return taken

    def worst(self) -> Difference | None:
        """The largest confirmed mismatch over the halt level, or None."""
        return max(self.mismatch, key=lambda d: d.pct_of_equity, default=None)


def _words(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(amounts.items())) or "nothing"
