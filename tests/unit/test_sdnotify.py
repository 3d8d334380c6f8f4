"""systemd's notify protocol (engine/ops/sdnotify.py) against a fake manager: a datagram socket bound here, as
``$NOTIFY_SOCKET`` names it (abstract ``@name`` or a path). The real program under it is in
tests/integration/test_service_unit.py."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
import uuid

import pytest
from eventually import eventually

from engine.ops.sdnotify import ServiceNotifier, socket_address, status_line, watchdog_usec

# The kernel's receive time of each datagram (struct timespec, CLOCK_REALTIME); the number is Linux's generic one.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class FakeManager:
    """What systemd's side of the socket receives: each datagram with the monotonic time it arrived, as the kernel
    stamped it. Not when the reader thread got to it: on a loaded machine that thread can wait for the CPU or the
    GIL longer than a ping's margin, and a ping read late made one gap short and the next long (issue 27's flake)."""

    def __init__(self, path: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            name = f"cockpit-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.sock.bind(path)
            self.env_value = path
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, str]] = []
        self._closing = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            arrived = time.monotonic()
            for level, kind, stamp in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS) and len(stamp) == 16:
                    seconds, nanoseconds = struct.unpack("qq", stamp)
                    arrived -= time.time() - (seconds + nanoseconds / 1e9)  # how long it waited to be read
            self.received.append((arrived, data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in self.received]

    def times_of(self, message: str) -> list[float]:
        return [t for t, m in self.received if m == message]

    def pings(self) -> list[float]:
        """Every datagram that feeds the watchdog, alone or with a new status."""
        return [t for t, m in self.received if "WATCHDOG=1" in m.split("\n")]

    def close(self) -> None:
        self._closing = True
        self._reader.join(timeout=2)
        self.sock.close()


@pytest.fixture
def manager():
    fake = FakeManager()
    yield fake
    fake.close()


def notifier(manager: FakeManager, watchdog_usec: int | None = None) -> ServiceNotifier:
    env = {"NOTIFY_SOCKET": manager.env_value}
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return ServiceNotifier(env)


def test_the_socket_address_is_a_path_or_the_abstract_namespace():
    assert socket_address("@cockpit/notify") == "\0cockpit/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address(None) is None and socket_address("") is None
    assert socket_address("vsock:2:1234") is None  # not spoken here: nothing is sent


def test_the_watchdog_is_this_process_s_only_when_systemd_says_so():
    pid = os.getpid()
    assert watchdog_usec({"WATCHDOG_USEC": "1000000"}, pid) == 1_000_000
    assert watchdog_usec({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(pid)}, pid) == 1_000_000
    assert watchdog_usec({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(pid + 1)}, pid) is None
    assert watchdog_usec({}, pid) is None and watchdog_usec({"WATCHDOG_USEC": "0"}, pid) is None
    assert watchdog_usec({"WATCHDOG_USEC": "soon"}, pid) is None
    service = ServiceNotifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"}, pid=pid)
    assert service.interval == 0.5  # half the timeout (sd_watchdog_enabled(3))


def test_without_notify_socket_nothing_is_sent():
    service = ServiceNotifier({"WATCHDOG_USEC": "1000000"})
    assert not service.enabled and service.interval is None
    assert not service.ready("up") and not service.watchdog() and not service.stopping("bye")


async def test_each_notification_is_one_datagram_of_lines(manager):
    service = notifier(manager)
    assert service.ready("paper on sim:\ntrading ACTIVE")
    assert service.watchdog()
    assert service.stopping("stopping: signal received")
    assert service.extend_start() is False  # no watchdog asked for: nothing to extend by
    wanted = [
        "READY=1\nSTATUS=paper on sim: trading ACTIVE",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping: signal received",
    ]
    await eventually(lambda: manager.messages() == wanted, timeout=5, message=str(manager.messages()))


async def test_a_socket_path_works_like_the_abstract_namespace(tmp_path):
    fake = FakeManager(str(tmp_path / "notify"))
    try:
        assert notifier(fake).ready("up")
        await eventually(lambda: fake.messages() == ["READY=1\nSTATUS=up"], timeout=5, message=str(fake.messages()))
    finally:
        fake.close()


def test_a_manager_that_is_gone_is_logged_not_raised(tmp_path, caplog):
    service = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not service.watchdog() and not service.watchdog()
    said = [r.getMessage() for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(said) == 1, said  # said once, not at every ping


def test_the_status_line_says_where_and_who_halted_why():
    assert status_line("paper", "sim", "ACTIVE", {}, ready=False) == (
        "starting: paper on sim, connecting to the venue; trading ACTIVE"
    )
    info = {"actor": "engine:start", "reason": "restarted after an unclean stop"}
    assert status_line("paper", "binance testnet", "HALTED", info, ready=True) == (
        "paper on binance testnet: trading HALTED (by engine:start: restarted after an unclean stop)"
    )


@pytest.mark.usefixtures("collector_off")
async def test_ready_comes_when_the_engine_is_and_pings_follow_at_half_the_timeout(manager):
    # Pings every 0.3 s: a gap is judged against the 0.6 s timeout with 0.3 s to spare (at 0.1 s of a 0.2 s timeout,
    # a loaded 2-core machine's scheduling ate it: issue 27). Each ping's time is the kernel's, and the collector is
    # off while it runs: a long-lived test worker's full collection held the loop (and the GIL) for a good part of a
    # second under load, which is that process's pause, not the notifier's schedule.
    service = notifier(manager, watchdog_usec=600_000)
    ready = asyncio.Event()
    state = {"line": "starting"}
    task = asyncio.create_task(service.serve(ready, lambda: state["line"]))
    try:
        # Still starting: the status, and the start timeout extended by one watchdog period every half period.
        await eventually(lambda: len(manager.times_of("EXTEND_TIMEOUT_USEC=600000")) >= 2, timeout=5)
        assert manager.messages()[0] == "STATUS=starting" and "READY=1" not in "".join(manager.messages())
        state["line"] = "trading ACTIVE"
        ready.set()
        await eventually(lambda: "READY=1\nSTATUS=trading ACTIVE" in manager.messages(), timeout=5)
        await eventually(lambda: len(manager.times_of("WATCHDOG=1")) >= 4, timeout=5)
        state["line"] = "trading HALTED"  # a new status rides on the next ping
        await eventually(lambda: "WATCHDOG=1\nSTATUS=trading HALTED" in manager.messages(), timeout=5)
    finally:
        task.cancel()
    pings = manager.pings()  # the one with the new status is a ping too: the gaps around it count
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(gaps) >= 4 and all(0.29 < g < 0.6 for g in gaps), gaps  # half the timeout, always inside it


async def test_a_frozen_loop_stops_feeding_the_watchdog(manager):
    service = notifier(manager, watchdog_usec=200_000)
    ready = asyncio.Event()
    ready.set()
    task = asyncio.create_task(service.serve(ready, lambda: "up"))
    try:
        await eventually(lambda: len(manager.times_of("WATCHDOG=1")) >= 3, timeout=5)
        # The loop itself frozen (a blocking call on it) for three timeouts: this blocking wait is the fault under
        # test, not a wait for a result.
        frozen_at = time.monotonic()
        threading.Event().wait(0.6)
        thawed_at = time.monotonic()
        await eventually(lambda: any(t > thawed_at for t in manager.times_of("WATCHDOG=1")), timeout=5)
    finally:
        task.cancel()
    pings = manager.times_of("WATCHDOG=1")
    during = [t for t in pings if frozen_at + 0.05 < t < thawed_at]
    assert during == [], "a frozen loop must not ping"
    gap = min(t for t in pings if t > thawed_at) - max(t for t in pings if t <= frozen_at + 0.05)
    assert gap >= 0.6  # three times the timeout: systemd would have killed it
