"""What a chat user can ask, whatever the chat: the commands, the answers, close-all's confirmation and the rate
limit. A transport (``engine.chat.telegram``, ``engine.chat.slack``) turns a message or a button into ``command``
or ``press`` after its allow-lists said yes, and sends back the ``Reply``; everything goes through the engine's one
API (``Backend``: its queries and its ``execute``), under the sender's own actor.

Every piece of text in a reply that came from outside (a reason, a venue's error, an alert's words) is made inert
(``engine.kernel.text``); each transport also sends it as plain text, never as markup.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.api.server import Backend
from engine.kernel.commands import CommandResult
from engine.kernel.events import Alert
from engine.kernel.text import inert

log = logging.getLogger(__name__)

CONFIRM_S = 60.0  # a close-all waits this long for its Confirm, from the same user (the 60 s)
BURST = 5  # commands a user may send at once before the rate limit counts
NEVER_LIMITED = frozenset({"halt"})  # tier 1 costs nothing at the venue: a flood of them is harmless, a refusal not
LISTED_MAX = 8  # positions or orders listed in one reply; the rest are counted


@dataclass(frozen=True)
class Button:
    """A button under a reply; ``data`` comes back in ``Desk.press`` when it is pressed."""

    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    """What the bot answers: plain text (already inert) and the buttons that fit."""

    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Sender:
    """Who sent a command, as the chat service says (``user_id`` and ``chat_id`` are checked against the
    allow-lists before anything reaches the desk)."""

    transport: str  # "telegram" | "slack"
    user_id: str
    name: str
    chat_id: str

    @property
    def actor(self) -> str:
        """``telegram:123 alice``: the audit trail's name for this user; the name is one inert word."""
        name = "_".join(inert(self.name, limit=40).split()) or "-"
        return f"{self.transport}:{self.user_id} {name}"


@dataclass
class _Bucket:
    tokens: float
    at: float
    told: bool = False  # the user was told of the limit in this episode: further commands get no reply


@dataclass
class _Pending:
    code: str
    until: float


HELP = (
    "/status: trading state and who set it, monitors not OK, positions, open orders, today's PnL, equity",
    "/halt: kill switch 1, no new orders",
    "/stop: kill switch 2, halt and cancel every open order",
    "/closeall: kill switch 3, halt, cancel, sell every position at market (asks for Confirm within 60 s)",
    "/resume: back to ACTIVE (refused while the monitor that halted still reads CRIT)",
    "/snapshot (or /snapshot now): write a snapshot archive of the whole state",
    "/mode halt | dry-run | <the mode the engine started in>",
    "/ack ID | all: acknowledge alerts",
    "/alerts: the unacknowledged alerts",
)
# Buttons that fit an alert, by its code's kind: where the person can act (issue 21 "CRITs land where the person
# can act"). Every CRIT gets Halt; a market or venue problem also offers Cancel all and Close all.
VENUE_CODES = ("WS_", "REST_", "VENUE", "FLASH", "PRICE", "STUCK", "DRAWDOWN", "DAILY_LOSS", "POSITION", "KILL")


def alert_buttons(alert: Alert) -> tuple[Button, ...]:
    """The kill switch's buttons that fit ``alert`` (a CRIT: Halt; a venue or market one: Cancel all, Close all)."""
    if alert.severity.value != "CRIT":
        return (Button("Ack", f"ack:{alert.id}"),)
    buttons = [Button("Halt", "cmd:halt")]
    if alert.code.startswith(VENUE_CODES):
        buttons += [Button("Cancel all", "cmd:stop"), Button("Close all", "cmd:closeall")]
    return (*buttons, Button("Ack", f"ack:{alert.id}"))


def alert_text(alert: Alert) -> str:
    """An alert as a chat message: severity, code, id and its words, inert."""
    count = f" (x{alert.count})" if alert.count > 1 else ""
    return f"{alert.severity.value} {alert.code} #{alert.id}{count}: {inert(alert.message, limit=1500)}"


def _num(value: Any, places: int = 2) -> str:
    try:
        return f"{Decimal(str(value)):,.{places}f}"
    except (InvalidOperation, ValueError):
        return inert(value, limit=40)


