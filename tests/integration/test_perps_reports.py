"""Paper validation, the daily report and the incident report on perpetual futures (issue 24, runbook 002; runbook
003 "Running Validation"): a short opened by a sell, reduced by half and closed by buys through the real engine on
the stepped simulator's USDⓈ-M market, with a funding charged in between, is one round trip whose result counts
the commissions and the funding; the scorecard shows the funding and the PnL net of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from eventually import eventually
from perpvenue import PERP, perp_settings, usdm_fixture  # noqa: F401  (the usdm fixture)
from runbook import store

from cockpit.gate_commands import print_report
from engine.core.engine import Engine
from engine.core.validation import Plan, Validation
from engine.kernel.commands import Halt, PlaceOrder
from engine.kernel.config import (
    EngineConfig,
    LadderConfig,
    RiskConfig,
    Settings,
    StrategyConfig,
    ValidationConfig,
    VenueConfig,
)
from engine.ops import daily, incidents

# Shorts 0.05 BTC before the 08:00 UTC funding, buys half back at 08:05 (a partial reduction) and the rest at 08:10.
SHORTER = '''
from datetime import time
from decimal import Decimal

from engine.strategies.api import Intent, Params, Strategy


class Shorter(Strategy):
    """A short across a funding time, covered in two buys."""

    name = "shorter"
    symbols = ()
    timeframe = "1m"
    history = 1
    Params = Params

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step = 0

    def decide(self, view):
        out = []
        t = view.now.time()
        for symbol in self.symbols:
            if view.open_orders(symbol):
                continue
            if self.step == 0:
                self.step = 1
                out.append(Intent("sell", symbol, amount=Decimal("0.05"), reason="short"))
            elif self.step == 1 and t >= time(8, 5):
                self.step = 2
                out.append(Intent("buy", symbol, amount=Decimal("0.025"), reason="cover half"))
            elif self.step == 2 and t >= time(8, 10):
                self.step = 3
                out.append(Intent("buy", symbol, amount=Decimal("0.025"), reason="cover the rest"))
        return out
'''


def perp_validation_settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "shorter.py").write_text(SHORTER, encoding="utf-8")
    return Settings(
        engine=EngineConfig(data_dir=tmp_path / "data"),
        venue=VenueConfig(market="usdm", symbols=(PERP,)),
        risk=RiskConfig(max_position_pct=Decimal("50"), require_stop_loss=False, stops_at_venue=False),
        strategy=StrategyConfig(interval_s=60, ladder=LadderConfig(enabled=False), paths=(folder,), run=("shorter",)),
        # Ten minutes before Binance's 08:00 UTC funding time: the run crosses it.
        validation=ValidationConfig(start=datetime(2025, 1, 6, 7, 50, tzinfo=UTC)),
    )


async def test_validate_on_perps_counts_the_funding_of_a_short(tmp_path, capsys):
    settings = perp_validation_settings(tmp_path)
    run = Validation(settings, Plan(duration_s=1800, speed=1e9, tick_s=60, seed=5), Engine, tmp_path / "run")
    report = await run.run()
    assert report["run"]["error"] is None, report["run"]["error"]
    assert report["config"]["market"] == "usdm"
    assert report["fills"] == 3 and report["trades"] == 1  # one short, reduced by half, then closed
    funding = Decimal(report["funding"])
    assert funding > 0  # a short receives a positive rate
    # The round trip's result: the price PnL of the short, less the three commissions, plus the funding; with the
    # position flat at the end, it is the change in the margin balance.
    pnl = report["pnl"]
    assert Decimal(pnl["realized"]) == Decimal(pnl["net"]), report["pnl"]
    assert Decimal(report["days"][0]["net_pnl"]) == Decimal(pnl["realized"])
    print_report(report, tmp_path / "report.json")
    shown = " ".join(capsys.readouterr().out.split())
    assert f"funding received {funding}" in shown and "NO-GO" in shown


async def test_the_daily_and_incident_reports_show_a_perps_short_and_its_funding(usdm, tmp_path, run):
    """Runbook 004 "Daily Summary" and runbook 001 "Post-Incident Review" on perps (runbook 002 "Key Metrics to
    Monitor"): a 3x short through the engine receives a funding; the day's summary and the post-incident report of a
    halt name the position with its side, leverage, liquidation price and distance, and the funding."""
    engine = await run(perp_settings(usdm, tmp_path))
    sold = await engine.execute(PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.02")))
    assert sold.ok, sold.message
    await eventually(lambda: engine.portfolio.positions(), message="the short is known")
    usdm.schedule_funding(0.2)  # market time: charged by the tick after it
    await eventually(lambda: engine.portfolio.funding.get(PERP), message="the funding read from the venue")
    funding = engine.portfolio.funding[PERP]
    assert funding > 0 and engine.stats.current().funding == funding  # a short receives a positive rate

    engine._daily_summary(now=datetime.now(UTC).replace(hour=23, minute=59))
    sent = next(a for a in engine.alert_book.recent if a.code == "DAILY_SUMMARY")
    assert f"funding {daily.money(funding)}; positions: {PERP} short 0.02 3x, liquidation " in sent.message
    assert f"% away), funding {daily.money(funding)}" in sent.message
    # `cockpit report daily` reads the same from the store: the positions as last read from the venue.
    await eventually(lambda: store(tmp_path).load_day(datetime.now(UTC).date().isoformat()), message="day stored")
    found = daily.from_store(store(tmp_path), datetime.now(UTC).date().isoformat())
    assert found is not None
    [shown] = found[1]["positions"]
    assert shown["side"] == "short" and Decimal(shown["leverage"]) == 3 and shown["liquidation_distance_pct"]

    assert (await engine.execute(Halt(actor="operator:key", reason="look at the short"))).ok
    await eventually(
        lambda: (store(tmp_path).incidents(limit=1) or [{}])[0].get("snapshot"), message="the snapshot written"
    )
    [incident] = store(tmp_path).incidents(limit=1)
    text = incidents.report_text(store(tmp_path), incident["id"])
    section = text.split("## Positions at the trip (perps, from the snapshot)")[1].split("##")[0]
    assert f"- {PERP} short 0.02 3x, liquidation " in section and "% away), funding " in section, section
