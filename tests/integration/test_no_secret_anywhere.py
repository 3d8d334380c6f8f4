"""A run that used API keys, a notification URL with a token and chat bots' tokens (Telegram, Slack, against their
loopback fakes: a failure of the service, a command answered) leaves no secret anywhere an operator's data goes:
the log files (the headless engine's stderr carries the same JSON lines), the database (and its WAL), snapshot
archives, incident reports, what the CLI prints, and what the screen showed (Textual screenshots from a Pilot run of
the real app, and the text of a tmux pane running the real program, where tmux is installed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import needs
import pytest
from chatfakes import FakeSlack, FakeTelegram
from eventually import eventually
from fastsim import FAST
from pydantic import SecretStr

from cockpit.app import CockpitApp
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.config import (
    AlertsConfig,
    ChatConfig,
    EngineConfig,
    MonitorsConfig,
    RiskConfig,
    Settings,
    SlackChatConfig,
    StrategyConfig,
    TelegramChatConfig,
    VenueConfig,
)

TOKEN = "tok3nS3cr3tV4lue9f8e7d6c5b4a"
TELEGRAM_TOKEN = "987654321:AAHs3cr3tT3l3gr4mT0k3nV4lu3xyz"
SLACK_BOT_TOKEN = "xoxb-s3cr3t-sl4ck-b0t-t0k3n"
SLACK_APP_TOKEN = "xapp-1-A111-s3cr3t-4pp-t0k3n"


def secrets_of(sim) -> list[str]:
    return [sim.api_key, sim.api_secret, TOKEN, TELEGRAM_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN]


def notify_url() -> str:
    # A webhook with a token in its path and a password: nothing listens, so the delivery fails and is reported.
    return f"json://user:{TOKEN}@127.0.0.1:9/hooks/{TOKEN}"


def write_config(sim, folder: Path) -> dict[str, str]:
    """config.toml for the real program (no secret in it: they come from the environment) and its environment."""
    (folder / "config.toml").write_text(
        f'[venue]\nexchange = "binance"\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n'
        '[risk]\nmax_position_pct = "20"\n[strategy]\nenabled = false\n[engine]\ndata_dir = "data"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(
        COCKPIT_VENUE__API_KEY=sim.api_key,
        COCKPIT_VENUE__API_SECRET=sim.api_secret,
        COCKPIT_ALERTS__NOTIFY=f'[{{"url": "{notify_url()}", "min_severity": "WARN"}}]',
        COCKPIT_ALERTS__NOTIFY_RETRIES="0",
        TERM="xterm-256color",
    )
    return env


def everything_written(data_dir: Path) -> dict[str, bytes]:
    """Every file under the data directory, zip archives opened."""
    out: dict[str, bytes] = {}
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist())
        out[str(path)] = data
    return out


async def test_no_secret_in_logs_database_snapshots_cli_output_or_screens(sim, tmp_path):
    data = tmp_path / "data"
    telegram, slack = FakeTelegram(TELEGRAM_TOKEN), FakeSlack(SLACK_BOT_TOKEN, SLACK_APP_TOKEN)
    await telegram.start()
    await slack.start()
    telegram.fail_next(1, 502)  # an outage: its alert names the error, never the token in the URL
    chat = ChatConfig(
        telegram=TelegramChatConfig(
            enabled=True,
            token=SecretStr(TELEGRAM_TOKEN),
            api_url=telegram.api_url,
            chat_ids=(1,),
            user_ids=(1,),
            poll_timeout_s=1,
        ),
        slack=SlackChatConfig(
            enabled=True,
            bot_token=SecretStr(SLACK_BOT_TOKEN),
            app_token=SecretStr(SLACK_APP_TOKEN),
            api_url=slack.api_url,
            channel_ids=("C1",),
            user_ids=("U1",),
        ),
    )
    settings = Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **FAST,
        ),
        engine=EngineConfig(data_dir=data),
        risk=RiskConfig(max_position_pct=Decimal("20")),
        monitors=MonitorsConfig(interval_s=0.1, flash_crash_pct=Decimal("8"), flash_crash_window_s=5.0),
        alerts=AlertsConfig(notify=({"url": notify_url(), "min_severity": "WARN"},), notify_retries=0),
        strategy=StrategyConfig(enabled=False),
        chat=chat,
    )
    screens: dict[str, str] = {}
    app = CockpitApp(Engine(settings))
    async with app.run_test(size=(120, 40)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        last = engine.portfolio.last["BTC/USDT"]
        assert (
            await engine.execute(
                PlaceOrder(
                    symbol="BTC/USDT",
                    side="buy",
                    type="market",
                    amount=Decimal("0.01"),
                    stop_loss=last * Decimal("0.5"),
                )
            )
        ).ok
        asked = telegram.say(1, 1, "/status")
        await eventually(lambda: telegram.replies_to(asked), message="a chat command answered")
        await slack.slash("C1", "U1", "/status")
        await eventually(lambda: slack.posted, message="a Slack command answered")
        assert any(a.code == "CHAT_UNAVAILABLE" for a in engine.alert_book.recent)
        screens["main"] = app.export_screenshot()
        sim.faults.inject("flash-crash", percent=15, seconds=0.5, recover=0)  # an incident, its snapshot
        await eventually(lambda: engine.incidents.current and engine.incidents.current.get("snapshot"), timeout=15)
        await eventually(
            lambda: any(a.code == "NOTIFY_FAILED" for a in engine.alert_book.recent),
            timeout=15,
            message="the webhook's failure is reported (its URL masked)",
        )
        await pilot.press("s")  # a snapshot on demand
        await pilot.pause()
        screens["halted"] = app.export_screenshot()
        await pilot.press("ctrl+p")  # the command palette lists every command
        await pilot.pause()
        screens["palette"] = app.export_screenshot()
        app.save_screenshot(path=str(tmp_path), filename="screen.svg")
        await pilot.press("escape")
    await telegram.stop()
    await slack.stop()

    env = write_config(sim, tmp_path)

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=90,
        )
        return out.stdout + out.stderr

    printed = {"snapshot": await asyncio.to_thread(cli, "snapshot")}  # before the pane counts its own snapshot
    commands = (("status", "--json"), ("audit", "--json", "--limit", "200"), ("incident", "report", "1"))
    # Beside them, the real program in tmux, the way an operator runs it over SSH: the pane's text (tmux is
    # required, not skipped). The commands only read the store, so they run at the same time.
    needs.tmux()
    *outputs, screens["tmux"] = await asyncio.gather(
        *(asyncio.to_thread(cli, *args) for args in commands), tmux_pane(tmp_path, data, env)
    )
    printed |= {" ".join(args): out for args, out in zip(commands, outputs)}
    assert (
        '"trading_state": "HALTED"' in printed["status --json"]
        and "monitor:flash_crash" in printed["audit --json --limit 200"]
    )

    written = everything_written(data) | {str(tmp_path / "screen.svg"): (tmp_path / "screen.svg").read_bytes()}
    assert any(name.endswith("cockpit.db") for name in written) and any(name.endswith(".zip") for name in written)
    assert any("incident_1.md" in name for name in written) and any(name.endswith("trading.log") for name in written)
    for secret in secrets_of(sim):
        for name, data_bytes in written.items():
            assert secret.encode() not in data_bytes, f"a secret is in {name}"
        for name, text in {**printed, **screens}.items():
            assert secret not in text, f"a secret is in what {name} showed"


async def tmux_pane(tmp_path: Path, data: Path, env: dict[str, str]) -> str:
    """Start the cockpit in a detached tmux session, wait for its screen, halt it with h, return the pane."""
    session = f"cockpit-secret-{os.getpid()}"
    server = ["tmux", "-L", session]  # a server of its own: nothing of the operator's tmux is touched
    # On hang-up just halt: the default (cancel all) would keep retrying for minutes once the test's simulator
    # is gone, a cockpit left running after the test.
    command = f"env COCKPIT_TUI__ON_HANGUP=halt {sys.executable} -m cockpit.cli --data-dir {data}"
    await asyncio.to_thread(
        subprocess.run,
        [*server, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        cwd=tmp_path,
        env=env,
        check=True,
    )

    def pane() -> str:
        return subprocess.run([*server, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    try:
        # Up and connected (a key pressed while the engine is still starting is answered "the engine is starting").
        await eventually(
            lambda: "HALTED" in pane() and "Halt" in pane() and "● connected" in pane(),
            timeout=40,
            message="the cockpit on screen, connected",
        )
        text = pane()
        before = len(list((data / "snapshots").glob("*"))) if (data / "snapshots").exists() else 0
        await asyncio.to_thread(subprocess.run, [*server, "send-keys", "-t", session, "s"], check=True)
        # The archive itself, not the line that says so (it stays a few seconds only): a loaded machine may miss that.
        await eventually(
            lambda: len(list((data / "snapshots").glob("*"))) > before,
            timeout=30,
            message="a snapshot taken from the screen",
        )
        return text + pane()
    except AssertionError:
        pytest.fail(f"the cockpit did not come up in tmux:\n{pane()}")
    finally:
        await asyncio.to_thread(subprocess.run, [*server, "kill-server"], capture_output=True)
