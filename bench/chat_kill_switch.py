"""The kill switch from Telegram against the same from the command line, in the same run (issue 21): an engine on the
built-in simulator with its Telegram bot on a loopback fake of the Bot API (tests/chatfakes.py; the real
python-telegram-bot long-polls it), one resting order before each command.

- ``/halt``: from the message being at the service (the fake holds it for the bot's pending getUpdates) to HALTED in
  the engine (``to_done``), and to the bot's reply reaching the service (``to_reply``);
- ``/stop`` (halt + cancel all): to the simulator holding no open order and the command answered, and to the reply;
- ``/status``: to the reply (a read: the bot's own cost);
- ``cockpit halt`` / ``cockpit cancel-all`` from a shell (the engine's socket): from the process's start to the same
  end state (``to_done``) and to its exit with the answer (``to_exit``): the desk's path, alternating with the chat.

Run: .venv/bin/python bench/chat_kill_switch.py [--runs N]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import ratio, sim_settings, started, summary, until
from pydantic import SecretStr

from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.config import ChatConfig, TelegramChatConfig
from engine.kernel.events import TradingState
from engine.sim import Simulator


def _fakes() -> Any:
    """tests/chatfakes.py, the fake of the Bot API the tests use, loaded by its path (putting tests/ on sys.path
    would shadow this folder's modules with the tests' own: tests/soak.py and bench/soak.py)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "chatfakes.py"
    spec = importlib.util.spec_from_file_location("chatfakes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FakeTelegram = _fakes().FakeTelegram
PARAMS = {"runs": 30}
QUICK = {"runs": 1}
TOKEN = "123456789:AAE-bench-telegram-token-abcdefghijkl"
ALICE = 111


def cockpit_argv() -> list[str]:
    script = Path(sys.executable).with_name("cockpit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cockpit.cli"]


async def rest_one(engine: Engine, sim: Simulator) -> None:
    last = engine.portfolio.last["BTC/USDT"]
    price = last * Decimal("0.8")
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.0002"), price=price, stop_loss=price / 2
        )
    )
    assert result.ok, result.message
    await until(lambda: len(sim.open_orders()) == 1)


async def chat(fake: FakeTelegram, engine: Engine, text: str, done: Any) -> tuple[float, float]:
    """(ms to ``done()``, ms to the reply) for one message from Alice."""
    start = time.perf_counter()
    asked = fake.say(ALICE, ALICE, text)
    await until(done, timeout=20)
    done_ms = (time.perf_counter() - start) * 1000
    await until(lambda: fake.replies_to(asked), timeout=20)
    return done_ms, (fake.replies_to(asked)[0]["at"] - start) * 1000


async def shell(argv: list[str], cwd: str, done: Any) -> tuple[float, float, int]:
    """(ms to ``done()``, ms to the process's exit, exit code) for one command from a shell."""
    start = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await until(done, timeout=20)
    done_ms = (time.perf_counter() - start) * 1000
    code = await child.wait()
    return done_ms, (time.perf_counter() - start) * 1000, code


async def measure(runs: int) -> dict[str, Any]:
    cwd = tempfile.mkdtemp(prefix="cockpit-bench-")
    data = Path(cwd) / "data"
    sim = Simulator(seed=3, tick_interval=0.2)
    await sim.start()
    fake = FakeTelegram(TOKEN)
    await fake.start()
    base = sim_settings(sim, data)
    chat_cfg = TelegramChatConfig(
        enabled=True,
        token=SecretStr(TOKEN),
        api_url=fake.api_url,
        chat_ids=(ALICE,),
        user_ids=(ALICE,),
        poll_timeout_s=10,
        rate_per_min=600,
        alerts="off",
    )
    engine = await started(Engine(base.model_copy(update={"chat": ChatConfig(telegram=chat_cfg)})))
    figures: dict[str, list[float]] = {
        k: []
        for k in (
            "chat_halt_to_done",
            "chat_halt_to_reply",
            "chat_stop_to_done",
            "chat_stop_to_reply",
            "chat_status_to_reply",
            "cli_halt_to_done",
            "cli_halt_to_exit",
            "cli_cancel_all_to_done",
            "cli_cancel_all_to_exit",
        )
    }
    codes: set[int] = set()
    halted = lambda: engine.trading_state == TradingState.HALTED
    cleared = lambda: halted() and sim.open_orders() == [] and engine.running_commands == 0
    cli = [*cockpit_argv()]

    async def resume() -> None:
        result = await engine.execute(Resume(actor="operator:bench", reason="next run"))
        assert result.ok, result.message

    try:
        await until(lambda: engine.chat.states()[0]["state"] == "connected", timeout=20)
        for _ in range(runs):
            done, reply = await chat(fake, engine, "/halt", halted)
            figures["chat_halt_to_done"].append(done)
            figures["chat_halt_to_reply"].append(reply)
            await resume()
            done, exited, code = await shell([*cli, "halt", "--data-dir", str(data), "--reason", "bench"], cwd, halted)
            figures["cli_halt_to_done"].append(done)
            figures["cli_halt_to_exit"].append(exited)
            codes.add(code)
            await resume()
            await rest_one(engine, sim)
            done, reply = await chat(fake, engine, "/stop", cleared)
            figures["chat_stop_to_done"].append(done)
            figures["chat_stop_to_reply"].append(reply)
            await resume()
            await rest_one(engine, sim)
            argv = [*cli, "cancel-all", "--data-dir", str(data), "--reason", "bench"]
            done, exited, code = await shell(argv, cwd, cleared)
            figures["cli_cancel_all_to_done"].append(done)
            figures["cli_cancel_all_to_exit"].append(exited)
            codes.add(code)
            await resume()
            _, reply = await chat(fake, engine, "/status", lambda: True)
            figures["chat_status_to_reply"].append(reply)
    finally:
        await engine.stop()
        await fake.stop()
        await sim.stop()
    out: dict[str, Any] = {k: summary(v) for k, v in figures.items()}
    return {
        "benchmark": "chat_kill_switch",
        "runs": runs,
        "unit": "ms",
        **out,
        "ratio_chat_halt_to_cli_halt": ratio(out["chat_halt_to_done"], out["cli_halt_to_done"]),
        "ratio_chat_stop_to_cli_cancel_all": ratio(out["chat_stop_to_done"], out["cli_cancel_all_to_done"]),
        "cli_exit_codes": sorted(codes),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
