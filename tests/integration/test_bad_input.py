"""Bad input, each answered with a sentence that names what is wrong and what to do, never a traceback, and nothing
lost: a read-only data directory, a cockpit.db of random bytes or someone else's SQLite file, a server answering
HTML, bad configuration, a full disk (at start and mid-session), and a venue answering garbage mid-session.

How the disk is made read-only or full: as root (CI containers, this machine) a read-only bind mount and a 2 MB
tmpfs, since root writes through file modes; otherwise file modes for read-only, RLIMIT_FSIZE for a full disk at
start, and the mid-session full disk is skipped (it needs a mount)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from crashloop import differences
from eventually import eventually
from htmlserver import html_server
from needs import read_only
from runbook import buy, codes, settings

from cockpit.cli import main
from engine.kernel.commands import CancelAll, PlaceOrder, Resume
from engine.kernel.events import TradingState, TradingStateChanged
from engine.store.db import DB_NAME, Store

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cockpit(
    cwd: Path, *args: str, env: dict | None = None, limit_file_bytes: int | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The real program, from another shell."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}

    def limits() -> None:
        if limit_file_bytes is not None:  # a disk that takes no more than this per file: writes fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "cockpit.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=timeout,
        preexec_fn=limits,
    )


def said_clearly(result: subprocess.CompletedProcess | tuple[int, str], *words: str) -> str:
    """Exit 2 with every word in the message and no traceback; returns the message."""
    code, err = (result.returncode, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    return err


def in_process(capsys, *argv: str, caplog=None) -> tuple[int, str]:
    """``cockpit ARGV`` in this process: its exit status and what it said (stderr, and the log for ``run``)."""
    code = main(list(argv))
    said = capsys.readouterr().err + (caplog.text if caplog is not None else "")
    if caplog is not None:
        caplog.clear()
    return code, said


@contextmanager
def small_disk(directory: Path, size: str = "2m"):
    """A tmpfs of ``size`` at ``directory`` (root only)."""
    directory.mkdir(parents=True, exist_ok=True)
    if (
        not IS_ROOT
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("a full disk mid-session needs a tmpfs mount (root)")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the disk under ``directory`` to the last byte; returns the filler to remove."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (65536, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


def halted_store(data_dir: Path) -> Path:
    store = Store.in_dir(data_dir)
    store.handle(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", "drill"))
    store.close()
    return data_dir / DB_NAME


# ------------------------------------------------------------------ the data directory and its store


def test_a_read_only_data_dir_is_read_and_every_writer_says_what_is_wrong(tmp_path, capsys, caplog):
    data = tmp_path / "data"
    db = halted_store(data)
    before = digest(db)
    with read_only(data) as reason:
        assert main(["status", "--data-dir", str(data)]) == 0
        assert "HALTED (by operator:key" in capsys.readouterr().out
        assert main(["status", "--json", "--data-dir", str(data)]) == 0
        assert '"trading_state": "HALTED"' in capsys.readouterr().out
        said_clearly(in_process(capsys, "halt", "--data-dir", str(data)), reason, "halt: NOT done", "--data-dir")
        said_clearly(in_process(capsys, "cancel-all", "--data-dir", str(data)), reason, "cancel-all: NOT done")
        said_clearly(in_process(capsys, "snapshot", "--data-dir", str(data)), reason)
        said_clearly(in_process(capsys, "tui", "--data-dir", str(data)), reason, "cockpit status --data-dir")
        run = in_process(capsys, "run", "--headless", "--data-dir", str(data), caplog=caplog)
        said_clearly(run, reason, "pass another --data-dir", "cockpit status --data-dir")
    assert digest(db) == before


def test_random_bytes_and_a_foreign_database_are_refused_by_every_command_and_left_untouched(tmp_path, capsys, caplog):
    junk, foreign = tmp_path / "junk", tmp_path / "foreign"
    junk.mkdir()
    (junk / DB_NAME).write_bytes(os.urandom(8192))
    foreign.mkdir()
    conn = sqlite3.connect(foreign / DB_NAME)
    conn.execute("create table invoices (id integer primary key, total text)")
    conn.execute("insert into invoices (total) values ('12.50')")
    conn.commit()
    conn.close()
    for directory, words in (
        (junk, ("is not a cockpit store", "not an SQLite database")),
        (foreign, ("not cockpit's (tables: invoices)",)),
    ):
        db = directory / DB_NAME
        before = digest(db)
        for argv in (["status"], ["halt"], ["cancel-all"], ["audit"], ["tui"]):
            said_clearly(in_process(capsys, *argv, "--data-dir", str(directory)), *words, "move it away")
        said_clearly(in_process(capsys, "run", "--headless", "--data-dir", str(directory), caplog=caplog), *words)
        assert digest(db) == before, f"{db} was modified"
        assert not (directory / f"{DB_NAME}-wal").exists() and not (directory / f"{DB_NAME}-shm").exists()


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "text, words",
    [
        ("[engine\nmode = 'paper'\n", ("not valid TOML", "line 1")),
        ("[engine]\nmood = 'paper'\n", ("engine.mood: unknown key", "check its spelling")),
        ("[venue]\ntimeout_ms = 'fast'\n", ("venue.timeout_ms", "valid integer")),
        ("[risk]\nmax_position_pct = -3\n", ("risk.max_position_pct", "greater than 0")),
        ("[venue]\nsymbols = 'BTC/USDT'\n", ("venue.symbols", "valid tuple")),
        ("[venue]\napi_secret = 'hunter2'\n", ("must not be in a config file", "COCKPIT_VENUE__API_SECRET")),
        ("[monitors]\nws_stale_warn_s = 60\nws_stale_crit_s = 10\n", ("ws_stale_crit_s", "longer than")),
    ],
)
def test_bad_configuration_names_the_file_the_key_and_the_fix(tmp_path, capsys, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    err = said_clearly(
        in_process(capsys, "status", "--config", str(path), "--data-dir", str(tmp_path)), str(path), *words
    )
    assert "hunter2" not in err  # a refused value is never echoed: it may be a secret


def test_a_missing_config_file_and_missing_live_keys_are_named(tmp_path, capsys, caplog):
    said_clearly(
        in_process(capsys, "status", "--config", str(tmp_path / "nope.toml")),
        "nope.toml",
        "no such config file",
        "--config",
    )
    (tmp_path / "live.toml").write_text('[engine]\nmode = "live"\n[venue]\nexchange = "binance"\n')
    run = in_process(
        capsys,
        "run",
        "--headless",
        "--confirm-live",
        "--config",
        str(tmp_path / "live.toml"),
        "--data-dir",
        str(tmp_path / "d"),
        caplog=caplog,
    )
    said_clearly(run, "live mode needs COCKPIT_VENUE__API_KEY and COCKPIT_VENUE__API_SECRET")


# ------------------------------------------------------------------ the venue


async def test_a_server_answering_html_is_called_garbage_by_the_real_program(tmp_path):
    async with html_server() as port:
        (tmp_path / "config.toml").write_text(
            f'[venue]\nexchange = "binance"\nrest_url = "http://127.0.0.1:{port}"\nws_url = "ws://127.0.0.1:{port}"\n'
            "retry_backoff_s = [0.05]\n"
        )
        run = await asyncio.to_thread(
            cockpit,
            tmp_path,
            "run",
            "--headless",
            "--data-dir",
            "d",
            env={"COCKPIT_VENUE__API_KEY": "k", "COCKPIT_VENUE__API_SECRET": "s"},
        )
        err = said_clearly(run, "garbage", "rest_url")
        assert "not traded" not in err


@pytest.mark.parametrize("body", ["json", "truncated"])  # html: the server answering HTML above
async def test_a_venue_answering_garbage_mid_session_halts_sends_nothing_twice_and_recovers(sim, tmp_path, run, body):
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_cooldown_s=1.0)))
    await buy(engine)
    fault = sim.faults.inject("garbage", body=body)
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert not placed.ok and "VenueGarbage" in placed.message, placed.message
    await eventually(lambda: engine.trading_state == TradingState.HALTED, timeout=10, message="halted")
    assert engine.state_info["code"] == "rest_errors" and "VenueGarbage" in engine.state_info["reason"]
    assert not {"COMMAND_FAILED", "TASK_CRASHED", "LOOP_FAILED"} & set(codes(engine))  # no bug, no traceback
    sim.faults.clear(fault)
    # The kill switch works at once (its own lane); the order the engine could not confirm never arrived: it is
    # settled as lost, not left blocking. Once the breaker's cool-down ends, reconciliation agrees with the venue.
    result = await engine.execute(CancelAll(actor="operator:key", reason="after the garbage"))
    assert result.ok, result.message
    assert engine.tracker.open_orders() == [] and sim.open_orders() == []
    await eventually(lambda: engine.venue.breaker.state.value == "CLOSED", timeout=15, message="venue back")
    await eventually(lambda: differences(sim.account(), engine.store) == [], timeout=10, message="store = venue")


# ------------------------------------------------------------------ a full disk


def test_a_full_disk_at_start_is_said_in_words(tmp_path, capsys, caplog):
    if IS_ROOT:
        with small_disk(tmp_path / "disk", "64k") as disk:
            fill(disk)
            run = in_process(capsys, "run", "--headless", "--data-dir", str(disk / "data"), caplog=caplog)
    else:
        run = cockpit(tmp_path, "run", "--headless", "--data-dir", "data", limit_file_bytes=4096)
    said_clearly(run, "cannot", "full", "--data-dir")


async def test_a_disk_that_fills_mid_session_halts_sends_nothing_it_cannot_record_and_loses_nothing(sim, tmp_path, run):
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        engine = await run(settings(sim, data))
        await buy(engine)
        filler = fill(disk)
        last = engine.portfolio.last["BTC/USDT"]
        refused = await engine.execute(
            PlaceOrder(
                actor="operator:key",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        )
        assert not refused.ok and ("cannot record" in refused.message or "HALTED" in refused.message)
        await eventually(lambda: "STORE_WRITE_FAILED" in codes(engine), timeout=10, message="CRIT alert")
        alert = next(a for a in engine.alert_book.recent if a.code == "STORE_WRITE_FAILED")
        assert alert.severity.value == "CRIT" and "Free space in" in alert.message
        assert engine.trading_state == TradingState.HALTED and sim.open_orders() == []
        refused_resume = await engine.execute(Resume(actor="operator:key"))
        assert not refused_resume.ok and "store cannot be written" in refused_resume.message
        assert Store.in_dir(data, readonly=True).trading_state()[0] in TradingState  # still readable
        filler.unlink()
        await eventually(lambda: "STORE_RECOVERED" in codes(engine), timeout=15, message="recorded again")
        assert Store.in_dir(data, readonly=True).trading_state()[0] == TradingState.HALTED  # the halt, re-recorded
        await engine.stop()
        again = await run(settings(sim, data))
        await again.sync.reconcile_all()
        assert differences(sim.account(), again.store) == []  # nothing lost: store and venue agree after the restart
        assert again.trading_state == TradingState.HALTED
        await again.stop()
