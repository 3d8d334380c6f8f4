"""Alerts reach people through apprise (a loopback receiver), a failing receiver is reported and nothing is lost;
/health answers 200 / 503 through a fault and /metrics parses with prometheus-client's own parser; an automatic
kill-switch trip opens an incident with a snapshot that holds no secret; acknowledgement from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import zipfile
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from eventually import eventually
from fastsim import FAST
from prometheus_client.parser import text_string_to_metric_families

from engine.kernel.commands import Halt, PlaceOrder, Resume
from engine.kernel.config import (
    AlertsConfig,
    EngineConfig,
    HealthConfig,
    MonitorsConfig,
    RiskConfig,
    Settings,
    StrategyConfig,
    VenueConfig,
)
from engine.kernel.events import Severity, TradingState
from engine.store.db import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook on loopback that records what it is sent; ``fail`` makes it answer 500."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.posts: list[dict] = []
        self.port = 0  # the port the system gives it at start (one picked before could be taken meanwhile)
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def hook(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.Response(status=500 if self.fail else 200)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receivers():
    good, bad = Receiver(), Receiver(fail=True)
    await good.start()
    await bad.start()
    yield good, bad
    for r in (good, bad):
        await r.runner.cleanup()


def settings(sim, tmp_path, *, notify=(), health_port=0, monitors=None) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **FAST,
        ),
        engine=EngineConfig(data_dir=tmp_path / "data"),
        risk=RiskConfig(max_position_pct=Decimal("20")),
        monitors=MonitorsConfig(**{"interval_s": 0.1, "ping_s": 0.2, "reconcile_s": 0.3, **(monitors or {})}),
        alerts=AlertsConfig(notify=tuple(notify), notify_retries=1),
        health=HealthConfig(port=health_port),
        strategy=StrategyConfig(enabled=False),
    )


async def test_alerts_reach_a_loopback_receiver_and_a_failing_one_is_reported(sim, tmp_path, run, receivers):
    good, bad = receivers
    engine = await run(
        settings(
            sim, tmp_path, notify=[{"url": good.url, "min_severity": "WARN"}, {"url": bad.url, "min_severity": "CRIT"}]
        )
    )
    await engine.execute(Halt(actor="operator:key", reason="drill"))  # a WARN: only the good receiver wants it
    await eventually(
        lambda: any("TRADING_HALTED" in p.get("title", "") for p in good.posts),
        timeout=10,
        message="delivered through apprise",
    )
    post = next(p for p in good.posts if "TRADING_HALTED" in p["title"])
    assert post["type"] == "warning" and "drill" in post["message"]
    engine.alert(Severity.CRIT, "STOP_LOSS_FAILED", "exit failed (test)")
    await eventually(
        lambda: any("NOTIFY_FAILED" == a.code for a in engine.alert_book.recent),
        timeout=15,
        message="a failed delivery is reported on screen",
    )
    assert len(bad.posts) == 2  # tried, then retried once
    store = Store.in_dir(tmp_path / "data")
    deliveries = store.notifications()
    assert any(d["ok"] and d["target"] == f"#1 json://127.0.0.1:{good.port}/…" for d in deliveries)
    assert not any("/hook" in d["target"] for d in deliveries)  # a URL's path can carry a token: never stored
    failed = [d for d in deliveries if not d["ok"]]
    assert failed and failed[0]["attempts"] == 2
    assert any(r["code"] == "STOP_LOSS_FAILED" for r in store.alerts())  # nothing lost: stored and on screen
    assert not any("NOTIFY_FAILED" in p.get("title", "") for p in good.posts + bad.posts)  # never sent on


async def test_health_answers_200_when_healthy_and_503_through_a_fault(sim, tmp_path, run):
    port = free_port()
    engine = await run(settings(sim, tmp_path, health_port=port))
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:

        async def health() -> tuple[int, dict]:
            async with http.get(f"{url}/health") as r:
                return r.status, await r.json()

        await eventually(lambda: engine.monitors.ticks >= 2)
        status, body = await health()
        assert status == 200 and body["status"] == "healthy", body
        assert body["mode"] == "paper" and body["trading_state"] == "ACTIVE" and body["venue"]["connected"]
        assert {"open_orders", "positions", "kill_switch", "monitors"} <= set(body)
        fault = sim.faults.inject("maintenance")
        await eventually(lambda: engine.trading_state == TradingState.HALTED, timeout=15)
        status, body = await health()
        assert status == 503 and body["status"] == "halted"
        assert body["state_changed"]["code"] == "maintenance"
        sim.faults.clear(fault)

        async with http.get(f"{url}/metrics") as r:
            assert r.status == 200
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {
        "cockpit_equity",
        "cockpit_drawdown_pct",
        "cockpit_day_pnl",
        "cockpit_open_orders",
        "cockpit_positions",
        "cockpit_rest_latency_seconds",
        "cockpit_stream_age_seconds",
        "cockpit_rest_errors_today",
        "cockpit_ws_reconnects_today",
        "cockpit_alerts",
        "cockpit_trading_state",
        "cockpit_kill_switch_trips",
    } <= set(families)
    state = {s.labels["state"]: s.value for s in families["cockpit_trading_state"].samples}
    assert state == {"ACTIVE": 0.0, "REDUCE_ONLY": 0.0, "HALTED": 1.0}
    trips = {
        s.labels.get("command"): s.value
        for s in families["cockpit_kill_switch_trips"].samples
        if s.name.endswith("_total")
    }
    assert trips.get("halt", 0) >= 1
    latency = [s for s in families["cockpit_rest_latency_seconds"].samples if s.name.endswith("_count")]
    assert latency and latency[0].value > 0


def cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return subprocess.run(
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


async def test_an_automatic_trip_opens_an_incident_with_a_snapshot_and_no_secret_anywhere(sim, tmp_path, run):
    engine = await run(
        settings(sim, tmp_path, monitors=dict(flash_crash_pct=Decimal("8"), flash_crash_window_s=5.0, flash_calm_s=1.0))
    )
    last = engine.portfolio.last["BTC/USDT"]
    bought = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.01"), stop_loss=last * Decimal("0.5")
        )
    )
    assert bought.ok
    sim.faults.inject("flash-crash", percent=15, seconds=0.5, recover=0)
    await eventually(
        lambda: engine.incidents.current is not None and engine.incidents.current.get("snapshot"),
        timeout=15,
        message="incident opened with its snapshot",
    )
    incident = dict(engine.incidents.current)
    assert incident["trigger"] == "flash_crash" and incident["actor"] == "monitor:flash_crash"
    snapshot = Path(incident["snapshot"])
    with zipfile.ZipFile(snapshot) as archive:
        names = set(archive.namelist())
        config = json.loads(archive.read("config.json"))
    assert config["venue"]["api_key"] == "**********" and config["venue"]["api_secret"] == "**********"
    assert {
        "state.json",
        "events.json",
        "alerts.json",
        "orders.json",
        "positions.json",
        "balances.json",
        "monitors.json",
        "config.json",
    } <= names
    await eventually(lambda: engine.monitors.rows["flash_crash"].status.value == "OK", timeout=30)
    assert (await engine.execute(Resume(actor="operator:key"))).ok
    await engine.execute(Halt(actor="operator:key", reason="second incident"))
    await asyncio.sleep(0)
    await engine.stop()

    secrets = [sim.api_key.encode(), sim.api_secret.encode()]
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert {"cockpit.db", "trading.log", "errors.log", "trades.log"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist())
        for secret in secrets:
            assert secret not in data, f"a secret is in {path}"

    listed = json.loads((await asyncio.to_thread(cli, tmp_path, "incidents", "--json")).stdout)
    first = next(i for i in listed if i["trigger"] == "flash_crash")
    assert first["detect_s"] is not None and first["act_s"] is not None and first["recover_s"] is not None
    assert first["detect_s"] >= 0 and first["recovered_at"]
    report = await asyncio.to_thread(cli, tmp_path, "incident", "report", str(first["id"]))
    assert report.returncode == 0, report.stderr
    text = await asyncio.to_thread(Path(report.stdout.strip()).read_text)
    assert "What triggered the incident?" in text and "flash_crash" in text and "## Timeline" in text
    assert "time to detect" in text


async def test_acknowledge_from_the_cli_and_a_snapshot_on_demand(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await engine.execute(Halt(actor="operator:key", reason="drill"))
    open_ids = [a.id for a in engine.alert_book.unacknowledged()]
    assert open_ids
    acked = await asyncio.to_thread(cli, tmp_path, "ack", "--all")
    assert acked.returncode == 0 and "acknowledged" in acked.stdout
    assert engine.alert_book.unacknowledged() == []
    row = next(r for r in Store.in_dir(tmp_path / "data").alerts() if r["id"] == open_ids[0])
    assert row["acked_by"].startswith("operator:cli ")
    snap = await asyncio.to_thread(cli, tmp_path, "snapshot")
    assert snap.returncode == 0 and await asyncio.to_thread(Path(snap.stdout.strip()).exists)
    none = await asyncio.to_thread(cli, tmp_path, "ack")
    assert none.returncode == 2 and "--all" in none.stderr


async def test_the_daily_summary_goes_to_every_sink_at_2359(sim, tmp_path, run, receivers):
    good, _ = receivers
    engine = await run(settings(sim, tmp_path, notify=[{"url": good.url, "min_severity": "CRIT"}]))
    from datetime import datetime

    engine._daily_summary(now=datetime(2026, 11, 30, 23, 59, 5, tzinfo=UTC))
    engine._daily_summary(now=datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC))  # once a day
    await eventually(lambda: any("DAILY_SUMMARY" in p.get("title", "") for p in good.posts), timeout=10)
    assert sum("DAILY_SUMMARY" in p.get("title", "") for p in good.posts) == 1
    summary = next(a for a in engine.alert_book.recent if a.code == "DAILY_SUMMARY")
    assert {"net_pnl", "trades_count", "fees", "rest_errors", "kill_switch_trips", "max_drawdown_pct"} <= set(
        summary.values
    )
