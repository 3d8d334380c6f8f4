"""What every runbook scenario shares: the engine's settings on the simulator with small thresholds, the checks
made afterwards (alerts, trading state, the orders and positions at the venue, the audit trail), and the time from
each fault to the engine's action, collected for the proof report (``build/proof/scenarios.md``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eventually import eventually
from fastsim import FAST

from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import TradingState
from engine.sim import Simulator
from engine.store.db import Store

# The monitors' thresholds scaled down so that a scenario takes seconds: the shape of each rule is the runbook's,
# only the numbers are small (ws stale 1 s / 3 s for 10 s / 60 s, a flash crash of 8 % in 5 s for 10 % in 60 s...);
# resting orders are not "stuck" unless a scenario says so.
MON = dict(
    interval_s=0.1,
    ws_stale_warn_s=1.0,
    ws_stale_crit_s=3.0,
    rest_errors_max=2,
    rest_errors_window_s=3.0,
    ping_s=0.2,
    reconcile_s=0.3,
    stuck_order_s=60.0,
    flash_crash_pct=Decimal("8"),
    flash_crash_window_s=5.0,
    flash_calm_pct=Decimal("1"),
    flash_calm_s=1.0,
    clock_skew_warn_ms=500.0,
)
BTC_DUST = Decimal("0.00001")  # the simulator's LOT_SIZE minimum: under it a position cannot be sold
PROOF_DIR = Path(__file__).resolve().parents[1] / "build" / "proof"


def settings(
    sim: Simulator,
    data_dir: Path,
    *,
    monitors: dict | None = None,
    risk: dict | None = None,
    venue: dict | None = None,
    engine: dict | None = None,
) -> Settings:
    """The engine on ``sim`` with the small thresholds above, strategies off (the scenario places its orders)."""
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **{**FAST, "timeout_ms": 2000, **(venue or {})},
        ),
        engine=EngineConfig(**{"data_dir": data_dir, "equity_sample_s": 0.2, **(engine or {})}),
        risk=RiskConfig(**{"max_position_pct": Decimal("20"), **(risk or {})}),
        monitors=MonitorsConfig(**{**MON, **(monitors or {})}),
        strategy=StrategyConfig(enabled=False),
    )


# ------------------------------------------------------------------ reading what happened


def codes(engine: Engine) -> list[str]:
    """The codes of the engine's recent alerts."""
    return [a.code for a in engine.alert_book.recent]


def store(data_dir: Path) -> Store:
    """The store as another shell reads it (read-only), so a check never writes."""
    return Store.in_dir(data_dir, readonly=True)


def audited(data_dir: Path, command: str, actor: str | None = None) -> list[dict]:
    """Audit records of ``command`` (by ``actor``, if given), oldest first."""
    rows = store(data_dir).audit(limit=500)[::-1]
    return [r for r in rows if r["command"] == command and (actor is None or r["actor"] == actor)]


def first_alert(data_dir: Path, code: str) -> dict:
    """The stored alert ``code`` (its first time)."""
    rows = [r for r in store(data_dir).alerts(limit=500) if r["code"] == code]
    assert rows, f"no {code} alert stored"
    return rows[-1]


def at(row_or_ts: dict | str) -> datetime:
    """The time of an audit record, alert row or state change (or an ISO string)."""
    ts = row_or_ts if isinstance(row_or_ts, str) else row_or_ts["ts"]
    return datetime.fromisoformat(ts)


async def tripped(engine: Engine, code: str, timeout: float = 15) -> datetime:
    """Wait for a halt by ``monitor:<code>``; return the time of the state change."""
    await eventually(
        lambda: engine.trading_state == TradingState.HALTED and engine.state_info.get("code") == code,
        timeout=timeout,
        message=f"halted by {code}",
    )
    return at(engine.state_info["ts"])


def held(sim: Simulator, asset: str) -> Decimal:
    """What the venue holds of ``asset``, free and locked."""
    return sum(sim.balance(asset), Decimal(0))


async def buy(engine: Engine, symbol: str = "BTC/USDT", amount: str = "0.01") -> None:
    """A market buy by the operator (a position for a scenario to protect)."""
    last = engine.portfolio.last[symbol]
    result = await engine.execute(
        PlaceOrder(symbol=symbol, side="buy", type="market", amount=Decimal(amount), stop_loss=last * Decimal("0.5"))
    )
    assert result.ok, result.message
    await eventually(lambda: engine.portfolio.free(symbol.split("/")[0]) > 0, message="the position is known")


