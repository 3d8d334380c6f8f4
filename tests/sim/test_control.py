"""The control API (/sim/...) and the `cockpit sim fault` command line against a running simulator."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import ccxt
import pytest

from engine.sim import faultcli
from engine.sim.control import is_loopback

BTC = "BTC/USDT"


@pytest.fixture
def sim(sim, monkeypatch):
    """The shared simulator; `cockpit sim fault` (run_cli) finds its control token in $COCKPIT_SIM_TOKEN."""
    monkeypatch.setenv("COCKPIT_SIM_TOKEN", sim.control_token)
    return sim


def token(sim) -> dict[str, str]:
    """The control API's Authorization header for ``sim``."""
    return {"Authorization": f"Bearer {sim.control_token}"}


async def run_cli(*argv: str) -> tuple[int, str, str]:
    """faultcli.main in a worker thread (it blocks on HTTP while the simulator serves on this loop)."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(faultcli.main, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


async def test_cli_injects_lists_and_clears(sim, client):
    code, out, _ = await run_cli(
        "http-status", "--status", "503", "--path", "/api/v3/ticker/24hr", "--for", "30", "--rest", sim.rest_url
    )
    assert code == 0
    assert (
        out.strip()
        == "fault 1 http-status started (for 30s): status=503, retry_after=1, path=/api/v3/ticker/24hr, rate=1.0"
    )
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_ticker(BTC)
    code, out, _ = await run_cli("list", "--rest", sim.rest_url)
    assert code == 0 and out.startswith("fault 1 http-status active since ") and "(hits 1)" in out
    code, out, _ = await run_cli("clear", "--rest", sim.rest_url)
    assert (code, out) == (0, "fault 1 cleared\n")
    assert (await client.fetch_ticker(BTC))["last"] > 0
    code, out, _ = await run_cli("clear", "--rest", sim.rest_url)
    assert (code, out) == (0, "no active fault to clear\n")


async def test_cli_one_shot_and_clear_by_id(sim):
    code, out, _ = await run_cli("balance-change", "--asset", "USDT", "--delta", "-100", "--rest", sim.rest_url)
    assert code == 0 and out.startswith("fault 1 balance-change done (once): asset=USDT, delta=-100")
    code, out, _ = await run_cli("latency", "--ms", "50", "--rest", sim.rest_url)
    assert code == 0 and "fault 2 latency started (until cleared)" in out
    code, out, _ = await run_cli("clear", "2", "--rest", sim.rest_url)
    assert (code, out) == (0, "fault 2 cleared\n")
    code, out, _ = await run_cli("list", "--all", "--rest", sim.rest_url)
    assert "fault 1 balance-change ended (done)" in out and "fault 2 latency ended (cleared)" in out


async def test_cli_refuses_bad_names_and_options_with_exit_2(sim):
    code, _, err = await run_cli("explode", "--rest", sim.rest_url)
    assert code == 2 and "unknown fault 'explode'" in err and "valid names: http-status" in err
    code, _, err = await run_cli("http-status", "--rest", sim.rest_url)
    assert code == 2 and "--status" in err
    code, _, err = await run_cli("latency", "--ms", "soon", "--rest", sim.rest_url)
    assert code == 2 and "ms must be int" in err
    code, _, err = await run_cli("ws-drop", "--which", "everything", "--rest", sim.rest_url)
    assert code == 2 and "market, user" in err
    code, _, err = await run_cli("http-status", "--status", "503", "--for", "-1", "--rest", sim.rest_url)
    assert code == 2
    code, _, err = await run_cli("foreign-fill", "--symbol", "DOGEUSDT", "--rest", sim.rest_url)
    assert code == 2 and "unknown symbol" in err
    assert sim.faults.active() == []


async def test_cli_reports_an_unreachable_simulator_with_exit_1():
    code, _, err = await run_cli("list", "--rest", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the simulator" in err


async def test_cli_help_and_names():
    code, out, _ = await run_cli("names")
    assert code == 0 and all(name in out for name in ("http-status", "ws-silence", "clock-skew"))
    code, out, _ = await run_cli("latency", "--help")
    assert code == 0 and "--jitter-ms" in out and "--for" in out


async def test_control_api_json(sim):
    async with aiohttp.ClientSession(headers=token(sim)) as session:
        async with session.post(f"{sim.rest_url}/sim/faults", json={"name": "nope"}) as resp:
            assert resp.status == 400 and "valid names" in (await resp.json())["error"]
        async with session.post(
            f"{sim.rest_url}/sim/faults", json={"name": "latency", "options": {"ms": 10}, "duration": 60}
        ) as resp:
            fault = (await resp.json())["fault"]
            assert fault["name"] == "latency" and fault["active"] and fault["duration"] == 60
        async with session.get(f"{sim.rest_url}/sim/faults") as resp:
            body = await resp.json()
            assert [f["id"] for f in body["active"]] == [fault["id"]]
            assert body["catalogue"]["latency"]["options"]["ms"]["required"] is True
        async with session.delete(f"{sim.rest_url}/sim/faults/99") as resp:
            assert resp.status == 404
        async with session.post(f"{sim.rest_url}/sim/price", json={"symbol": "ETHUSDT", "price": "3000"}) as resp:
            assert (await resp.json())["price"] == "3000.00"
        async with session.get(f"{sim.rest_url}/sim/status") as resp:
            status = await resp.json()
            assert status["prices"]["ETHUSDT"] == "3000.00" and sim.api_secret not in str(status)


async def test_control_api_is_not_affected_by_faults(sim):
    sim.faults.inject("maintenance")
    sim.faults.inject("http-status", status=500)
    async with aiohttp.ClientSession(headers=token(sim)) as session, session.get(f"{sim.rest_url}/sim/faults") as resp:
        assert resp.status == 200 and len((await resp.json())["active"]) == 2


def test_loopback_check():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert not is_loopback("192.168.1.5") and not is_loopback(None) and not is_loopback("garbage")


async def test_control_api_refuses_web_pages_and_non_json(sim):
    import aiohttp

    async with aiohttp.ClientSession(headers=token(sim)) as s:
        async with s.post(
            f"{sim.rest_url}/sim/faults",
            data='{"name": "maintenance"}',
            headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        ) as r:
            assert r.status == 403
        async with s.post(
            f"{sim.rest_url}/sim/faults", data='{"name": "maintenance"}', headers={"Content-Type": "text/plain"}
        ) as r:
            assert r.status == 415
    assert sim.faults.active() == []


async def test_overlapping_key_revocations_restore_the_key_only_when_both_end(sim):
    first = sim.faults.inject("key-revoked")
    second = sim.faults.inject("key-revoked")
    record = sim.auth.keys[sim.api_key]
    sim.faults.clear(first)
    assert record.revoked
    sim.faults.clear(second)
    assert not record.revoked
