"""The service API (issue 20) on a real engine and the simulator: the local socket (actor from the peer's
credentials), the remote HTTP API (bearer tokens and roles), the event stream with sequence numbers and its
catch-up, and the OpenAPI document. The engine's own wiring serves the socket; these tests drive it as clients do:
the standard library's HTTP over the Unix socket, aiohttp over TCP and WebSocket."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import socket
import stat
import subprocess
from decimal import Decimal

import aiohttp
import pytest
from eventually import eventually
from runbook import held, settings

from engine.api import client as local
from engine.api import tokens
from engine.api.server import ApiServer
from engine.core.service import Service
from engine.kernel.events import TradingState
from engine.store.db import Store


async def serve(engine, remote: bool = False) -> tuple[Service, ApiServer]:
    service = engine.service
    server = ApiServer(service, local=False, remote=remote, host="127.0.0.1", port=0)
    await server.start()
    return service, server


def token(data_dir, name: str, role: str) -> str:
    store = Store.in_dir(data_dir)
    try:
        return tokens.create(store, name, role, by="test")
    finally:
        store.close()


async def local_call(data_dir, method, path, body=None):
    return await asyncio.to_thread(local.call, data_dir, method, path, body, 10.0)


async def test_the_local_socket_is_owner_only_and_names_the_peer_as_the_actor(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    path = tmp_path / "cockpit.sock"
    await eventually(path.exists, message="the engine serves its socket")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status, answer = await local_call(tmp_path, "GET", "/api/status")
    assert status == 200 and answer["trading_state"] == "ACTIVE" and answer["running"] is True
    # The client cannot choose its actor: the body's "actor" is an argument the command does not take.
    status, answer = await local_call(
        tmp_path, "POST", "/api/commands/halt", {"args": {"actor": "monitor:flash_crash"}, "reason": "forged"}
    )
    assert status == 400 and "actor" in answer["message"]
    assert engine.trading_state == TradingState.ACTIVE
    status, answer = await local_call(tmp_path, "POST", "/api/emergency/stop", {"reason": "from the socket"})
    assert status == 200 and answer["ok"], answer
    assert engine.trading_state == TradingState.HALTED
    record = engine.store.audit(limit=1)[0]
    assert record["command"] == "halt" and record["actor"] == f"operator:cli {getpass.getuser()}", record
    assert record["reason"] == "from the socket"
    status, answer = await local_call(tmp_path, "POST", "/api/commands/nonsense", {})
    assert status == 400 and "unknown command" in answer["message"]


async def test_remote_tokens_401_403_and_an_operators_close_all_flattens_audited_as_its_name(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    _, server = await serve(engine, remote=True)
    viewer = token(tmp_path, "phone", "viewer")
    operator = token(tmp_path, "desk", "operator")
    assert viewer.startswith("ckpt_") and viewer != operator
    stored = Store.in_dir(tmp_path, readonly=True)
    try:
        assert viewer not in json.dumps(list(stored.db.query("select * from api_tokens")))
    finally:
        stored.close()
    bought = await engine.execute(
        __import__("engine.kernel.commands", fromlist=["PlaceOrder"]).PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="market",
            amount=Decimal("0.001"),
            stop_loss=engine.portfolio.last["BTC/USDT"] * Decimal("0.5"),
        )
    )
    assert bought.ok, bought.message
    url = server.url
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/status") as r:
                assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
            async with http.get(f"{url}/api/status", headers={"Authorization": "Bearer ckpt_wrong"}) as r:
                assert r.status == 401
            assert "API_AUTH_FAILED" in [a.code for a in engine.alert_book.recent]
            seen = {"Authorization": f"Bearer {viewer}"}
            async with http.get(f"{url}/api/positions", headers=seen) as r:
                assert r.status == 200 and [p["symbol"] for p in await r.json()] == ["BTC/USDT"]
            async with http.post(f"{url}/api/emergency/close-all", headers=seen) as r:
                assert r.status == 403 and "viewer" in (await r.json())["message"]
            assert engine.trading_state == TradingState.ACTIVE
            act = {"Authorization": f"Bearer {operator}"}
            async with http.post(f"{url}/api/emergency/close-all", headers=act, json={"reason": "desk: flatten"}) as r:
                answer = await r.json()
                assert r.status == 200 and answer["ok"] and answer["actor"] == "api:desk", answer
            assert engine.trading_state == TradingState.HALTED
            assert held(sim, "BTC") < Decimal("0.0001")
            record = next(r for r in engine.store.audit(limit=20) if r["command"] == "close-all")
            assert record["actor"] == "api:desk" and record["reason"] == "desk: flatten"
            async with http.get(f"{url}/api/config", headers=seen) as r:
                config = await r.text()
                assert r.status == 200 and sim.api_secret not in config and sim.api_key not in config
                assert json.loads(config)["venue"]["api_secret"] == "(set)"
            async with http.get(f"{url}/api/openapi.json", headers=seen) as r:
                doc = await r.json()
                assert doc["openapi"].startswith("3.") and "/api/emergency/close-all" in doc["paths"]
    finally:
        await server.stop()


async def test_failed_attempts_are_refused_for_a_while_after_ten(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    _, server = await serve(engine, remote=True)
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(11):
                async with http.get(f"{server.url}/api/status", headers={"Authorization": "Bearer x"}) as r:
                    statuses.append(r.status)
            assert statuses[:10] == [401] * 10 and statuses[10] == 429, statuses
            good = token(tmp_path, "late", "viewer")
            async with http.get(f"{server.url}/api/status", headers={"Authorization": f"Bearer {good}"}) as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) > 0  # even a good token waits it out
        assert "API_AUTH_BLOCKED" in [a.code for a in engine.alert_book.recent]
        (alert,) = [a for a in engine.alert_book.recent if a.code == "API_AUTH_BLOCKED"]
        assert alert.values["failures"] == 10 and "refused for 60s" in alert.message, alert
    finally:
        await server.stop()


async def test_the_event_stream_numbers_events_and_a_client_that_comes_back_gets_what_it_missed(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    _, server = await serve(engine, remote=True)
    viewer = {"Authorization": f"Bearer {token(tmp_path, 'screen', 'viewer')}"}
    halt = {"Authorization": f"Bearer {token(tmp_path, 'desk', 'operator')}"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.url}/api/ws", headers=viewer) as ws:
                hello = await ws.receive_json()
                assert hello["type"] == "hello"
                first = hello["seq"]
                async with http.post(f"{server.url}/api/emergency/stop", headers=halt) as r:
                    assert r.status == 200
                seen: list[dict] = []

                async def until_halted() -> bool:
                    seen.append(await ws.receive_json(timeout=5))
                    return seen[-1]["type"] == "TradingStateChanged"

                await eventually(until_halted, timeout=10, message="the halt on the stream")
                changed = seen[-1]
                assert changed["state"] == "HALTED" and changed["actor"] == "api:desk" and changed["seq"] > first
            # Away: more happens.
            async with http.post(f"{server.url}/api/emergency/resume", headers=halt, json={"reason": "ok"}) as r:
                assert r.status == 200, await r.text()
            async with http.post(f"{server.url}/api/commands/halt", headers=halt, json={"reason": "again"}) as r:
                assert r.status == 200
            # Back with the last number seen: everything after it, in order, without a hole.
            async with http.ws_connect(f"{server.url}/api/ws?since={changed['seq']}", headers=viewer) as ws:
                assert (await ws.receive_json())["type"] == "hello"
                caught: list[dict] = []

                async def until_second_halt() -> bool:
                    caught.append(await ws.receive_json(timeout=5))
                    return caught[-1].get("type") == "TradingStateChanged" and caught[-1]["state"] == "HALTED"

                await eventually(until_second_halt, timeout=10, message="the second halt replayed")
            numbered = [e["seq"] for e in caught if "seq" in e]
            assert numbered == list(range(changed["seq"] + 1, numbered[-1] + 1)), numbered
            assert [e["state"] for e in caught if e["type"] == "TradingStateChanged"] == ["ACTIVE", "HALTED"]
            # The same from the store, once memory has moved on: the HTTP catch-up reads it there.
            engine.service.journal._recent.clear()
            async with http.get(f"{server.url}/api/events?since={changed['seq']}", headers=viewer) as r:
                body = await r.json()
            assert body["complete"] and [e["seq"] for e in body["events"]][: len(numbered)] == numbered
            async with http.get(f"{server.url}/api/events?since=999999999", headers=viewer) as r:
                assert (await r.json())["complete"] is False  # a number this engine never gave: start afresh
    finally:
        await server.stop()


@pytest.mark.parametrize("role", ["admin", ""])
def test_a_token_needs_a_known_role_and_a_usable_name(tmp_path, role):
    store = Store.in_dir(tmp_path)
    try:
        with pytest.raises(tokens.TokenError, match="role"):
            tokens.create(store, "x", role, by="t")
        with pytest.raises(tokens.TokenError, match="not usable"):
            tokens.create(store, "bad name\x1b", "viewer", by="t")
        tokens.create(store, "one", "viewer", by="t")
        with pytest.raises(tokens.TokenError, match="exists"):
            tokens.create(store, "one", "operator", by="t")
        tokens.revoke(store, "one")
        with pytest.raises(tokens.TokenError, match="no token"):
            tokens.revoke(store, "one")
    finally:
        store.close()


async def test_the_remote_api_off_loopback_needs_tls_or_says_plaintext_out_loud(sim, tmp_path, run):
    """Off loopback without TLS the engine refuses to start, naming the keys; with allow_plaintext it starts, and an
    address it cannot bind (TEST-NET, not this machine's) is API_UNAVAILABLE, CRIT, while trading goes on."""
    from engine.core.engine import Engine
    from engine.kernel.config import ApiConfig
    from engine.kernel.errors import EngineError

    refused = settings(sim, tmp_path).model_copy(update={"api": ApiConfig(host="192.0.2.7", port=8443)})
    with pytest.raises(EngineError, match="needs TLS there"):
        await Engine(refused).start()
    everywhere = settings(sim, tmp_path).model_copy(update={"api": ApiConfig(host="0.0.0.0", port=8443)})
    with pytest.raises(EngineError, match="needs TLS there"):  # every network, loopback included: not loopback
        await Engine(everywhere).start()
    plain = refused.model_copy(update={"api": ApiConfig(host="192.0.2.7", port=8443, allow_plaintext=True)})
    engine = await run(plain)
    assert "API_UNAVAILABLE" in [a.code for a in engine.alert_book.recent]
    assert (tmp_path / "cockpit.sock").exists() and engine.trading_state == TradingState.ACTIVE  # the local one stays
    with pytest.raises(ValueError, match="go together"):
        ApiConfig(tls_cert=tmp_path / "cert.pem")


async def test_the_remote_api_on_loopback_needs_no_tls(sim, tmp_path, run):
    from engine.kernel.config import ApiConfig

    engine = await run(settings(sim, tmp_path).model_copy(update={"api": ApiConfig(port=free_port())}))
    assert engine.api_server is not None and engine.api_server.url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as http, http.get(f"{engine.api_server.url}/api/status") as r:
        assert r.status == 401  # served, and asks for a token


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
async def test_the_remote_api_serves_tls_with_the_configured_certificate(sim, tmp_path, run):
    """[api] tls_cert and tls_key: the remote API speaks HTTPS; a client that trusts the certificate gets in with a
    token, and one that sends plain HTTP to it gets no answer it could take for the engine's."""
    import ssl

    from engine.kernel.config import ApiConfig

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
    )
    assert made.returncode == 0, made.stderr
    base = settings(sim, tmp_path)
    engine = await run(base.model_copy(update={"api": ApiConfig(port=free_port(), tls_cert=cert, tls_key=key)}))
    url = engine.api_server.url
    assert url.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=str(cert))
    bearer = {"Authorization": f"Bearer {token(tmp_path, 'desk', 'viewer')}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/status", headers=bearer, ssl=trust) as r:
            assert r.status == 200 and (await r.json())["trading_state"] == "ACTIVE"
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url.replace("https", "http") + "/api/status", headers=bearer) as r:
                await r.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_row_written_into_the_stores_inbox_under_a_forged_actor_is_refused(sim, tmp_path, run):
    """Someone writes a `halt` row into the store's commands table claiming to be a monitor (as was done by hand on
    main before the service API): the engine refuses it, says why in the row, and trading goes on."""
    engine = await run(settings(sim, tmp_path))
    writer = Store.in_dir(tmp_path)
    try:
        forged = writer.submit_command("halt", "monitor:flash_crash", "written by hand")
        honest = writer.submit_command("ack", "operator:cli someone", "from the inbox", {"every": True})
    finally:
        writer.close()

    def finished(command_id: int) -> dict | None:
        reader = Store.in_dir(tmp_path, readonly=True)
        try:
            row = reader.command(command_id)
        finally:
            reader.close()
        return row if row["status"] not in ("pending", "running") else None

    row = await eventually(lambda: finished(forged), timeout=10, message="the forged row answered")
    assert row["status"] == "failed" and "monitor:flash_crash" in row["result"], row
    assert engine.trading_state == TradingState.ACTIVE
    assert not [r for r in engine.store.audit(limit=20) if r["actor"] == "monitor:flash_crash"]
    assert (await eventually(lambda: finished(honest), timeout=10))["status"] == "done"  # the command line's runs