async def resting_buy(engine: Engine, symbol: str = "BTC/USDT", amount: str = "0.001", below: str = "0.9") -> str:
    """A limit buy resting under the price; returns its client id."""
    price = engine.portfolio.last[symbol] * Decimal(below)
    result = await engine.execute(
        PlaceOrder(
            symbol=symbol,
            side="buy",
            type="limit",
            amount=Decimal(amount),
            price=price,
            stop_loss=price * Decimal("0.5"),
        )
    )
    assert result.ok, result.message
    return result.details["client_id"]


def afterwards(
    engine: Engine,
    sim: Simulator,
    data_dir: Path,
    *,
    state: TradingState,
    alerts: Iterable[str] = (),
    absent: Iterable[str] = (),
    open_orders: int | None = None,
    btc_at_least: Decimal | None = None,
    btc_flat: bool = False,
    audit: Iterable[tuple[str, str]] = (),
    kill_switch_by: str | None = None,
) -> None:
    """The checks every scenario ends with: the trading state (in the engine and as stored), the alerts raised and
    not raised, the orders (but the engine's protective stops) and BTC position at the venue, and the audit trail
    (``(command, actor)`` records that
    must be there and succeeded; ``kill_switch_by``: the only actor whose kill-switch records may exist, "" none)."""
    engine.report_answered()  # what follows a kill-switch tier's answer (its alert, its audit record), done now
    assert engine.trading_state == state, f"trading state {engine.trading_state.value}, expected {state.value}"
    assert store(data_dir).trading_state()[0] == state, "the stored trading state differs from the engine's"
    seen = set(codes(engine)) | {r["code"] for r in store(data_dir).alerts(limit=500)}
    for code in alerts:
        assert code in seen, f"alert {code} not raised; raised: {sorted(seen)}"
    for code in absent:
        assert code not in seen, f"alert {code} raised and should not have been"
    if open_orders is not None:
        # The engine's protective stops (issue 22) rest beside whatever a scenario is about: counted apart.
        working = [o for o in sim.open_orders() if not o["clientOrderId"].startswith("cs-")]
        assert len(working) == open_orders, f"venue open orders: {sim.open_orders()}"
    if btc_at_least is not None:
        assert held(sim, "BTC") >= btc_at_least, f"the venue holds {held(sim, 'BTC')} BTC"
    if btc_flat:
        assert held(sim, "BTC") < BTC_DUST, f"the venue still holds {held(sim, 'BTC')} BTC"
    for command, actor in audit:
        rows = audited(data_dir, command, actor)
        assert rows and rows[-1]["ok"], f"no successful audit record of {command} by {actor}: {rows}"
    if kill_switch_by is not None:
        actors = {r["actor"] for r in store(data_dir).audit(limit=500) if r["kill_switch"]}
        assert actors <= ({kill_switch_by} if kill_switch_by else set()), f"kill-switch records by {actors}"


# ------------------------------------------------------------------ fault -> action, for the report

RESULTS: list[dict[str, Any]] = []


@dataclass
class Stopwatch:
    """Fault -> action times of one scenario: ``fault()`` when the fault goes in, ``mark()`` for each action."""

    scenario: str
    runbook: str
    threshold: str = ""
    started: datetime | None = None
    started_mono: float = 0.0
    marks: list[tuple[str, float]] = field(default_factory=list)

    def fault(self, what: str) -> None:
        self.what = what
        self.started, self.started_mono = datetime.now(UTC), time.monotonic()

    def mark(self, action: str, when: datetime | str | dict | None = None) -> float:
        """Record ``action`` at ``when`` (a stored record's time; default now); return seconds since the fault."""
        assert self.started is not None, "fault() first"
        if when is None:
            seconds = time.monotonic() - self.started_mono
        else:
            seconds = (when if isinstance(when, datetime) else at(when)).timestamp() - self.started.timestamp()
        self.marks.append((action, seconds))
        RESULTS.append(
            {
                "scenario": self.scenario,
                "runbook": self.runbook,
                "fault": self.what,
                "action": action,
                "seconds": round(seconds, 3),
                "threshold": self.threshold,
            }
        )
        return seconds


def write_results(results: list[dict[str, Any]]) -> Path | None:
    """``build/proof/scenarios.json`` and ``.md``: each scenario's fault -> action times."""
    if not results:
        return None
    PROOF_DIR.mkdir(parents=True, exist_ok=True)
    (PROOF_DIR / "scenarios.json").write_text(json.dumps(results, indent=1))
    lines = ["| scenario | runbook | fault | action | seconds | thresholds |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['scenario']} | {r['runbook']} | {r['fault']} | {r['action']} | {r['seconds']:.2f} | {r['threshold']} |"
        for r in results
    ]
    path = PROOF_DIR / "scenarios.md"
    path.write_text("\n".join(lines) + "\n")
    return path
