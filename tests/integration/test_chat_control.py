"""The kill switch and status from Telegram and Slack (issue 21), through the real python-telegram-bot and slack_sdk
against small fakes of the services on loopback (tests/chatfakes.py), an engine on the simulator through the real
ccxt client: /stop halts and cancels at the venue, /closeall acts only on its Confirm, a stranger changes nothing
and raises CHAT_UNAUTHORIZED, and the service failing (502, 429 with retry_after, a dropped connection) is one
alert with no effect on trading."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from chatfakes import FakeSlack, FakeTelegram
from eventually import eventually
from fastsim import FAST
from pydantic import SecretStr

from cockpit.status import print_status
from engine.chat import link as links
from engine.chat.telegram import TelegramBot
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.config import (
    ChatConfig,
    EngineConfig,
    RiskConfig,
    Settings,
    SlackChatConfig,
    StrategyConfig,
    TelegramChatConfig,
    VenueConfig,
)
from engine.kernel.events import Severity, TradingState
from engine.store.db import Store

TG_TOKEN = "123456789:AAE-secret-telegram-token-abcdefghijk"
SLACK_BOT = "xoxb-1111-2222-secretbottoken"
SLACK_APP = "xapp-1-A111-3333-secretapptoken"
ALICE, BOB, MALLORY = 111, 222, 666


def chat_settings(sim, tmp_path, telegram: FakeTelegram | None = None, slack: FakeSlack | None = None) -> Settings:
    chat = ChatConfig(
        telegram=TelegramChatConfig(
            enabled=True,
            token=SecretStr(TG_TOKEN),
            api_url=telegram.api_url,
            chat_ids=(ALICE, BOB),
            user_ids=(ALICE, BOB),
            poll_timeout_s=1,
        )
        if telegram
        else TelegramChatConfig(),
        slack=SlackChatConfig(
            enabled=True,
            bot_token=SecretStr(SLACK_BOT),
            app_token=SecretStr(SLACK_APP),
            api_url=slack.api_url,
            channel_ids=("COPS",),
            user_ids=("U1", "U2"),
        )
        if slack
        else SlackChatConfig(),
    )
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            timeout_ms=2000,
            **FAST,
        ),
        engine=EngineConfig(data_dir=tmp_path),
        risk=RiskConfig(max_position_pct=Decimal("20")),
        strategy=StrategyConfig(enabled=False),
        chat=chat,
    )


@pytest.fixture
async def telegram():
    fake = FakeTelegram(TG_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def slack():
    fake = FakeSlack(SLACK_BOT, SLACK_APP)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(links, "BACKOFF_S", (0.05, 0.1, 0.2))
    monkeypatch.setattr(links, "GRACE_S", 0.5)


async def hold_a_position_and_an_order(engine: Engine, sim) -> None:
    last = engine.portfolio.last["BTC/USDT"]
    for kind, price in (("market", None), ("limit", last * Decimal("0.8"))):
        result = await engine.execute(
            PlaceOrder(
                symbol="BTC/USDT", side="buy", type=kind, amount=Decimal("0.01"), price=price, stop_loss=last / 2
            )
        )
        assert result.ok, result.message
    await eventually(lambda: engine.portfolio.positions() and engine.tracker.open_orders(), message="position+order")
    # The position's protective stop rests at the venue beside the limit buy (issue 22).
    await eventually(lambda: len(sim.open_orders()) == 2, message="the buy and the protective stop at the venue")


def only_the_stop(sim) -> bool:
    """What tier 2 leaves at the venue: the held position's protective stop, nothing else."""
    return [o["type"] for o in sim.open_orders()] == ["STOP_LOSS_LIMIT"]


def flat(sim) -> bool:
    return sim.open_orders() == [] and sum(sim.balance("BTC")) < Decimal("0.00001")


def alerts(engine: Engine, code: str) -> list:
    return [a for a in engine.alert_book.recent if a.code == code]


