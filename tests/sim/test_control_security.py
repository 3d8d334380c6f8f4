"""Who may drive the simulator (issue 25 §6): the control API needs the token printed at start, every request
needs a ``Host:`` naming loopback (DNS rebinding), and ``/sim/status`` shows no secret."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import stat
import sys
from pathlib import Path

import aiohttp
import pytest

from engine.sim import Simulator, faultcli

ROOT = Path(__file__).resolve().parents[2]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def file_state(path: Path) -> tuple[str, int, int] | None:
    """(text, file mode, directory mode) of ``path``, None if it is gone."""
    if not path.exists():
        return None
    return path.read_text(), stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)


async def test_control_api_needs_the_token(sim):
    url = f"{sim.rest_url}/sim/faults"
    body = {"name": "maintenance"}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            message = (await r.json())["error"]
            assert message.startswith("missing control token") and "Simulator.control_token" in message
        async with s.post(url, json=body, headers=bearer("not-the-token")) as r:
            assert r.status == 401 and (await r.json())["error"].startswith("wrong control token")
        async with s.post(url, json=body, headers={"X-Cockpit-Sim-Token": sim.control_token + "x"}) as r:
            assert r.status == 401
        for path in ("/sim/status", "/sim/account", "/sim/faults"):
            async with s.get(f"{sim.rest_url}{path}") as r:
                assert r.status == 401, path
        assert sim.faults.all() == []  # nothing refused reached the fault book

        async with s.post(url, json=body, headers=bearer(sim.control_token)) as r:
            assert r.status == 200 and (await r.json())["fault"]["name"] == "maintenance"
        async with s.delete(url, headers={"X-Cockpit-Sim-Token": sim.control_token}) as r:
            assert r.status == 200 and len((await r.json())["cleared"]) == 1
    # Python calls are not HTTP: no token.
    sim.faults.inject("latency", ms=1)
    assert len(sim.faults.active()) == 1


async def test_a_host_that_is_not_loopback_is_refused_everywhere(sim):
    port = sim.rest_port
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{sim.rest_url}/api/v3/ping", headers={"Host": "evil.example"}) as r:
            assert r.status == 421  # the venue's own API, before anything else
        for path, headers in (("/api/v3/ping", {}), ("/sim/faults", bearer(sim.control_token))):
            async with s.get(f"{sim.rest_url}{path}", headers={**headers, "Host": "evil.example"}) as r:
                assert r.status == 421, path
                assert "DNS rebinding" in await r.text()
            async with s.get(f"{sim.rest_url}{path}", headers={**headers, "Host": f"evil.example:{port}"}) as r:
                assert r.status == 421, path
            for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "localhost", f"[::1]:{port}"):
                async with s.get(f"{sim.rest_url}{path}", headers={**headers, "Host": host}) as r:
                    assert r.status == 200, (path, host)
    # The websocket handshake too (a raw request: a client library would send its own Host).
    for host, status in (("evil.example", b"421"), (f"127.0.0.1:{sim.ws_port}", b"101")):
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ws_port)
        writer.write(
            f"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await writer.wait_closed()
        assert status_line.split()[1] == status, (host, status_line)


def test_host_check():
    from engine.sim.access import HostCheck

    check = HostCheck("127.0.0.1")
    for host in ("127.0.0.1:8080", "127.0.0.1", "localhost", "LOCALHOST:80", "localhost.", "[::1]:8080", "[::1]"):
        assert check.allows([host]), host
    for hosts in (
        ["evil.example"],
        ["127.0.0.1.evil.example"],
        ["localhost.evil.example:8080"],
        ["127.0.0.1:http"],
        ["[::1"],
        ["::1"],
        ["192.168.1.5:8080"],
        [],
        ["127.0.0.1", "evil.example"],
    ):
        assert not check.allows(hosts), hosts
    assert HostCheck("192.168.1.5").allows(["192.168.1.5:8080"])  # the address it was bound to, by number
    assert not HostCheck("0.0.0.0").allows(["0.0.0.0:8080"])


async def test_status_shows_no_secret_and_no_whole_key(sim):
    async with aiohttp.ClientSession(headers=bearer(sim.control_token)) as s:
        async with s.get(f"{sim.rest_url}/sim/status") as r:
            assert r.status == 200
            text = await r.text()
    assert sim.api_secret not in text and sim.api_key not in text and sim.control_token not in text
    assert f"{sim.api_key[:4]}...{sim.api_key[-4:]}" in text


async def test_fault_cli_sends_the_token_and_says_where_it_is_when_missing(sim, tmp_path, monkeypatch):
    from engine.sim.access import default_token_file, write_token_file

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("COCKPIT_SIM_TOKEN", raising=False)

    async def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await asyncio.to_thread(faultcli.main, [*argv, "--rest", sim.rest_url], out, err)
        return code, out.getvalue(), err.getvalue()

    code, _, err = await cli("maintenance")
    assert code == 1 and "missing control token" in err and str(default_token_file(sim.rest_port)) in err
    wrong = tmp_path / "wrong.token"
    write_token_file(wrong, "nope")
    code, _, err = await cli("maintenance", "--token-file", str(wrong))
    assert code == 1 and "wrong control token" in err
    assert sim.faults.all() == []

    write_token_file(default_token_file(sim.rest_port), sim.control_token)  # where `cockpit sim` writes it
    code, out, _ = await cli("latency", "--ms", "5")
    assert code == 0 and out.startswith("fault 1 latency started")
    monkeypatch.setenv("COCKPIT_SIM_TOKEN", sim.control_token)
    default_token_file(sim.rest_port).unlink()
    code, out, _ = await cli("clear")
    assert (code, out) == (0, "fault 1 cleared\n")


def test_token_file_is_owner_only_whatever_the_umask(tmp_path, monkeypatch):
    from engine.sim.access import default_token_file, write_token_file

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = default_token_file(8080)
    old = os.umask(0)
    try:
        write_token_file(path, "t0ken")
    finally:
        os.umask(old)
    assert file_state(path) == ("t0ken\n", 0o600, 0o700)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


async def test_in_process_simulator_takes_a_given_token():
    async with Simulator(seed=2, control_token="fixed-token") as sim:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{sim.rest_url}/sim/faults", headers=bearer("fixed-token")) as r,
        ):
            assert r.status == 200


async def cockpit(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cockpit.cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_cockpit_sim_prints_the_token_writes_it_owner_only_and_cockpit_sim_fault_uses_it(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "COCKPIT_SIM_TOKEN"}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cockpit.cli",
        "sim",
        "--rest-port",
        "0",
        "--ws-port",
        "0",
        "--seed",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode().rstrip("\n") for _ in range(7)]
        rest = lines[0].split(" ", 1)[1]
        assert lines[4].startswith(f"Faults: cockpit sim fault NAME --rest {rest}")
        assert lines[5].startswith("Control token file ") and lines[6].startswith("Control token ")
        token_file, token = Path(lines[5].split(" ", 3)[3]), lines[6].split(" ", 2)[2]
        port = int(rest.rsplit(":", 1)[1])
        assert token_file == runtime / "cockpit-sim" / f"rest-{port}.token"
        assert len(token) >= 32 and file_state(token_file) == (f"{token}\n", 0o600, 0o700)

        code, out, err = await cockpit("sim", "fault", "latency", "--ms", "5", "--rest", rest, env=env)
        assert code == 0, err
        assert out.startswith("fault 1 latency started")
        code, out, _ = await cockpit("sim", "fault", "list", "--rest", rest, env=env)
        assert code == 0 and "fault 1 latency active" in out

        # Another place (another user's view): no token file there, so the simulator refuses and says where it is.
        other = {**env, "XDG_RUNTIME_DIR": str(tmp_path)}
        code, _, err = await cockpit("sim", "fault", "maintenance", "--rest", rest, env=other)
        assert code == 1 and "missing control token" in err and str(token_file) in err
        async with aiohttp.ClientSession() as s, s.get(f"{rest}/sim/faults") as r:
            assert r.status == 401 and str(token_file) in (await r.json())["error"]

        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        stderr = (await proc.stderr.read()).decode()
        assert token not in stderr and "Traceback" not in stderr
        assert file_state(token_file) is None  # removed at exit
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
