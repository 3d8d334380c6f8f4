"""The crash loop: ``kill -9`` of the real engine process (``cockpit run --headless``) at random points of a busy paper
session, against a simulator running in its own process (``cockpit sim``), many times. After each restart and
reconciliation it checks, against the venue's own record (``GET /sim/account``):

- no order placed twice (no client order id twice at the venue);
- none unknown (every venue order is in the store, in the venue's status and fill; every stored order the venue does
  not have was never sent: REJECTED or EXPIRED; every venue trade is a stored fill);
- balances equal to the venue's (free and locked, every asset);
- no position mismatch kept or halted on (nobody else trades the account: the engine's own fills explain it all);
- a halt kept (HALTED before the kill, HALTED after it, and nothing sent meanwhile), and a kill-switch command the kill
  interrupted carried out at the restart (HALTED);
- every held position with a stop protected at the venue by exactly one protection, its stop or an OCO of the stop
  with its take-profit, of the amount held, once the restart settled, and no position ever with two live
  protections at once (issue 22; half the loop's entries carry a take-profit).

Some kills land while a command from another shell (halt, cancel-all, close-all, an order; sent the way the CLI
sends it, through the store) is on its way. The
long run, from the repository root (README "Proof suites"):

    .venv/bin/python tests/crashloop.py --kills 200 --seed 1

prints one line per kill and a JSON summary, also written to build/proof/crashloop.json. A few kills of it run in
the default test run (tests/chaos/test_crash_loop.py).

``--perps`` runs it on the simulator's USDⓈ-M perpetuals (runbook 002, issue 24): longs and shorts opened, reduced,
flattened and left resting by commands from another shell, and after each restart, besides the orders and fills
above: each position's side and size as the engine last read them equal to the venue's, and no reduce-only order
that ever opened or flipped a position (the venue's fills walked in order).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# The [venue] of an engine on a simulator process ({rest} and {ws}: its addresses); a test's config adds the rest.
VENUE_TOML = """
[venue]
exchange = "binance"
rest_url = "{rest}"
ws_url = "{ws}"
timeout_ms = 3000
retry_backoff_s = [0.2, 0.5, 1.0]
"""

from engine.api.inbox import send_detailed  # noqa: E402
from engine.kernel.events import TradingState  # noqa: E402
from engine.store.db import Store  # noqa: E402

OPEN = {"NEW", "OPEN", "PARTIALLY_FILLED"}
NEVER_SENT = {"REJECTED", "EXPIRED"}
VENUE_STATUS = {
    "NEW": "OPEN",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELED",
    "EXPIRED": "EXPIRED",
    "REJECTED": "REJECTED",
    "EXPIRED_IN_MATCH": "EXPIRED",
}
# A busy paper session: every built-in strategy on, small orders, a fast step, so a kill finds orders in flight.
BUSY_CONFIG = """
[venue]
exchange = "binance"
rest_url = "{rest}"
ws_url = "{ws}"
timeout_ms = 3000
retry_backoff_s = [0.2, 0.5, 1.0]
poll_s = 0.5
[engine]
data_dir = "data"
equity_sample_s = 0.5
# The loop proves that a halt is latched through kills; the start after an unclean stop halting by itself (the
# default) is proven apart (tests/integration/test_service_unit.py) and would hide a latch that failed.
after_unclean_stop = "keep"
[risk]
max_position_pct = "20"
max_orders_per_minute = 600
{monitors}
[alerts]
daily_summary = false
[strategy]
interval_s = 0.1
max_consecutive_losses = 1000
cooldown_s = 0
[strategy.ladder]
spacing_pct = "0.005"
order_quote = "40"
[strategy.mean_reversion]
enabled = true
window = 5
entry_z = "0.8"
exit_z = "0.2"
order_quote = "40"
[strategy.ma_cross]
enabled = true
fast = 2
slow = 4
order_quote = "40"
"""
OPENING = {"USDT": Decimal("10000"), "BTC": Decimal(0), "ETH": Decimal(0)}  # the simulator's paper account
# The crash loop's monitors: quick readings and reconciliations; everything else as shipped.
CRASH_MONITORS = """[monitors]
interval_s = 0.2
reconcile_s = 0.5"""
# The perps session: no strategy (the built-ins trade spot); commands from another shell do the trading.
PERPS_CONFIG = """
[venue]
exchange = "binance"
market = "usdm"
symbols = ["BTC/USDT:USDT"]
rest_url = "{rest}"
ws_url = "{ws}"
timeout_ms = 3000
retry_backoff_s = [0.2, 0.5, 1.0]
poll_s = 0.5
[engine]
data_dir = "data"
equity_sample_s = 0.5
after_unclean_stop = "keep"
[risk]
max_position_pct = "50"
max_orders_per_minute = 600
require_stop_loss = false
stops_at_venue = false
{monitors}
[alerts]
daily_summary = false
[strategy]
enabled = false
"""
PERP = "BTC/USDT:USDT"
PERP_ORDERS = (
    ("order", {"symbol": PERP, "side": "sell", "amount": "0.002", "type": "market", "price": None, "stop_loss": None}),
    ("order", {"symbol": PERP, "side": "buy", "amount": "0.002", "type": "market", "price": None, "stop_loss": None}),
    ("order", {"symbol": PERP, "side": "buy", "amount": "0.003", "type": "market", "price": None, "stop_loss": None}),
    ("order", {"symbol": PERP, "side": "buy", "amount": "0.002", "type": "limit", "price": "50000", "stop_loss": None}),
)
PERP_COMMANDS = (*PERP_ORDERS, *PERP_ORDERS, ("halt", None), ("cancel-all", None), ("close-all", None))
COMMANDS = (
    ("halt", None),
    ("cancel-all", None),
    ("close-all", None),
    (
        "order",
        {"symbol": "BTC/USDT", "side": "buy", "amount": "0.0005", "type": "market", "price": None, "stop_loss": "1"},
    ),
    (  # an entry whose stop rests with its take-profit as one OCO (both far from the price: neither fills here)
        "order",
        {
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": "0.0005",
            "type": "market",
            "price": None,
            "stop_loss": "30000",
            "take_profit": "200000",
        },
    ),
)


def http(method: str, url: str, body: Any = None, token: str = "") -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class SimProcess:
    """``cockpit sim`` in its own process: its addresses and keys, its control API."""

    proc: subprocess.Popen
    rest: str = ""
    ws: str = ""
    key: str = ""
    secret: str = ""
    token: str = ""  # the control API's

    @classmethod
    def start(cls, seed: int, log: Path, speed: float = 1.0, market: str = "spot") -> SimProcess:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cockpit.cli",
                "sim",
                *(["--market", market] if market != "spot" else []),
                "--rest-port",
                "0",
                "--ws-port",
                "0",
                "--seed",
                str(seed),
                "--tick",
                "0.05",
                "--speed",
                str(speed),
            ],
            stdout=subprocess.PIPE,
            stderr=open(log, "ab"),
            text=True,
            cwd=ROOT,
        )
        sim = cls(proc)
        for line in proc.stdout:  # the addresses, the key pair and the control token, one per line, once it serves
            head, _, value = line.strip().rpartition(" ")
            if head == "REST":
                sim.rest = value
            elif head == "WS":
                sim.ws = value
            elif head == "API key":
                sim.key = value
            elif head == "API secret":
                sim.secret = value
            elif head == "Control token":
                sim.token = value
                return sim
        raise RuntimeError(f"the simulator did not start (see {log})")

    def engine_env(self) -> dict[str, str]:
        """The environment of a `cockpit` process trading on this simulator: this checkout's code, the simulator's
        key pair, and none of the caller's COCKPIT_ settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
        env.update(COCKPIT_VENUE__API_KEY=self.key, COCKPIT_VENUE__API_SECRET=self.secret, PYTHONPATH=str(ROOT))
        return env

    def account(self) -> dict[str, Any]:
        return http("GET", f"{self.rest}/sim/account", token=self.token)

    def fault(self, name: str, duration: float | None = None, **options: Any) -> int:
        body = {"name": name, "options": options, "duration": duration}
        return http("POST", f"{self.rest}/sim/faults", body, self.token)["fault"]["id"]

    def clear(self, fault_id: int | None = None) -> None:
        http("DELETE", f"{self.rest}/sim/faults" + ("" if fault_id is None else f"/{fault_id}"), token=self.token)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until ``predicate`` is truthy (its value) or raise naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:g}s: {what}")
        time.sleep(interval)  # the poll interval of this wait for a condition