async def test_telegram_stop_and_closeall_from_an_allowed_chat_and_nothing_from_a_stranger(
    telegram, run, sim, tmp_path, capsys
):
    engine = await run(chat_settings(sim, tmp_path, telegram=telegram))
    await hold_a_position_and_an_order(engine, sim)

    asked = telegram.say(ALICE, ALICE, "/status")
    (status,) = await eventually(lambda: telegram.replies_to(asked), message="status reply")
    assert status["text"].startswith("PAPER · ACTIVE") and "BTC/USDT 0.00999" in status["text"]
    assert "open orders: 2" in status["text"] and status["parse_mode"] is None  # plain text, never markup

    # A stranger's /stop and /closeall change nothing, get no reply, and are one WARN with the ids.
    telegram.say(MALLORY, MALLORY, "/stop", username="mallory")
    telegram.press(MALLORY, MALLORY, "closeall:0000", message_id=1, username="mallory")
    await eventually(lambda: alerts(engine, "CHAT_UNAUTHORIZED"), message="CHAT_UNAUTHORIZED")
    (refused,) = alerts(engine, "CHAT_UNAUTHORIZED")
    assert refused.values["user_id"] == MALLORY and "/stop" not in refused.message
    assert not [s for s in telegram.sent if s["chat_id"] == MALLORY]
    assert engine.trading_state == TradingState.ACTIVE and len(sim.open_orders()) == 2

    # /closeall without its Confirm does nothing but say what it would sell.
    asked = telegram.say(ALICE, ALICE, "/closeall")
    (offer,) = await eventually(lambda: telegram.replies_to(asked), message="close-all offer")
    assert "BTC/USDT 0.00999" in offer["text"] and "Nothing happens unless you press Confirm" in offer["text"]
    (button,) = offer["reply_markup"]["inline_keyboard"][0]
    assert button["text"] == "Confirm close all" and button["callback_data"].startswith("closeall:")
    assert engine.trading_state == TradingState.ACTIVE and engine.portfolio.positions()

    # /stop: halted, cancelled at the venue, answered in the thread, audited as the Telegram user.
    asked = telegram.say(ALICE, ALICE, "/stop")
    (stopped,) = await eventually(lambda: telegram.replies_to(asked), timeout=15, message="stop reply")
    assert stopped["text"].startswith("stop (halt + cancel all) done: HALTED"), stopped["text"]
    assert "kept 1 protective stop(s)" in stopped["text"]
    assert engine.trading_state == TradingState.HALTED and only_the_stop(sim)
    assert engine.portfolio.positions()  # tier 2 sells nothing
    # A person on the allow-lists is an operator: their halt is a WARN like a key's, not an automatic trip's CRIT.
    assert [a.severity.value for a in alerts(engine, "TRADING_HALTED")] == ["WARN"]

    # Another allowed user cannot confirm Alice's close-all; Alice's Confirm flattens.
    bob = telegram.press(BOB, BOB, button["callback_data"], message_id=offer["message_id"], username="bob")
    await eventually(lambda: bob in telegram.answered, message="bob's press answered")
    to_bob = lambda: [s for s in telegram.replies_to(offer["message_id"]) if s["chat_id"] == BOB]
    (told,) = await eventually(to_bob, message="bob told")
    assert "no close-all of yours" in told["text"]
    assert engine.portfolio.positions()
    telegram.press(ALICE, ALICE, button["callback_data"], message_id=offer["message_id"])
    to_alice = lambda: [s for s in telegram.replies_to(offer["message_id"]) if s["chat_id"] == ALICE]
    (closed,) = await eventually(to_alice, timeout=15, message="closed")
    assert closed["text"].startswith("close all done: HALTED"), closed["text"]
    assert flat(sim)

    audit = Store.in_dir(tmp_path).audit(limit=10)
    by_command = {row["command"]: row["actor"] for row in audit}
    assert by_command["cancel-all"] == "telegram:111 alice" and by_command["close-all"] == "telegram:111 alice"
    assert engine.chat.states() == [
        {
            "name": "telegram",
            "state": "connected",
            "last_command_at": engine.chat.states()[0]["last_command_at"],
            "detail": "",
        }
    ]
    status = await engine.service.query("status")
    assert status["chat"][0]["name"] == "telegram" and status["chat"][0]["last_command_at"]
    assert (await engine.service.query("config"))["chat"]["telegram"]["token"] == "(set)"
    # The health line's bots, and `cockpit status --json` from another shell (the engine's beacon).
    assert engine.read.health_event().chat == ("telegram connected",)
    assert print_status(engine.settings, as_json=True) == 0
    (bot,) = json.loads(capsys.readouterr().out)["chat"]
    assert bot["name"] == "telegram" and bot["state"] == "connected" and bot["last_command_at"]

    # A CRIT lands where the person can act: in every allowed chat, with the buttons that fit it.
    engine.alert(Severity.CRIT, "WS_STALE", "market data 61 s old <b>x</b>")
    posted = lambda: [s for s in telegram.sent if s["text"].startswith("CRIT WS_STALE")]
    await eventually(lambda: len(posted()) == 2, message="the CRIT in both chats")
    labels = [b["text"] for b in posted()[0]["reply_markup"]["inline_keyboard"][0]]
    assert labels == ["Halt", "Cancel all", "Close all", "Ack"] and "<b>x</b>" in posted()[0]["text"]

    # A flood is rate limited: a burst of 5 (Bob's press was one), one notice, then silence; /halt is never limited.
    asked = [telegram.say(BOB, BOB, "/help", username="bob") for _ in range(8)]
    replies = lambda: [s["text"] for m in asked for s in telegram.replies_to(m)]
    await eventually(lambda: len(replies()) == 5, message="4 answers and a notice")
    halt = telegram.say(BOB, BOB, "/halt", username="bob")
    await eventually(lambda: telegram.replies_to(halt), message="halt answered despite the limit")
    assert len(replies()) == 5 and sum("too many commands" in text for text in replies()) == 1