def _plain(value: Any) -> str:
    """A decimal without trailing zeros (an amount, a price)."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return inert(value, limit=40)
    return f"{d.normalize():f}"


class Desk:
    """The commands of one transport, for every allowed user of it."""

    def __init__(
        self,
        backend: Backend,
        transport: str,
        rate_per_min: int,
        clock: Callable[[], float] = time.monotonic,
        on_command: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.transport = transport
        self.rate_per_s = rate_per_min / 60.0
        self.clock = clock
        self.on_command = on_command or (lambda: None)
        self._buckets: dict[str, _Bucket] = {}
        self._pending: dict[str, _Pending] = {}  # user id -> the close-all waiting for its Confirm
        self._handlers: dict[str, Callable[[Sender, list[str]], Awaitable[Reply]]] = {
            "status": self._status,
            "halt": self._halt,
            "stop": self._stop,
            "closeall": self._closeall,
            "resume": self._resume,
            "snapshot": self._snapshot,
            "mode": self._mode,
            "ack": self._ack,
            "alerts": self._alerts,
            "help": self._help,
        }
        self._aliases = {"close-all": "closeall", "close_all": "closeall", "start": "help", "cancel-all": "stop"}

    # ------------------------------------------------------------ entry points

    async def command(self, sender: Sender, text: str) -> Reply | None:
        """Answer one message (``/stop``, ``stop``, ``/stop@bot``); None: no reply (a flood past its notice)."""
        words = text.strip().split()
        if not words:
            return None
        head = words[0].lstrip("/!").split("@", 1)[0].lower()
        name = self._aliases.get(head, head)
        limited = self._limited(sender, name)  # before anything is answered: a flood of nonsense is a flood too
        if limited is not None:
            return limited if limited.text else None
        handler = self._handlers.get(name)
        if handler is None:
            return Reply(f"unknown command {inert(words[0], limit=40)!r}; /help lists them")
        self.on_command()
        return await handler(sender, words[1:])

    async def press(self, sender: Sender, data: str) -> Reply | None:
        """Answer a button: ``closeall:CODE`` (a Confirm), ``cmd:NAME`` (an alert's button), ``ack:ID``."""
        kind, _, value = data.partition(":")
        if kind == "closeall":
            return await self.command(sender, f"/closeall {value}")
        if kind == "cmd" and value in ("halt", "stop", "closeall"):
            return await self.command(sender, f"/{value}")
        if kind == "ack" and value.isdigit():
            return await self.command(sender, f"/ack {value}")
        return Reply("that button is not one of this bot's")

    # ------------------------------------------------------------ the rate limit

    def _limited(self, sender: Sender, name: str) -> Reply | None:
        """None: go on. A Reply: the limit's notice (the first in an episode); an empty Reply text: silence."""
        if name in NEVER_LIMITED:
            return None
        now = self.clock()
        bucket = self._buckets.get(sender.user_id)
        if bucket is None:
            bucket = self._buckets[sender.user_id] = _Bucket(float(BURST), now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.told = False
            return None
        if bucket.told:
            return Reply("")
        bucket.told = True
        wait = (1 - bucket.tokens) / self.rate_per_s
        log.warning("%s: commands from %s rate limited", self.transport, sender.actor)
        return Reply(
            f"too many commands: wait {wait:.0f} s (at most {self.rate_per_s * 60:.0f} a minute); "
            "/halt is never limited"
        )

    # ------------------------------------------------------------ commands

    async def _run(self, sender: Sender, name: str, args: dict[str, Any] | None = None) -> CommandResult:
        try:
            return await self.backend.execute(name, args or {}, sender.actor, f"/{name} from {self.transport}")
        except ValueError as exc:  # the API's QueryError: arguments that do not fit the command
            return CommandResult(False, str(exc))

    @staticmethod
    def _answer(result: CommandResult, prefix: str = "") -> Reply:
        word = "done" if result.ok else "refused"
        return Reply(f"{prefix}{word}: {inert(result.message, limit=1500)}")

    async def _halt(self, sender: Sender, args: list[str]) -> Reply:
        return self._answer(await self._run(sender, "halt"), "halt ")

    async def _stop(self, sender: Sender, args: list[str]) -> Reply:
        return self._answer(await self._run(sender, "cancel-all"), "stop (halt + cancel all) ")

    async def _resume(self, sender: Sender, args: list[str]) -> Reply:
        return self._answer(await self._run(sender, "resume"), "resume ")

    async def _snapshot(self, sender: Sender, args: list[str]) -> Reply:
        result = await self._run(sender, "snapshot")
        if not result.ok:
            return self._answer(result, "snapshot ")
        status = await self.backend.query("status")
        return Reply(
            f"snapshot written: {inert(result.details.get('path', result.message), limit=300)}\n"
            f"{status['mode'].upper()} · {status['trading_state']} · {status['positions']} position(s) · "
            f"{status['open_orders']} open order(s) · equity {_num(status['equity'])} {status['quote_asset']} · "
            f"{status['unacknowledged_alerts']} unacknowledged alert(s)"
        )

    async def _mode(self, sender: Sender, args: list[str]) -> Reply:
        if len(args) != 1:
            return Reply("say /mode halt, /mode dry-run or /mode <the mode the engine started in>")
        wanted = args[0].lower()
        if wanted == "halt":
            return await self._halt(sender, [])
        return self._answer(await self._run(sender, "mode", {"mode": wanted}), "mode ")

    async def _ack(self, sender: Sender, args: list[str]) -> Reply:
        if len(args) == 1 and args[0].lower() == "all":
            return self._answer(await self._run(sender, "ack", {"every": True}), "ack ")
        if not args or not all(a.isdigit() for a in args):
            return Reply("say /ack ID (an alert's number; /alerts lists them) or /ack all")
        return self._answer(await self._run(sender, "ack", {"ids": [int(a) for a in args]}), "ack ")

    async def _alerts(self, sender: Sender, args: list[str]) -> Reply:
        snapshot = await self.backend.query("snapshot")
        open_ = [a for a in snapshot["alerts"] if a["severity"] != "INFO" and not a.get("acked_by")]
        if not open_:
            return Reply("no unacknowledged alert")
        lines = [
            f"#{a['id']} {a['severity']} {a['code']}: {inert(a['message'], limit=200)}" for a in open_[-LISTED_MAX:]
        ]
        more = f"\n(and {len(open_) - LISTED_MAX} older)" if len(open_) > LISTED_MAX else ""
        return Reply("unacknowledged alerts, newest last:\n" + "\n".join(lines) + more + "\n/ack ID | all")

    async def _help(self, sender: Sender, args: list[str]) -> Reply:
        return Reply("cockpit, from " + self.transport + ":\n" + "\n".join(HELP))

    async def _status(self, sender: Sender, args: list[str]) -> Reply:
        status = await self.backend.query("status")
        health = await self.backend.query("health")
        portfolio = await self.backend.query("portfolio")
        orders = await self.backend.query("orders")
        quote = status["quote_asset"]
        changed = status.get("state_changed") or {}
        who = ""
        if changed.get("actor"):
            who = f" by {inert(changed['actor'], limit=80)}"
            if changed.get("ts"):
                who += f" at {str(changed['ts'])[11:19]}"
            if changed.get("reason"):
                who += f" ({inert(changed['reason'], limit=200)})"
        lines = [f"{status['mode'].upper()} · {status['trading_state']}{who}"]
        if status.get("resume_refused"):
            lines.append(f"resume refused now: {inert(status['resume_refused'], limit=200)}")
        lines.append("venue: " + ("connected" if status["connected"] else "NOT connected"))
        troubled = [m for m in health.get("monitors", []) if m["status"] != "OK"]
        if troubled:
            lines.append(
                "monitors not OK: "
                + "; ".join(f"{m['code']} {m['status']} {inert(m.get('value'), limit=60)}" for m in troubled)
            )
        else:
            lines.append(f"monitors: {len(health.get('monitors', []))} OK")
        numbers = health.get("numbers", {})
        lines.append(
            f"equity {_num(numbers.get('equity', status['equity']))} {quote} · today {_num(numbers.get('day_pnl', 0))}"
        )
        positions = portfolio["positions"]
        if positions:
            lines.append("positions:")
            lines += [
                f"  {inert(p['symbol'], limit=30)} {_plain(p['amount'])} @ {_plain(p['last']) if p['last'] else '?'}"
                for p in positions[:LISTED_MAX]
            ]
        else:
            lines.append("positions: none")
        if orders:
            lines.append(f"open orders: {len(orders)}")
            lines += [
                f"  {inert(o['symbol'], limit=30)} {inert(o['side'], limit=10).upper()} {_plain(o['amount'])} @ "
                f"{_plain(o['price']) if o['price'] else 'market'} {getattr(o['status'], 'value', o['status'])} "
                f"by {inert(o['origin'], limit=40)}"
                for o in orders[:LISTED_MAX]
            ]
        else:
            lines.append("open orders: none")
        return Reply("\n".join(lines))

    async def _closeall(self, sender: Sender, args: list[str]) -> Reply:
        """Without a code: what it would sell, and a Confirm for 60 s. With the code (or the button), from the same
        user, in time: the kill switch's tier 3, and its answer."""
        now = self.clock()
        if args:
            pending = self._pending.get(sender.user_id)
            if pending is None or pending.until < now or not secrets.compare_digest(pending.code, args[0]):
                return Reply("no close-all of yours is waiting for that code (each waits 60 s); send /closeall again")
            del self._pending[sender.user_id]
            return self._answer(await self._run(sender, "close-all"), "close all ")
        portfolio = await self.backend.query("portfolio")
        orders = await self.backend.query("orders")
        quote = portfolio["quote_asset"]
        code = f"{secrets.randbelow(10_000):04d}"
        self._pending[sender.user_id] = _Pending(code, now + CONFIRM_S)
        positions = portfolio["positions"]
        sells = [
            f"  {inert(p['symbol'], limit=30)} {_plain(p['amount'])}"
            + (f" (about {_num(Decimal(p['amount']) * Decimal(p['last']))} {quote})" if p["last"] else "")
            for p in positions[:LISTED_MAX]
        ]
        what = "it would sell at market:\n" + "\n".join(sells) if sells else "no position to sell"
        return Reply(
            f"close all: halt, cancel {len(orders)} open order(s) and sell every position; {what}\n"
            f"Nothing happens unless you press Confirm or send /closeall {code} within {CONFIRM_S:.0f} s.",
            (Button("Confirm close all", f"closeall:{code}"),),
        )