@dataclass
class Session:
    """A busy paper session: the simulator process, a data directory, and the engine process that gets killed."""

    sim: SimProcess
    work: Path
    env: dict[str, str]
    perps: bool = False  # on the simulator's USDⓈ-M perpetuals
    engine: subprocess.Popen | None = None
    log_offset: int = 0

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def log(self) -> Path:
        return self.work / "engine.log"

    def start_engine(self) -> None:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.engine = subprocess.Popen(
            [sys.executable, "-m", "cockpit.cli", "run", "--headless"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
            cwd=self.work,
            env=self.env,
        )
        wait_for(self._connected, 60, "the engine connects (venue connected in its log)")

    def _connected(self) -> bool:
        if self.engine is not None and self.engine.poll() is not None:
            raise RuntimeError(f"the engine exited with {self.engine.returncode}: see {self.log}")
        with open(self.log, "rb") as fh:
            fh.seek(self.log_offset)
            return b"venue connected" in fh.read()

    def kill(self) -> None:
        assert self.engine is not None
        os.kill(self.engine.pid, signal.SIGKILL)
        self.engine.wait(timeout=30)

    def command(self, name: str, args: dict[str, Any] | None = None, reason: str = "crash loop") -> tuple[bool, str]:
        """A command from another shell, as `cockpit NAME` sends it (through the store), and the engine's answer."""
        ok, message, _ = send_detailed(self.data, name, reason, timeout=30, args=args)
        return ok, message

    def command_in_background(self, name: str, args: dict[str, Any] | None = None) -> threading.Thread:
        """The same, without waiting for the answer (the engine may be killed before it gives one)."""
        thread = threading.Thread(target=self.command, args=(name, args), daemon=True)
        thread.start()
        return thread

    def store(self) -> Store:
        return Store.in_dir(self.data, readonly=True)

    def _query(self, sql: str) -> list[dict[str, Any]]:
        store = self.store()
        try:
            return list(store.db.query(sql))
        finally:
            store.close()

    def trading_state(self) -> TradingState:
        return self.state_info()[0]

    def state_info(self) -> tuple[TradingState, dict[str, Any]]:
        """The stored trading state and who set it, when, why."""
        store = self.store()
        try:
            return store.trading_state()
        finally:
            store.close()

    def last_command_id(self) -> int:
        """The id of the newest command from another shell (0 before any)."""
        rows = self._query("select max(id) as m from commands")
        return int(rows[0]["m"] or 0)

    def command_status(self, command_id: int) -> str:
        return self._query(f"select status from commands where id = {int(command_id)}")[0]["status"]

    def alert_codes(self, limit: int = 50) -> set[str]:
        """The codes of the newest alerts in the store."""
        store = self.store()
        try:
            return {a["code"] for a in store.alerts(limit=limit)}
        finally:
            store.close()


@contextmanager
def own_sim_session(seed: int, work: Path, config: str, **sim: Any) -> Iterator[Session]:
    """A simulator in its own process (``SimProcess.start``'s options), ``config`` (with {rest} and {ws}) written
    to ``work/config.toml``, and a session on both; at the end its engine is killed if it still runs, and the
    simulator stopped."""
    proc = SimProcess.start(seed, work / "sim.log", **sim)
    session = None
    try:
        (work / "config.toml").write_text(config.format(rest=proc.rest, ws=proc.ws))
        session = Session(proc, work, proc.engine_env())
        yield session
    finally:
        if session is not None and session.engine is not None and session.engine.poll() is None:
            session.kill()
        proc.stop()


def differences(sim_account: dict[str, Any], store: Store) -> list[str]:
    """What makes the store disagree with the venue: orders twice, unknown, in another status; missing fills;
    balances. Empty when they agree."""
    problems: list[str] = []
    venue_orders = sim_account["orders"]
    twice = [cid for cid, n in Counter(o["clientOrderId"] for o in venue_orders).items() if n > 1]
    problems += [
        f"order {cid} placed {n} times at the venue"
        for cid, n in Counter(o["clientOrderId"] for o in venue_orders).items()
        if n > 1
    ]
    stored = {o.client_id: o for o in store.orders()}
    at_venue = {o["clientOrderId"]: o for o in venue_orders if o["clientOrderId"] not in twice}
    for cid, v in at_venue.items():
        mine = stored.get(cid)
        if mine is None:
            problems.append(f"venue order {cid} ({v['side']} {v['symbol']} {v['status']}) unknown to the engine")
            continue
        want = VENUE_STATUS[v["status"]]
        have = mine.status.value
        if (want == "OPEN" and have not in OPEN) or (want != "OPEN" and have != want):
            problems.append(f"order {cid}: venue {v['status']}, engine {have}")
        if Decimal(v["executedQty"]) != mine.filled:
            problems.append(f"order {cid}: venue filled {v['executedQty']}, engine {mine.filled}")
    for cid, mine in stored.items():
        if cid not in at_venue and mine.status.value not in NEVER_SENT:
            problems.append(f"engine order {cid} {mine.status.value} is not at the venue")
    fills = store.fills()
    if len(fills) != sim_account["trades"]:
        problems.append(f"{sim_account['trades']} trades at the venue, {len(fills)} fills stored")
    balances = {b.asset: b for b in store.balances()}
    for asset, v in sim_account["balances"].items():
        mine = balances.get(asset)
        free, locked = Decimal(v["free"]), Decimal(v["locked"])
        if mine is None:
            if free or locked:
                problems.append(f"{asset}: venue {free} free {locked} locked, engine has no balance")
        elif (mine.free, mine.locked) != (free, locked):
            problems.append(f"{asset}: venue {free} free {locked} locked, engine {mine.free} free {mine.locked} locked")
    return problems


# The simulator's filters, for the protective-stop checks: lot step per base asset and the minimum notional.
STEP = {"BTC": Decimal("0.00001"), "ETH": Decimal("0.0001")}
MIN_NOTIONAL = Decimal(5)
STOP_OFFSET = Decimal("0.005")  # [risk] stop_limit_offset_pct as shipped (0.5 %)


def _protective(order: dict[str, Any]) -> bool:
    """A position's protective stop: alone, or the stop leg of an OCO."""
    return order["type"] == "STOP_LOSS_LIMIT" and order["clientOrderId"].startswith("cs-")


def _take_profit_leg(order: dict[str, Any]) -> bool:
    """The take-profit leg of a position's protective OCO."""
    return order["type"] == "LIMIT_MAKER" and order["clientOrderId"].startswith("ct-")


def _protection(order: dict[str, Any]) -> bool:
    return _protective(order) or _take_profit_leg(order)


def sent_while_halted(sim_account: dict[str, Any]) -> int:
    """The venue's orders that HALTED forbids: all but the protective stops (and their OCO's take-profit), which
    only ever sell what is held and are placed (again) while HALTED by design (decision SAF-34)."""
    return sum(1 for o in sim_account["orders"] if not _protection(o))


def unprotected(sim_account: dict[str, Any], store: Store) -> list[str]:
    """Held positions with a stop that the venue does not protect with exactly one protection, a stop or an OCO of
    it with the position's take-profit, of the amount held (less what the engine's other sells lock, when the
    venue's filters allow a stop of it at all). Nothing while an operator's cancel-all or close-all suspended them."""
    problems = []
    orders = sim_account["orders"]
    if store.load_json("stops_suspended"):
        return []
    take_profits = store.load_json("take_profits") or {}
    for symbol, stop in (store.load_json("stops") or {}).items():
        base = symbol.split("/")[0]
        market = symbol.replace("/", "")
        v = sim_account["balances"].get(base, {"free": "0", "locked": "0"})
        held = Decimal(v["free"]) + Decimal(v["locked"])
        open_ = [o for o in orders if o["symbol"] == market and o["status"] in ("NEW", "PARTIALLY_FILLED")]
        other_sells = sum(
            (
                Decimal(o["origQty"]) - Decimal(o["executedQty"])
                for o in open_
                if o["side"] == "SELL" and not _protection(o)
            ),
            Decimal(0),
        )
        spare = ((held - other_sells) // STEP[base]) * STEP[base]
        limit = Decimal(stop) * (1 - STOP_OFFSET)
        stops = [o for o in open_ if _protective(o)]
        if spare <= 0 or spare * limit < MIN_NOTIONAL:
            continue  # nothing a stop could be placed for (dust, or all of it in other sells)
        if len(stops) != 1:
            problems.append(
                f"{symbol}: {held} held with a stop at {stop}, {len(stops)} protective stop(s) at the venue"
            )
        elif Decimal(stops[0]["origQty"]) - Decimal(stops[0]["executedQty"]) != spare:
            problems.append(f"{symbol}: the stop at the venue is for {stops[0]['origQty']}, {spare} is held")
        profits = [o for o in open_ if _take_profit_leg(o)]
        if profits and (
            len(profits) > 1
            or symbol not in take_profits
            or stops[:1] == []
            or profits[0]["orderListId"] != stops[0]["orderListId"]
            or Decimal(profits[0]["origQty"]) - Decimal(profits[0]["executedQty"]) != spare
        ):
            problems.append(
                f"{symbol}: {len(profits)} take-profit(s) at the venue not one OCO with the stop of {spare}"
            )
    return problems


def stops_twice(sim_account: dict[str, Any]) -> list[str]:
    """Positions that had two protections live at once at the venue: each protection a lone stop or an OCO's two
    legs, its life from its placing to the end of its last leg."""
    problems = []
    for market in {o["symbol"] for o in sim_account["orders"]}:
        protections: dict[object, list[dict[str, Any]]] = {}
        for o in sim_account["orders"]:
            if o["symbol"] == market and _protection(o):
                key = o["orderListId"] if o["orderListId"] >= 0 else o["clientOrderId"]
                protections.setdefault(key, []).append(o)
        lives = sorted(
            (
                min(o["time"] for o in legs),
                None
                if any(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in legs)
                else max(o["updateTime"] for o in legs),
                legs[0]["clientOrderId"][3:],
            )
            for legs in protections.values()
        )
        for (_, ended, first), (started, _, second) in zip(lives, lives[1:]):
            if ended is None or started < ended:
                problems.append(f"{market}: stops {first} and {second} were live at once")
    return problems


def positions_differ(futures: dict[str, Any], store: Store) -> list[str]:
    """Perps: each position's side and size as the engine last read and stored them against the venue's."""
    venue = {p["symbol"]: Decimal(p["positionAmt"]) for p in futures["positions"]}
    mine = {
        p["symbol"].replace("/", "").split(":")[0]: Decimal(p["amount"])
        for p in store.load_json("perp_positions") or []
    }
    if venue == {k: v for k, v in mine.items() if v}:
        return []
    return [f"positions: the venue holds {venue}, the engine shows {mine}"]


def reduce_only_flips(futures: dict[str, Any], store: Store) -> list[str]:
    """Perps: the venue's fills walked in order, each symbol's position from flat: a fill of a reduce-only order
    that made the position larger, or took it through zero to the other side, is a problem."""
    reduce_only = {o["clientOrderId"] for o in futures["orders"] if o.get("reduceOnly")}
    held: dict[str, Decimal] = {}
    out = []
    for f in sorted(store.fills(), key=lambda f: (f["ts"], int(f["trade_id"]) if str(f["trade_id"]).isdigit() else 0)):
        before = held.get(f["symbol"], Decimal(0))
        after = before + (1 if f["side"] == "buy" else -1) * Decimal(f["amount"])
        held[f["symbol"]] = after
        if f["client_id"] in reduce_only and (abs(after) > abs(before) or after * before < 0):
            out.append(f"reduce-only order {f['client_id']} took {f['symbol']} from {before} to {after}")
    return out


def holdings_kept_apart(store: Store) -> list[str]:
    """What the engine holds kept apart from what the venue holds (a position mismatch, kept or halted on): nobody
    trades this account but the engine, so its own fills must account for every coin."""
    problems = [
        f"{d['asset']}: the engine holds {d['engine']}, the venue {d['venue']} (position mismatch kept)"
        for d in (store.load_json("holdings") or {}).get("mismatch", [])
    ]
    state, info = store.trading_state()
    if state == TradingState.HALTED and info.get("code") == "position_mismatch":
        problems.append(f"HALTED by position_mismatch: {info.get('reason')}")
    return problems


def unexplained_balances(
    sim_account: dict[str, Any], store: Store, opening: dict[str, Decimal] | None = None
) -> list[str]:
    """Assets whose venue balance is not the opening balance plus the stored fills' cash flows and fees, to the last
    unit: a fill lost, invented or counted twice shows here."""
    flows = dict(opening or OPENING)
    for f in store.fills():
        base, quote = f["symbol"].split("/")
        price, amount, fee = Decimal(f["price"]), Decimal(f["amount"]), Decimal(f["fee"])
        sign = 1 if f["side"] == "buy" else -1
        flows[base] = flows.get(base, Decimal(0)) + sign * amount
        flows[quote] = flows.get(quote, Decimal(0)) - sign * price * amount
        flows[f["fee_asset"]] = flows.get(f["fee_asset"], Decimal(0)) - fee
    out = []
    for asset, expected in flows.items():
        v = sim_account["balances"].get(asset, {"free": "0", "locked": "0"})
        held = Decimal(v["free"]) + Decimal(v["locked"])
        if held != expected:
            out.append(f"{asset}: the venue holds {held}, the opening balance and the stored fills say {expected}")
    return out


@dataclass
class Report:
    """What the loop did and found."""

    kills: int = 0
    kills_during_a_command: int = 0  # the command's stored status at the kill was "running": it landed mid-command
    # A command drawn: its stored status right after the kill (what the restart finds): "running" (mid-command),
    # "pending" (recorded, not yet picked up), "done" or "failed" (finished before the kill).
    command_state_at_kill: dict[str, int] = field(default_factory=dict)
    halts_kept: int = 0
    commands_carried_out_after_restart: int = 0
    checks: int = 0
    venue_orders: int = 0
    venue_trades: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_loop(kills: int, seed: int, work: Path, say: Callable[[str], None] = print, perps: bool = False) -> Report:
    """Kill the engine ``kills`` times at random points; check the invariants after each restart. ``perps``: on the
    simulator's USDⓈ-M perpetuals, the trading done by commands from another shell."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    sim = SimProcess.start(seed, work / "sim.log", market="usdm" if perps else "spot")
    shells: list[threading.Thread] = []
    commands, command_rate = (PERP_COMMANDS, 0.8) if perps else (COMMANDS, 0.3)
    try:
        config = PERPS_CONFIG if perps else BUSY_CONFIG
        (work / "config.toml").write_text(config.format(rest=sim.rest, ws=sim.ws, monitors=CRASH_MONITORS))
        env = sim.engine_env()
        session = Session(sim, work, env, perps)
        expect_halted, orders_at_kill, interrupted = False, None, None
        for n in range(kills + 1):
            session.start_engine()
            if n > 0:
                report.problems += after_restart(session, report, n, expect_halted, orders_at_kill, interrupted)
            else:
                report.problems += check(session, report, n)
            if n == kills:
                session.kill()
                break
            keep_halted = rng.random() < 0.3
            halted = session.trading_state() == TradingState.HALTED
            if keep_halted != halted:
                ok, message = session.command("halt" if keep_halted else "resume")
                if not ok:
                    report.problems.append(f"kill {n + 1}: {'halt' if keep_halted else 'resume'} refused: {message}")
            time.sleep(rng.uniform(0.2, 2.5))  # a random point of the busy session
            if perps:  # the session's own trading: an order or two from another shell, answered before the kill
                for _ in range(rng.randint(1, 2)):
                    session.command(*rng.choice(PERP_ORDERS))
            command = rng.choice(commands) if rng.random() < command_rate else None
            interrupted = orders_at_kill = at_kill = None
            if command is not None:
                before = session.last_command_id()
                shells.append(session.command_in_background(*command))
                interrupted = wait_for(
                    lambda before=before: session.last_command_id() > before and session.last_command_id(),
                    30,
                    "the command reaches the store",
                )
                time.sleep(rng.uniform(0.0, 0.3))  # picked up or not, running or done
            elif keep_halted:
                orders_at_kill = sent_while_halted(sim.account())
            session.kill()
            report.kills += 1
            if interrupted is not None:
                # What the store holds at the kill says where it landed, not the draw.
                at_kill = session.command_status(interrupted)
                report.command_state_at_kill[at_kill] = report.command_state_at_kill.get(at_kill, 0) + 1
                report.kills_during_a_command += at_kill == "running"
                if at_kill not in ("running", "pending"):
                    interrupted = None  # finished before the kill: nothing to carry out at the restart
            # A halt holds after the restart; so does a halt or kill-switch command the kill interrupted.
            expect_halted = keep_halted or (command is not None and command[0] != "order")
            landed = f", {command[0]} {at_kill} at the kill" if command else ""
            say(
                f"kill {n + 1}/{kills}: {'halted' if keep_halted else 'trading'}{landed}; "
                f"problems so far: {len(report.problems)}"
            )
        account = sim.account()
        book = account["futures"] if perps else account
        report.venue_orders, report.venue_trades = len(book["orders"]), book["trades"]
    finally:
        for shell in shells:
            shell.join(timeout=60)
        sim.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def after_restart(
    session: Session, report: Report, n: int, expect_halted: bool, orders_at_kill: int | None, interrupted: int | None
) -> list[str]:
    """A halt kept, nothing sent while halted, an interrupted command carried out, and store and venue agreeing."""
    problems: list[str] = []
    state = session.trading_state()
    if expect_halted and state != TradingState.HALTED:
        problems.append(f"kill {n}: HALTED before the kill, {state.value} after the restart")
    elif expect_halted:
        report.halts_kept += 1
    problems += check(session, report, n)
    if orders_at_kill is not None and sent_while_halted(session.sim.account()) != orders_at_kill:
        problems.append(f"kill {n}: orders were sent while HALTED after the restart")
    if interrupted is not None:
        if session.command_status(interrupted) in ("pending", "running"):
            problems.append(f"kill {n}: command {interrupted} was not carried out at the restart")
        else:
            report.commands_carried_out_after_restart += 1
    return problems


def check(session: Session, report: Report, n: int, settle_s: float = 30.0) -> list[str]:
    """After a restart: hold every price still (no fill, no strategy signal: the session goes quiet), then wait
    until store and venue agree (the periodic reconciliation brings them together); what still differs after
    ``settle_s`` is a problem."""
    sim = session.sim
    freeze = sim.fault("price-freeze")
    try:
        last: list[str] = []

        def agree() -> bool:
            nonlocal last
            store = session.store()
            try:
                account = sim.account()
                last = (
                    differences(account, store)
                    + unexplained_balances(account, store)
                    + holdings_kept_apart(store)
                    + unprotected(account, store)
                    + stops_twice(account)
                )
                running = list(store.db.query("select id, command from commands where status = 'running'"))
            finally:
                store.close()
            return not last and not running

        def agree_perps() -> bool:
            nonlocal last
            store = session.store()
            try:
                futures = sim.account()["futures"]
                last = (
                    differences({**futures, "balances": {}}, store)
                    + holdings_kept_apart(store)
                    + positions_differ(futures, store)
                    + reduce_only_flips(futures, store)
                )
                running = list(store.db.query("select id, command from commands where status = 'running'"))
            finally:
                store.close()
            return not last and not running

        try:
            wait_for(agree_perps if session.perps else agree, settle_s, "store and venue agree", interval=0.3)
        except TimeoutError:
            return [f"restart {n}: {p}" for p in last] or [f"restart {n}: a command stays running"]
        report.checks += 1
        return []
    finally:
        sim.clear(freeze)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--perps", action="store_true", help="on the simulator's USDⓈ-M perpetuals (runbook 002)")
    parser.add_argument(
        "--work", type=Path, default=None, help="an empty or new directory for the data and logs (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        # A store from another run (another simulator) would be reconciled against this one: every check a lie.
        parser.error(f"--work {args.work} is not empty; give a new directory (or leave --work out for a temp dir)")
    work = args.work or Path(tempfile.mkdtemp(prefix="cockpit-crashloop-"))
    report = run_loop(args.kills, args.seed, work, perps=args.perps)
    out = ROOT / "build" / "proof"
    out.mkdir(parents=True, exist_ok=True)
    summary = {**report.__dict__, "seed": args.seed, "perps": args.perps, "work": str(work)}
    (out / "crashloop.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