async def test_slack_stop_and_closeall_from_an_allowed_channel_and_nothing_from_a_stranger(slack, run, sim, tmp_path):
    engine = await run(chat_settings(sim, tmp_path, slack=slack))
    await hold_a_position_and_an_order(engine, sim)
    await eventually(lambda: engine.chat.states()[0]["state"] == "connected", message="socket mode up")

    # A stranger, and an allowed user in a foreign channel: nothing done, nothing said, one WARN.
    await slack.slash("COPS", "U9", "/stop")
    await slack.slash("CRANDOM", "U1", "/closeall")
    await eventually(lambda: len(slack.acks) == 2, message="acknowledged")
    await eventually(lambda: alerts(engine, "CHAT_UNAUTHORIZED"), message="CHAT_UNAUTHORIZED")
    assert slack.posted == [] and engine.trading_state == TradingState.ACTIVE and len(sim.open_orders()) == 2

    # /cockpit closeall: the offer only; !stop as a message: halted and cancelled, answered in its thread.
    await slack.slash("COPS", "U1", "/cockpit", "closeall")
    (offer,) = await eventually(lambda: slack.posted_to("COPS"), message="close-all offer")
    assert engine.portfolio.positions() and engine.trading_state == TradingState.ACTIVE
    blocks = offer["blocks"] if isinstance(offer["blocks"], list) else json.loads(offer["blocks"])
    assert blocks[0]["text"]["type"] == "plain_text"  # never read as markup
    (confirm,) = blocks[1]["elements"]
    _, ts = await slack.message("COPS", "U1", "!stop")
    stopped = await eventually(lambda: [p for p in slack.posted if p.get("thread_ts") == ts], timeout=15)
    assert stopped[0]["text"].startswith("stop (halt + cancel all) done: HALTED"), stopped[0]["text"]
    assert engine.trading_state == TradingState.HALTED and only_the_stop(sim)

    await slack.click("COPS", "U1", confirm["value"], message_ts="42.0")
    closed = await eventually(lambda: [p for p in slack.posted if p.get("thread_ts") == "42.0"], timeout=15)
    assert closed[0]["text"].startswith("close all done: HALTED"), closed[0]["text"]
    assert flat(sim)
    audit = {row["command"]: row["actor"] for row in Store.in_dir(tmp_path).audit(limit=10)}
    assert audit["cancel-all"] == "slack:U1 alice" and audit["close-all"] == "slack:U1 alice"

    # A dropped Socket Mode connection: the SDK reconnects (a new apps.connections.open) and commands work again.
    opens = slack.opens
    await slack.drop()
    await eventually(lambda: slack.opens > opens and slack.sockets, timeout=15, message="reconnected")
    await slack.slash("COPS", "U2", "/status")
    status = lambda: [p for p in slack.posted_to("COPS") if p["text"].startswith("PAPER · HALTED")]
    (answer,) = await eventually(status, timeout=10, message="status after the drop")
    assert "HALTED by slack:U1 alice" in answer["text"]


