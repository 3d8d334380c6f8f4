"""Issue 25 §1: text from outside the program never reaches a terminal or a report raw.

A sweep of hostile texts (terminal escapes that wipe the screen and retitle the window, C1 controls, Rich markup,
Markdown, right-to-left overrides, newlines that would forge a line, 10 000 characters) through every field the
real CLI shows: a reason (halt, resume), an actor (the operator's user name), a symbol and a strategy's name, the
engine's answers and alerts that quote them, in `status`, `audit`, `incidents`, the incident report
`incident_N.md` and `report daily`, with no engine running and with one on the simulator. Nothing that acts on a
terminal comes out; `--json` still gives back the exact text that went in."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState, utcnow
from engine.store.db import Store

pytestmark = pytest.mark.slow  # the real program, one process per command

WIPE_AND_RETITLE = "X\x1b[2J\x1b]0;pwned\x07"
HOSTILE = {
    "escapes": WIPE_AND_RETITLE + " \x1b[31mred\x1b[0m \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "c1": "a\x9b2Jb\x85c\x7f",
    "markup": "[bold red]LOUD[/bold red] [link=http://evil]click[/link]",
    "markdown": "**md** [link](x) # heading `code` <b>html</b> | cell |",
    "rtl": "abc\u202edef\u2066iso\u2069\u200djoined\u200b",
    "newline": "first line\nforged: HALTED by nobody\r\x1b[1A",
}
# One reason with every kind at once, and one of 10 000 characters that ends in an escape.
EVERYTHING = " ".join(HOSTILE.values())
LONG = "L" * 10_000 + WIPE_AND_RETITLE
# What acts on a terminal instead of showing: none may be in anything printed or written for people.
RAW = {"\x1b": "ESC", "\x07": "BEL", "\x9b": "CSI (C1)", "\x85": "NEL (C1)", "\u202e": "RLO", "\u2066": "LRI"}


def assert_inert(text: str, where: str) -> None:
    found = [name for ch, name in RAW.items() if ch in text]
    assert not found, f"{where}: raw {', '.join(found)} in {text[:400]!r}"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real program, in its own process; stdout and stderr both checked for raw control characters."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    base.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "cockpit.cli", *args],
        capture_output=True,
        cwd=cwd,
        env=base,
        timeout=90,
    )
    out = subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    )
    assert_inert(out.stdout, f"stdout of cockpit {args[0]}")
    assert_inert(out.stderr, f"stderr of cockpit {args[0]}")
    assert "Traceback" not in out.stderr, out.stderr
    return out


async def acli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(cli, *args, cwd=cwd, env=env)


def test_hostile_reasons_with_no_engine_running(tmp_path):
    data = str(tmp_path)
    Store.in_dir(tmp_path).close()  # an engine ran here before

    halted = cli("halt", "--reason", EVERYTHING, "--data-dir", data, cwd=tmp_path)
    assert halted.returncode == 0 and halted.stdout.startswith("HALTED"), halted.stderr

    status = cli("status", "--data-dir", data, cwd=tmp_path)
    assert "PAPER · HALTED" in status.stdout  # the state is still said plainly
    assert "X\\x1b[2J\\x1b]0;pwned\\x07" in status.stdout  # the reason, shown with its escapes visible
    assert "[bold red]LOUD[/bold red]" in status.stdout and "abc\\u202edef" in status.stdout
    assert "first line forged: HALTED by nobody" in status.stdout  # one line: no forged line of its own
    assert json.loads(cli("status", "--json", "--data-dir", data, cwd=tmp_path).stdout)["state_changed"]["reason"] == (
        EVERYTHING
    )

    listed = cli("incidents", "--data-dir", data, cwd=tmp_path)
    assert "X\\x1b[2J" in listed.stdout
    report = cli("incident", "report", "1", "--data-dir", data, cwd=tmp_path)
    assert report.returncode == 0, report.stderr

    resumed = cli("resume", "--reason", LONG, "--json", "--data-dir", data, cwd=tmp_path)
    assert json.loads(resumed.stdout)["ok"] is True

    audit = cli("audit", "--data-dir", data, cwd=tmp_path)
    assert "X\\x1b[2J\\x1b]0;pwned\\x07" in audit.stdout and "L" * 1000 in audit.stdout
    assert max(len(line) for line in audit.stdout.splitlines()) < 2200  # 10 000 characters cut with an ellipsis
    rows = json.loads(cli("audit", "--json", "--data-dir", data, cwd=tmp_path).stdout)
    assert [r["reason"] for r in rows[:2]] == [LONG, EVERYTHING]  # the store and --json keep the true text
    incidents = json.loads(cli("incidents", "--json", "--data-dir", data, cwd=tmp_path).stdout)
    assert incidents[0]["reason"] == EVERYTHING and incidents[0]["recovered_at"]

    report = cli("incident", "report", "1", "--data-dir", data, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "incident_1.md").read_text(encoding="utf-8")
    assert_inert(text, "incident_1.md")
    assert_markdown_is_inert(text)

    daily = cli("report", "daily", "--data-dir", data, cwd=tmp_path)  # nothing traded here: says so, inert
    assert daily.returncode in (0, 1)


def assert_markdown_is_inert(text: str) -> None:
    """The reasons are in the report, but none of their Markdown is markup: no emphasis, link, heading or HTML."""
    assert "reason: X\\\\x1b\\[2J\\\\x1b\\]0;pwned\\\\x07" in text
    assert "**md**" not in text and "\\*\\*md\\*\\*" in text
    assert "[link](x)" not in text and "\\[link\\](x)" in text
    assert "<b>" not in text and "\\<b\\>html\\</b\\>" in text
    assert "[bold red]" not in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# Incident 1: operator", "## Timeline", "## Post-incident review (runbook 001)"]
    assert not any(line.startswith("forged") for line in text.splitlines())


async def test_hostile_text_through_a_running_engine(tmp_path):
    """The engine's own answers and alerts quote the outside text: reasons, a symbol and a strategy's name. What the
    CLI prints of them is inert, --json the true text. The actor is not outside text any more: the engine names the
    caller from its socket's peer credentials, so a hostile LOGNAME or USER changes nothing."""
    data = str(tmp_path)
    actor_env = {"LOGNAME": "eve" + WIPE_AND_RETITLE, "USER": "eve" + WIPE_AND_RETITLE}
    engine = Engine(Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False)))
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        halted = await acli("halt", "--reason", EVERYTHING, "--data-dir", data, cwd=tmp_path, env=actor_env)
        assert halted.returncode == 0, halted.stderr
        assert halted.stdout.startswith("HALTED (X\\x1b[2J\\x1b]0;pwned\\x07")  # the engine's answer, inert
        assert engine.trading_state == TradingState.HALTED
        assert engine.state_info["reason"] == EVERYTHING
        assert engine.state_info["actor"] == f"operator:cli {pwd.getpwuid(os.getuid()).pw_name}"  # not LOGNAME

        refused = [
            await acli("order", "buy", "BTC" + WIPE_AND_RETITLE, "0.01", "--data-dir", data, cwd=tmp_path),
            await acli("strategy", "enable", "[bold]ladder\u202e" + WIPE_AND_RETITLE, "--data-dir", data, cwd=tmp_path),
            await acli("close", "ETH\x9b2J/USDT", "--data-dir", data, cwd=tmp_path),
        ]
        assert [r.returncode for r in refused] == [1, 1, 1], [r.stderr for r in refused]
        as_json = await acli("close", "ETH\x9b2J/USDT", "--json", "--data-dir", data, cwd=tmp_path)
        assert "\x9b" not in as_json.stdout and "\\u009b" in as_json.stdout  # JSON escapes it ...
        assert json.loads(as_json.stdout)["ok"] is False  # ... and it parses back

        resumed = await acli("resume", "--reason", LONG, "--json", "--data-dir", data, cwd=tmp_path, env=actor_env)
        answer = json.loads(resumed.stdout)
        assert answer["ok"] is True and answer["message"] == f"ACTIVE ({LONG})"  # the true text, all of it

        status = await acli("status", "--data-dir", data, cwd=tmp_path)
        assert "PAPER · ACTIVE" in status.stdout and "latest alerts:" in status.stdout
        assert "X\\x1b[2J" in status.stdout  # the reason, in the alerts that quote it
        alerts = json.loads((await acli("status", "--json", "--data-dir", data, cwd=tmp_path)).stdout)["alerts"]
        assert any(EVERYTHING in a["message"] for a in alerts)  # the alert quotes the true reason

        audit = await acli("audit", "--limit", "10", "--data-dir", data, cwd=tmp_path)
        assert "X\\x1b[2J\\x1b]0;pwned\\x07" in audit.stdout
        rows = json.loads((await acli("audit", "--json", "--limit", "10", "--data-dir", data, cwd=tmp_path)).stdout)
        assert rows[0]["reason"] == LONG and rows[-1]["reason"] == EVERYTHING
        assert rows[-1]["actor"] == f"operator:cli {pwd.getpwuid(os.getuid()).pw_name}"

        listed = await acli("incidents", "--data-dir", data, cwd=tmp_path)
        assert "X\\x1b[2J" in listed.stdout
        report = await acli("incident", "report", "1", "--data-dir", data, cwd=tmp_path)
        assert report.returncode == 0, report.stderr
        text = (tmp_path / "incident_1.md").read_text(encoding="utf-8")
        assert_inert(text, "incident_1.md")
        assert_markdown_is_inert(text)
        assert "X\\\\x1b\\[2J" in text  # the reason, visible in the report

        await eventually(lambda: engine.store.load_day(utcnow().date().isoformat()), message="today's figures")
        daily = await acli("report", "daily", "--data-dir", data, cwd=tmp_path)
        assert daily.returncode == 0, daily.stderr
        assert "kill-switch trips 1" in daily.stdout
    finally:
        await engine.stop()