async def test_the_services_failing_is_one_alert_and_trading_goes_on(telegram, slack, run, sim, tmp_path):
    slack.open_faults = [502, 502]  # Slack's first connects fail
    telegram.fail_next(2, 502)
    telegram.fail_next(1, 429, retry_after=0.2)
    telegram.drop_next(1)
    engine = await run(chat_settings(sim, tmp_path, telegram=telegram, slack=slack))
    await eventually(
        lambda: [s["state"] for s in engine.chat.states()] == ["connected", "connected"],
        timeout=15,
        message="both bots through their faults",
    )
    assert not telegram.faults and not slack.open_faults
    # Both bots' outages are one alert (the same code within dedupe_s is counted on the first).
    assert len(alerts(engine, "CHAT_UNAVAILABLE")) == 1
    (outage,) = alerts(engine, "CHAT_UNAVAILABLE")
    assert outage.count >= 2 and outage.values["bot"] in ("telegram", "slack")
    assert alerts(engine, "CHAT_RESTORED")  # and word that they are back
    # No token in any of it, and the engine never noticed: connected, ACTIVE, no task crashed.
    for alert in engine.alert_book.recent:
        for token in (TG_TOKEN, SLACK_BOT, SLACK_APP):
            assert token not in alert.message
    assert engine.connected and engine.trading_state == TradingState.ACTIVE
    assert not alerts(engine, "TASK_CRASHED")
    # And the bots answer afterwards.
    # A display name is outside text: the actor the audit keeps and the screen shows carries it inert.
    asked = telegram.say(ALICE, ALICE, "/halt", username="ev\x1b[2Jil \u202eeman")
    await eventually(lambda: telegram.replies_to(asked), message="halt after the faults")
    assert engine.trading_state == TradingState.HALTED
    assert engine.state_info["actor"] == "telegram:111 ev\\x1b[2Jil_\\u202eeman"
    asked = telegram.say(ALICE, ALICE, "/resume")
    (resumed,) = await eventually(lambda: telegram.replies_to(asked), message="resume answered")
    assert resumed["text"].startswith("resume done") and engine.trading_state == TradingState.ACTIVE

    async def ask(text: str) -> str:
        asked = telegram.say(ALICE, ALICE, text)
        (reply,) = await eventually(lambda: telegram.replies_to(asked), message=f"{text} answered")
        return reply["text"]

    # Runbook 004's /snapshot now, the alerts and their acknowledgement, and /mode, from the same chat.
    snapshot = await ask("/snapshot now")
    archive = snapshot.split("\n")[0].removeprefix("snapshot written: ")
    assert snapshot.startswith("snapshot written: ") and archive in {str(p) for p in (tmp_path / "snapshots").iterdir()}
    assert "CHAT_UNAVAILABLE" in await ask("/alerts")
    assert (await ask("/ack all")).startswith("ack done: acknowledged")
    assert not engine.alert_book.unacknowledged()
    assert {a.acked_by for a in alerts(engine, "CHAT_UNAVAILABLE")} == {"telegram:111 alice"}
    assert (await ask("/mode dry-run")).startswith("mode done") and engine.mode == "dry-run"


class Recorded:
    """The bot's side of the engine's API that a refused token reaches: its alerts."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, str]] = []

    def alert(self, severity, code, message, values=None) -> None:
        self.alerts.append((severity.value, code, message))


async def test_a_refused_token_is_one_alert_however_often_it_is_retried(telegram):
    backend = Recorded()
    wrong = "123456789:AAE-wrong-token-that-the-service-refuses"
    cfg = TelegramChatConfig(
        enabled=True, token=SecretStr(wrong), api_url=telegram.api_url, chat_ids=(ALICE,), user_ids=(ALICE,)
    )
    tasks: list[asyncio.Task] = []
    bot = TelegramBot(cfg, backend, lambda name, coro: tasks.append(asyncio.create_task(coro)))
    tasks.append(asyncio.create_task(bot.run()))
    try:
        await eventually(lambda: telegram.calls.count("getme") >= 3, message="retried with backoff")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bot.close()
    assert [(sev, code) for sev, code, _ in backend.alerts] == [("WARN", "CHAT_UNAVAILABLE")]
    assert "token was refused" in backend.alerts[0][2] and wrong not in backend.alerts[0][2]
    assert bot.link.state == "off" and "COCKPIT_CHAT__TELEGRAM__TOKEN" in bot.link.detail


def test_an_engine_beside_the_operators_does_not_poll_their_bot(tmp_path):
    """`cockpit preflight` with no engine running starts one for a moment: it must not take the bot's commands."""
    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path),
        chat=ChatConfig(
            telegram=TelegramChatConfig(enabled=True, token=SecretStr(TG_TOKEN), chat_ids=(ALICE,), user_ids=(ALICE,))
        ),
    )
    assert [bot.name for bot in Engine(settings).chat.bots] == ["telegram"]
    assert Engine(settings, serve_chat=False).chat.bots == []
