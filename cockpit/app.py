"""The cockpit: one full-screen main screen over an engine; keys send commands, events redraw.

Every key is a binding with an id (remappable in the config's ``[keys]`` section) that runs the same command the
CLI sends, through the engine's one ``execute``. Halt and cancel-all ask nothing; close-all and resume ask once,
and a question is withdrawn when the state it asks about changes before it is answered (here, or on another screen
attached to the same engine).

The app reaches its engine through a link (``cockpit.link``): an engine it starts in this process
(``cockpit.inprocess``), or a running one it attaches to (``cockpit.attached``: the data directory's socket, or a
remote URL with a token). Only the owner of its engine asks what to do with the orders when it quits; an attached
screen detaches and the engine runs on. An attached screen that loses its engine says so in red, says which
command works without it, and follows it again by itself, missing no event.

The screen is drawn before the engine exists: ``cockpit`` builds the app from the settings alone, and the engine
(whose imports take most of a second) is imported in a thread and started after the first frame. That frame holds
the banner (STARTING), the health and equity lines, each panel's frame with its title and the footer's keys; the
panels' tables take their places right after it, before the engine starts (decision BEN-10). Until the engine is
up, the kill switch's keys wait for it and run the moment it is (a key is never lost), help and quit work, and
every other key says the engine is starting.

Why one module of this length: the App holds every binding and action of the cockpit (the kill switch's included)
and their one table of what is allowed now; the screens, widgets and the bridge are their own modules.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets._footer import FooterKey

from cockpit.bridge import LinkChanged
from cockpit.inprocess import InProcessLink
from cockpit.link import Link, LinkError, LinkState, View
from cockpit.main_screen import MainScreen, ScreenConfig, Snapshot
from cockpit.questions import Confirm, OverrideReason, QuitChoice, TooSmall
from cockpit.views import num, qty
from engine.kernel.text import inert
from widgets.banner import StatusBanner
from widgets.notice import NoticeLine

if TYPE_CHECKING:
    from engine.kernel.commands import Command, CommandResult
    from engine.kernel.config import Settings  # the models are loaded after the first frame (cockpit.firstframe)

# What loads after the first frame (decision BEN-10): the engine's commands and events (each action imports the
# command it sends), the other screens (``cockpit.screens``, at the first one opened), the command palette's
# provider (at its first opening), and a fleet's link (``cockpit.fleet``, only when watching several engines).

log = logging.getLogger(__name__)

ACTOR = "operator:key"
HANGUP = {"halt": "Halt", "cancel_all": "CancelAll", "close_all": "CloseAll"}  # [tui] on_hangup: the command
MIN_SIZE = (80, 24)
# How long what a key did is said: on the main screen's notice line (it covers no panel), and in a toast on the
# other screens (it covers part of a table: brief, but an error stays long enough to read).
NOTICE_S = {"information": 4.0, "warning": 6.0, "error": 15.0}
TOAST_S = {"information": 3.0, "warning": 5.0, "error": 15.0}
TOAST_MAX_S = 6.0  # a toast that is not an error, however long its caller asked
HANGUP_FINISH_S = 600.0  # after a hang-up, how long the kill switch may keep retrying before the program exits
TOAST_LIMIT = 500  # characters of a notification (a reason or a venue's error in it may be long; the logs have it)
FIRST_REACH_S = 2.0  # a kill key pressed while an attached screen reaches its engine waits this long for it
FOOTER_WAIT_S = 1.0  # the longest the engine's start waits for the footer's keys to be drawn (``_start_after_footer``)
HALTED_WHY = "trading is HALTED: no new orders until an operator resumes"
BINDINGS = [
    # The kill switch: one key, no question (halt, cancel all), one question (close all); on every screen.
    Binding("h", "halt", "Halt", id="halt", priority=True),
    Binding("c", "cancel_all", "Cancel all", id="cancel_all", priority=True),
    Binding("x", "close_all", "Close all", id="close_all", priority=True),
    Binding("r", "reconnect", "Reconnect", id="reconnect", show=False),
    Binding("u", "resume", "Resume", id="resume"),
    Binding("d", "reduce_only", "Reduce only", id="reduce_only", show=False),
    Binding("m", "mode", "Mode", id="mode", show=False),
    Binding("a", "ack", "Ack", id="ack"),
    Binding("A", "ack_all", "Ack all", id="ack_all", show=False),
    Binding("s", "snapshot", "Snapshot", id="snapshot", show=False),
    Binding("n", "new_order", "Order", id="new_order", show=False),
    Binding("g", "checklist", "Go/no-go", id="checklist", show=False),
    Binding("f", "fills", "Fills", id="fills", show=False),
    Binding("o", "order_history", "Order history", id="order_history", show=False),
    Binding("v", "reconciliation", "Reconciliation", id="reconciliation", show=False),
    Binding("l", "alert_log", "Alert log", id="alert_log", show=False),
    Binding("i", "incidents", "Incidents", id="incidents", show=False),
    Binding("t", "audit_log", "Audit", id="audit_log", show=False),
    Binding("S", "strategies", "Strategies", id="strategies", show=False),
    Binding("e", "next_engine", "Next engine", id="next_engine", show=False),
    Binding("slash", "filter_markets", "Filter markets", id="filter_markets", show=False, key_display="/"),
    Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
    Binding("q", "quit_cockpit", "Quit", id="quit"),
]
BINDING_IDS = tuple(b.id for b in BINDINGS if b.id)
DESCRIPTION = {
    "halt": "kill switch 1: no new orders from anyone, at once (no question)",
    "cancel_all": "kill switch 2: halt, cancel every open order at the venue (no question)",
    "close_all": "kill switch 3: halt, cancel every order, sell every position at market (asks once)",
    "reconnect": "reopen streams and REST session, reload markets, reconcile",
    "resume": "back to ACTIVE (asks once; refused while the trigger holds)",
    "reduce_only": "only orders that shrink a position (asks once)",
    "mode": "switch to dry-run (decide and log, send nothing) or back (asks once)",
    "ack": "acknowledge the alert under the cursor (stops its escalation)",
    "ack_all": "acknowledge every alert",
    "snapshot": "write a snapshot archive of the whole state",
    "new_order": "an order through the same risk checks as any order",
    "checklist": "the go/no-go checklist: every check with its evidence; F5 runs it now (asks once)",
    "fills": "every fill, newest first (beside the alerts from 120 columns)",
    "order_history": "the selected open order's every event and its source",
    "reconciliation": "the last reconciliation: what was adopted, what needs the operator",
    "alert_log": "every stored alert, filtered by severity",
    "incidents": "every kill-switch trip and its report",
    "audit_log": "every command carried out, by every actor",
    "strategies": "every strategy: on or off and why, its symbols and candles, its round trips, wins and PnL",
    "filter_markets": "only the markets whose name holds what you type (Enter keeps it, Esc clears it)",
    "next_engine": "show the next engine this cockpit watches (the list under the banner; the palette names each)",
    "help": "this screen",
    "quit": "quit: asks what to do with open orders and positions",
}
DETACH = "detach: leave the engine running (this screen attached to it)"
# What a key sends, by its id (a viewer's token sends none of them); the kill switch's keys, and the command each
# is in the CLI (what to run from a shell when the engine cannot be reached from here).
COMMAND_ACTIONS = frozenset(
    {
        "halt",
        "cancel_all",
        "close_all",
        "reconnect",
        "resume",
        "reduce_only",
        "mode",
        "ack",
        "ack_all",
        "snapshot",
        "new_order",
    }
)
KILL_CLI = {"halt": "halt", "cancel_all": "cancel-all", "close_all": "close-all"}


# The kill switch's keys: a [keys] entry may add a key to them, never take these away or give them to another action.
KILL_KEYS = {"halt": "h", "cancel_all": "c", "close_all": "x"}
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})


@functools.cache
def _key_names() -> frozenset[str]:
    """Textual's key names (f2, escape, question_mark), worked out once: every binding's key is checked before the
    first frame, twice."""
    from textual.keys import Keys, _character_to_key

    return frozenset({k.value for k in Keys} | {_character_to_key(chr(c)) for c in range(33, 127)} | {"space"})


def _is_key(name: str) -> bool:
    """Whether Textual knows ``name`` as a key: one printable character, or a key name (f2, escape,
    question_mark), optionally after modifiers (ctrl+x)."""
    *mods, base = name.split("+")
    if not base or any(m not in MODIFIERS for m in mods):
        return False
    if len(base) == 1:
        return base.isprintable() and not base.isspace()
    return base in _key_names()


def check_keymap(keymap: dict[str, str]) -> dict[str, str]:
    """The keymap the app runs with, from ``[keys]``; a ValueError names what is wrong: an id that names no
    binding, a key Textual does not know, one key for two actions, or a key of the kill switch (h, c, x) given to
    anything else. The kill switch keeps h, c and x whatever is configured (an entry for it adds a key)."""
    unknown = sorted(set(keymap) - set(BINDING_IDS))
    if unknown:
        raise ValueError(f"[keys] {', '.join(unknown)}: no such binding; the ids are {', '.join(BINDING_IDS)}")
    effective: dict[str, str] = {}
    owner: dict[str, str] = {}
    for binding in BINDINGS:
        if not binding.id:
            continue
        keys = [k.strip() for k in keymap.get(binding.id, binding.key).split(",")]
        if binding.id in KILL_KEYS and KILL_KEYS[binding.id] not in keys:
            keys.insert(0, KILL_KEYS[binding.id])
        for key in keys:
            if not _is_key(key):
                raise ValueError(f"[keys] {binding.id} = {key!r}: not a key name (e.g. f2, ctrl+k, X, escape)")
            if key in owner:
                first = owner[key]
                if first in KILL_KEYS or binding.id in KILL_KEYS:
                    kill = first if first in KILL_KEYS else binding.id
                    raise ValueError(
                        f"[keys] {key!r} is the kill switch's key for {kill}: it cannot be given to "
                        f"{binding.id if kill == first else first}; choose another key"
                    )
                raise ValueError(f"[keys] {key!r} is bound to both {first} and {binding.id}; give each its own key")
            owner[key] = binding.id
        if binding.id in keymap:
            effective[binding.id] = ",".join(keys)
    return effective


def _palette() -> type:
    """The command palette's provider of the cockpit's commands, loaded when the palette first opens."""
    from cockpit.palette import CockpitCommands

    return CockpitCommands


class CockpitApp(App):
    """Shows the engine's state live; h halts, c cancels every order, x closes every position, r reconnects."""

    TITLE = "cockpit"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere (tests)
    BINDINGS = BINDINGS
    DESCRIPTION = DESCRIPTION
    COMMANDS = App.COMMANDS | {_palette}

    def __init__(
        self,
        engine: Any = None,
        *,
        settings: Settings | None = None,
        link: Link | None = None,
        confirm_live: bool = False,
        panels_after_frame: bool | None = None,
    ) -> None:
        """Over ``engine`` (started when the app mounts), over an engine built from ``settings`` after the first
        frame (what ``cockpit`` does: the screen does not wait for the engine's imports), or over ``link`` (an
        attached engine; ``settings`` are this machine's: its keys)."""
        super().__init__()
        builds_engine = engine is None and link is None  # after the first frame (``_start_after_footer``)
        if link is None:
            if engine is None and settings is None:
                raise TypeError("CockpitApp needs an engine, the settings to build one, or a link")
            link = InProcessLink(engine, settings=settings, confirm_live=confirm_live)
        settings = settings or getattr(link, "settings", None)
        if settings is None:
            raise TypeError("an attached CockpitApp needs this machine's settings (its [keys])")
        self.settings = settings
        self.link = link
        self.started = asyncio.Event()  # the link is open (set once); ``start_failed`` says when it never will be
        self.start_failed = False
        self.detached: str | None = None  # an attached screen that quit (its engine runs on): what it said
        self._frames = 0  # first frames drawn (an attached screen draws one again each time it reaches its engine)
        self._allowed: tuple[object, ...] = ()  # what an attached screen's footer was last drawn from
        self.main_screen = MainScreen(
            ScreenConfig(
                mode=settings.engine.mode,
                quote=settings.engine.quote_asset,
                symbols=tuple(settings.venue.symbols),
                stuck_after_s=settings.monitors.stuck_order_s,
                min_severity=settings.alerts.screen_min_severity,
            ),
            # ``cockpit`` on a data directory where no engine runs: the engine is built after the first frame, and the
            # panels' tables come between the two; ``cockpit`` attaching to one (``panels_after_frame``) reaches it
            # after them too. An engine handed in, or a link, has its screen composed whole unless told.
            panels_after_frame=builds_engine if panels_after_frame is None else panels_after_frame,
            attached=not link.owns_engine,
        )
        self._hangup_started = False
        self.notices: deque[tuple[str, str, str]] = deque(maxlen=200)  # (title, message, severity), oldest first
        keymap = check_keymap(dict(settings.keys))
        if keymap:
            self.set_keymap(keymap)

    @property
    def engine(self) -> Any:
        """The engine in this process (None until built, and for an attached screen): tests and benchmarks reach
        it here; the app itself goes through ``link``."""
        return getattr(self.link, "engine", None)

    @property
    def view(self) -> View:
        """What a key checks at once (the link's mirror of the engine)."""
        return self.link.view

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """What a key did, or why not. On the main screen (or a question over it) it is said on the notice line
        above the footer, which covers no panel; on a terminal too small it is said in that notice; on another
        screen it is a brief toast (an error stays long enough to read). Every notice is kept in ``notices``.

        The words are the engine's and the venue's (reasons, errors): shown inert (an escape sequence in a reason
        must not reach the terminal) and never parsed as markup, whatever ``markup`` says (``Widget.notify`` passes
        True): a "[...]" in a venue's error must neither vanish nor crash the screen."""
        message, title = inert(message, limit=TOAST_LIMIT, lines=True), inert(title, limit=100)
        self.notices.append((title, message, severity))
        target = self.notice_target()
        if isinstance(target, TooSmall):
            last = Text(f"{title} · " if title else "", style="bold")
            last.append(message, style={"warning": "bold yellow", "error": "bold red"}.get(severity, ""))
            target.show(*target.size_seen, last=last)
            return
        if target is not None:
            try:
                notice = target.query_one(NoticeLine)
            except NoMatches:  # not composed yet (a notice in the first moments): a toast
                pass
            else:
                seconds = NOTICE_S.get(severity, 4.0)  # brief whatever was asked; an error at least its time
                if severity == "error" and timeout is not None:
                    seconds = max(seconds, timeout)
                notice.show(message, title, severity, seconds)
                return
        seconds = TOAST_S.get(severity, 3.0) if timeout is None else min(timeout, TOAST_MAX_S)
        if severity == "error":
            seconds = max(seconds, TOAST_S["error"])
        super().notify(message, title=title, severity=severity, timeout=seconds, markup=False)

    def notice_target(self) -> Screen | None:
        """Where a notice is said: the too-small notice, or the main screen when it is what the operator sees (a
        question over it leaves its notice line in view), else None (a toast)."""
        stack = self.screen_stack
        if not stack:
            return None
        top = stack[-1]
        if isinstance(top, TooSmall):
            return top
        if top is self.main_screen:
            return top
        if isinstance(top, ModalScreen) and len(stack) > 1 and stack[-2] is self.main_screen:
            return self.main_screen
        return None

    def refresh_too_small(self) -> None:
        """The too-small notice follows the banner: the trading state as it is now, never the one it was pushed
        with."""
        shown = next((s for s in self.screen_stack if isinstance(s, TooSmall)), None)
        if shown is None:
            return
        try:
            headline = self.main_screen.query_one(StatusBanner).headline()
        except NoMatches:
            headline = None
        shown.show(self.size.width, self.size.height, headline)

    def get_default_screen(self) -> MainScreen:
        return self.main_screen

    async def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            signal.signal(signal.SIGHUP, lambda *_: self._terminal_gone(loop))
        except (AttributeError, ValueError):  # no SIGHUP here, or not the main thread (tests)
            log.warning("no SIGHUP handler here: [tui] on_hangup cannot run")
        if self.engine is not None:
            await self._start()  # an engine handed in (tests, benchmarks): up before the first key
        else:
            # The first frame first: the engine's imports and start (or aiohttp's, to attach) follow it.
            self.call_after_refresh(
                self.run_worker, self._start_after_footer(), name="engine-start", group="engine-start"
            )

    async def _start_after_footer(self) -> None:
        """The panels' tables, then ``_start``, once the first frame is on the screen, the footer's keys in it
        (``widgets.footer`` composes them with the screen): the settings' and the engine's imports, in a thread,
        would hold the interpreter's lock from that drawing (the kill keys showed up most of a second late). Not
        longer than FOOTER_WAIT_S: the keys work before anyway (they wait for the engine)."""
        deadline = time.monotonic() + FOOTER_WAIT_S
        while time.monotonic() < deadline and not self.main_screen.query(FooterKey):
            await asyncio.sleep(0.005)  # a poll: a screen pushed over the main one (too small) delays its compose
        if time.monotonic() < deadline:
            drawn = asyncio.Event()
            self.call_after_refresh(drawn.set)  # the keys composed are drawn at the next refresh
            await drawn.wait()
        from cockpit.firstframe import release_collector

        release_collector()  # held by `cockpit` from its start to its first frame (decision BEN-14)
        await self.main_screen.mount_panels()  # the panels' tables, in their frames' places, before any event
        await self._start()

    async def _start(self) -> None:
        """Open the link (an engine built and started in this process, or a session to a running one) and follow
        the engine from its first frame."""
        try:
            if not self.link.owns_engine and getattr(self.settings, "provisional", False):
                # An attached screen's first frame, too, was drawn from the values validated last time (its keys,
                # decision BEN-14): they are loaded and checked in full before it reaches the engine, as the
                # in-process link does before it builds one (a bad configuration closes the screen, exit 2).
                from engine.kernel.config import ConfigError

                try:
                    self.settings = await asyncio.to_thread(self.settings.validate)
                except ConfigError as exc:
                    raise LinkError(str(exc)) from exc
            await self.link.open()
        except LinkError as exc:
            self.start_failed = True
            self.started.set()  # whoever waits for it learns it will not come
            self.exit(return_code=2, message=Text(f"cockpit: {inert(exc, lines=True)}"))
            return
        if self.link.owns_engine:
            self.settings = self.link.settings  # validated in full now, where the first frame's were recalled
        self.run_worker(self.link.follow(self.main_screen.post_message), name="engine-bridge")
        self.set_interval(1.0, self._watch_kill_switch)
        self.started.set()
        self.refresh_bindings()

    async def _engine_up(self, title: str, cli: str | None = None, link: Link | None = None) -> bool:
        """Wait for the engine when a command comes before it is up (the key is not lost); False, said, if it never
        will be, or (an attached screen) if it cannot be reached now. ``link``: the engine the key was pressed for
        (a cockpit watching several: the one selected then)."""
        link = link or self.link
        if not self.started.is_set():
            doing = "is starting" if link.owns_engine else "is being reached"
            self.notify(
                f"The engine {doing}: {title.lower()} runs the moment it is up.", title=title, severity="warning"
            )
            await self.started.wait()
        if self.start_failed:
            return False
        if link.owns_engine:
            return True
        if link.state == LinkState.CONNECTING:
            reached = getattr(link, "reached", None)
            if reached is not None:
                try:
                    await asyncio.wait_for(reached.wait(), FIRST_REACH_S)
                except TimeoutError:
                    pass
        if link.state != LinkState.UP:
            self.notify(self.unreachable(cli, link), title=title, severity="error", timeout=15)
            return False
        return True

    def unreachable(self, cli: str | None = None, link: Link | None = None) -> str:
        """What a key says when its engine cannot be reached: not sent, since when, and for the kill switch the
        command that does the same from a shell meanwhile (``cli``: halt, cancel-all, close-all; each works with no
        engine running at all)."""
        link = link or self.link
        since = f" since {link.down_since:%H:%M:%S}" if link.down_since else ""
        text = f"NOT SENT: cannot reach {link.describe()}{since}."
        if cli:
            advice = link.emergency.advice(cli)
            text += f" {advice[:1].upper()}{advice[1:]}."
        return text

    def frame_drawn(self, snap: Snapshot) -> None:
        """A first frame is on the screen: the first (a restored halt said; an attached screen says where it is),
        or another after an attached screen reached its engine again (questions asked meanwhile withdrawn)."""
        from engine.kernel.events import TradingState

        self._frames += 1
        link, info = self.link, snap.state_info
        banner = self.main_screen.query_one(StatusBanner)
        if not link.owns_engine:
            pid = f"pid {link.view.pid}" if link.view.pid else "the engine"
            where = f"{inert(link.where, limit=100)} " if link.where else ""
            banner.attached = f"attached to {where}{pid} · q detaches"
        if snap.fresh:  # a cockpit watching several engines shows another one
            self.withdraw_questions("another engine is on the screen")
            state = (
                f"; HALTED by {info.get('actor')}: {info.get('reason')}"
                if info and snap.state.value == "HALTED"
                else ""
            )
            self.notify(
                f"Now showing {link.describe()}: {snap.state.value}{state}. The keys act on it.",
                title="Engine",
                severity="warning" if snap.state == TradingState.HALTED else "information",
            )
            return
        if self._frames > 1:
            self.withdraw_questions("the engine was out of reach")
            self.notify(
                f"Reached {link.describe()} again: what happened meanwhile is drawn from its journal.",
                title="Engine",
            )
            return
        halted = snap.state == TradingState.HALTED and info
        if link.owns_engine:
            if halted:
                self.notify(
                    f"Restored HALTED (by {info.get('actor')}: {info.get('reason')}). u: resume",
                    severity="warning",
                    timeout=10,
                )
            return
        state = f"; HALTED by {info.get('actor')}: {info.get('reason')}" if halted else ""
        self.notify(
            f"Attached to {link.describe()}{state}. q detaches and leaves it running.",
            title="Engine",
            severity="warning" if halted else "information",
            timeout=10 if halted else None,
        )

    def link_changed(self, message: LinkChanged) -> None:
        """An attached screen lost its engine (said once, in red: what to use meanwhile) or reached it again."""
        banner = self.main_screen.query_one(StatusBanner)
        if message.up:
            banner.unreachable_hint = ""
            return
        names = "|".join(KILL_CLI.values())
        banner.unreachable_hint = f"from a shell: {self.link.emergency.command(names)}"
        self.notify(
            f"Lost {self.link.describe()} ({message.detail}); trying again. Meanwhile h, c and x cannot reach it: "
            f"{self.link.emergency.advice('halt')}.",
            title="Engine unreachable",
            severity="error",
            timeout=15,
        )

    def _watch_kill_switch(self) -> None:
        """A kill switch the venue did not let finish is retried by the engine: the banner says so until done. (An
        attached screen also learns here, from its last status, what no event says: the footer follows.)"""
        retrying = self.view.kill_switch_retrying if self.link.up else []
        for banner in self.main_screen.query(StatusBanner).results(StatusBanner):  # none while the app winds down
            banner.kill_switch = f"retrying {', '.join(retrying)}" if retrying else ""
        if not self.link.owns_engine:
            now = (self.view.resume_refused, self.view.ready, self.view.may_command, self.view.unacknowledged())
            if now != self._allowed:
                self._allowed = now
                self.refresh_bindings()

    def on_resize(self, event) -> None:
        """Under 80×24 the screen says so instead of cutting panels off without a word; h, c and x still work."""
        width, height = event.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        shown = next((s for s in self.screen_stack if isinstance(s, TooSmall)), None)
        if small and shown is None:
            shown = TooSmall(MIN_SIZE)
            self.push_screen(shown)
        elif not small and shown is not None:
            shown.dismiss()
            return
        if shown is not None:
            self.call_after_refresh(self.refresh_too_small)

    def _terminal_gone(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGHUP, handled at once in the main thread (not through the event loop, which may be the thing blocked):
        the terminal is gone, so nothing more is drawn. Textual's own SIGCONT handler, which tmux and sshd send
        with the SIGHUP, would restart the screen on the dead terminal; and its writer, blocked on a terminal that
        no longer reads, would block the event loop for ever (seen under `tmux kill-server`: the engine frozen,
        the policy never run, the data directory locked). Python runs pending handlers in signal-number order,
        so this one (1) runs before SIGCONT's (18)."""
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        driver = getattr(self, "_driver", None)
        if driver is not None:
            driver.write = lambda *_: None  # type: ignore[method-assign]
            exit_event = getattr(driver, "exit_event", None)
            if exit_event is not None:
                exit_event.set()  # its input thread would spin on the dead terminal, a core at 100 %
            # A write already waiting for room goes through: the writer's queue emptied. Never by the queue's own
            # methods: this handler may have interrupted this very thread inside ``put``, holding the queue's lock
            # (it is not reentrant: the program would wait for itself for ever, seen under load in tmux); then the
            # put was not waiting for room and goes on by itself once the handler returns.
            writer = getattr(driver, "_writer_thread", None)
            queue = getattr(writer, "_queue", None)
            mutex = getattr(queue, "mutex", None)
            if mutex is not None and mutex.acquire(blocking=False):
                try:
                    queue.queue.clear()
                    queue.not_full.notify_all()
                finally:
                    mutex.release()
        loop.call_soon_threadsafe(self._hung_up)

    def _hung_up(self) -> None:
        """The terminal went away (an SSH drop): run the configured policy, recorded, then exit. A second SIGHUP
        changes nothing: the first one's work goes on."""
        if self._hangup_started:
            return
        self._hangup_started = True
        self.run_worker(self._on_hangup(), name="hangup", group="hangup")

    async def _on_hangup(self) -> None:
        if not self.link.owns_engine:
            # An attached screen's terminal went away: the engine was not this screen's to stop, and runs on (its
            # own hang-up policy belongs to the screen that started it, or to nobody for a headless engine).
            log.warning("terminal hung up (SIGHUP): detached; the engine keeps running")
            logging.shutdown()
            os._exit(0)
        policy = self.settings.tui.on_hangup
        log.warning("terminal hung up (SIGHUP): on_hangup = %s", policy)
        from engine.kernel import commands

        command = getattr(commands, HANGUP[policy]) if policy in HANGUP else None
        try:
            await asyncio.wait_for(self.started.wait(), HANGUP_FINISH_S)  # hung up while the engine was starting
        except TimeoutError:
            pass
        if not self.started.is_set() or self.start_failed:
            log.warning("terminal gone before the engine was up: exiting")
            logging.shutdown()
            os._exit(0)
        if command is not None:
            result = await self.link.execute(
                command(actor="operator:hangup", reason=f"terminal hung up (SIGHUP); [tui] on_hangup = {policy}")
            )
            log.warning("on hangup: %s", result.message)
            # What the venue did not let it finish is retried; nobody is watching, so stay until it is done.
            deadline = time.monotonic() + HANGUP_FINISH_S
            while self.view.kill_switch_retrying and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        # The terminal is gone: Textual cannot restore it, and its writer may wait forever on a dead pty (seen
        # under tmux kill-session), holding the data directory's lock so no new cockpit could start. Stop the
        # engine (store closed, lock released), flush the log, and leave.
        await self.link.close()
        log.warning("terminal gone: engine stopped, exiting")
        logging.shutdown()
        os._exit(0)

    async def on_unmount(self) -> None:
        await self.link.close()  # an engine in this process stops; an attached one runs on

    # ------------------------------------------------------------ questions

    async def ask(self, question: str) -> bool:
        """Ask once; a yes counts only if the trading state did not move while the question was open."""
        epoch = self.view.epoch
        answer = await self.push_screen_wait(Confirm(question, epoch=epoch))
        if answer and self.view.epoch != epoch:
            self.notify(
                "The trading state changed while you were deciding; nothing was done.",
                title="Withdrawn",
                severity="warning",
            )
            return False
        return bool(answer)

    def withdraw_questions(self, why: str) -> None:
        """Dismiss every open question asked before the state last moved (a kill switch, a halt elsewhere, an
        answer on another screen attached to the same engine)."""
        epoch = self.view.epoch
        for screen in list(self.screen_stack):
            if isinstance(screen, (Confirm, OverrideReason)) and screen.epoch is not None and screen.epoch != epoch:
                screen.dismiss(False if isinstance(screen, Confirm) else None)
                self.notify(f"Question withdrawn: {why}", title="Withdrawn", severity="warning")

    # ------------------------------------------------------------ operator actions

    async def _run(self, command: Command, title: str, link: Link | None = None) -> CommandResult:
        """``command`` sent to the engine (``link``: the one a key was pressed for; else the link's own), its
        answer told."""
        link = link or self.link.pinned()
        title += self.link.on_engine(link)
        if not await self._engine_up(title, command.name if command.kill_switch else None, link):
            from engine.kernel.commands import CommandResult

            return CommandResult(False, "not sent: the engine is not up or cannot be reached")
        result = await link.execute(command)
        if self.link.owns_engine:
            # The state is drawn from its event too; this draws it the moment the command returns, even when a
            # storm of events is still waiting to be drawn ahead of that one. (An attached screen's view is the
            # events': its own event follows within milliseconds.)
            self.main_screen.query_one(StatusBanner).state = self.view.trading_state.value
        self.notify(
            result.message,
            title=title,
            severity="information" if result.ok else "error",
            timeout=10 if command.kill_switch else 5,
        )
        if command.kill_switch:
            self.withdraw_questions(f"{title.lower()} ran")
        return result

    async def action_halt(self) -> None:
        """Halt at once: no question asked (halt is one key, always)."""
        from engine.kernel.commands import Halt

        command = Halt(actor=ACTOR, reason="h pressed in cockpit")
        if not self.started.is_set() or not self.link.owns_engine:
            # Waits for the engine (or its answer over the link) in a worker: the screen goes on meanwhile. The
            # engine is the one selected now, even if another is selected before the answer.
            self._kill(command, "Halt", self.link.pinned())
            return
        await self._run(command, "Halt")

    def action_cancel_all(self) -> None:
        """Halt and cancel every open order at the venue; no question asked."""
        from engine.kernel.commands import CancelAll

        if isinstance(self.screen, QuitChoice):
            self.screen.dismiss("cancel_all")  # the quit question's answer: cancel all, then quit
            return
        self.notify("Halting and cancelling every open order…", title="Cancel all", severity="warning")
        self._kill(CancelAll(actor=ACTOR, reason="c pressed in cockpit"), "Cancel all", self.link.pinned())

    def action_cancel_all_with_stops(self) -> None:
        """Halt and cancel every open order at the venue, the protective stops too (the palette's entry)."""
        from engine.kernel.commands import CancelAll

        self.notify("Halting and cancelling every order, stops too…", title="Cancel all", severity="warning")
        self._kill(
            CancelAll(actor=ACTOR, reason="cancel all with stops from the palette", include_stops=True), "Cancel all"
        )

    @work(group="commands", exclusive=False)
    async def _kill(self, command: Command, title: str, link: Link | None = None) -> None:
        await self._run(command, title, link)

    def _what_close_sells(self, symbol: str | None = None) -> str:
        view = self.view
        held = [p for p in view.positions() if symbol is None or p.symbol == symbol]
        orders = [o for o in view.open_orders() if symbol is None or o.symbol == symbol]
        sells = (
            ", ".join(f"{p.symbol.split('/')[0]} {qty(p.amount)} (~{num(p.value)} {view.quote})" for p in held)
            or "nothing held to sell"
        )
        return f"cancel {len(orders)} open order(s) and sell at market: {sells}"

    @work(group="commands")
    async def action_close_all(self) -> None:
        """Halt, cancel every order and sell every position at market, after one question that lists it."""
        from engine.kernel.commands import CloseAll

        if isinstance(self.screen, QuitChoice):
            self.screen.dismiss("close_all")  # the quit question's answer (it was the question): close, then quit
            return
        link = self.link.pinned()
        title = "Close all" + self.link.on_engine(link)
        if not await self._engine_up(title, "close-all", link):
            return
        if not await self.ask(f"CLOSE ALL{self.link.on_engine(link)}? Halt, {self._what_close_sells()}."):
            self.notify("Nothing closed.", title=title)
            return
        self.notify("Halting, cancelling and selling at market…", title=title, severity="warning")
        await self._run(CloseAll(actor=ACTOR, reason="x pressed in cockpit"), "Close all", link)

    @work(group="commands")
    async def action_close_position(self, symbol: str) -> None:
        """Close one position (from the palette), after one question."""
        from engine.kernel.commands import ClosePosition

        if not await self.ask(f"Close {symbol}? {self._what_close_sells(symbol)}."):
            return
        await self._run(ClosePosition(actor=ACTOR, reason="palette: close position", symbol=symbol), "Close position")

    @work(group="commands", exclusive=False)
    async def action_reconnect(self) -> None:
        """Reopen the streams and the REST session, reload markets and reconcile."""
        from engine.kernel.commands import Reconnect

        self.notify("Reconnecting…", title="Reconnect")
        await self._run(Reconnect(actor=ACTOR, reason="r pressed in cockpit"), "Reconnect")

    @work(group="commands")
    async def action_resume(self) -> None:
        """Resume trading after one confirmation."""
        from engine.kernel.commands import Resume
        from engine.kernel.events import TradingState

        view = self.view
        if view.trading_state == TradingState.ACTIVE:
            self.notify("Already ACTIVE.", title="Resume")
            return
        await self.link.refresh()  # the refusal as the engine sees it now, not as the last status said
        refused = view.resume_refused
        if refused is not None:
            await self._resume_override(refused)
            return
        if not await self.ask("Resume trading? New orders will be allowed again."):
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        await self._run(Resume(actor=ACTOR, reason="u pressed in cockpit"), "Resume")

    async def _resume_override(self, refusal: str) -> None:
        """A refused resume asks a second question: resume past the monitors, with the operator's reason."""
        from engine.kernel.commands import Resume

        view = self.view
        epoch = view.epoch
        if not await self.ask(f"{refusal}\n\nOverride the monitors and resume anyway? You will be asked why."):
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        reason = await self.push_screen_wait(OverrideReason(refusal, epoch=epoch))
        if reason is None:
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        if view.epoch != epoch:
            self.notify(
                "The trading state changed while you were deciding; nothing was done.",
                title="Withdrawn",
                severity="warning",
            )
            return
        await self._run(Resume(actor=ACTOR, reason=reason, override=True), "Resume (override)")

    @work(group="commands")
    async def action_reduce_only(self) -> None:
        """Only position-reducing orders from now on, after one confirmation."""
        from engine.kernel.commands import ReduceOnly
        from engine.kernel.events import TradingState

        if self.view.trading_state == TradingState.REDUCE_ONLY:
            self.notify("Already REDUCE_ONLY.", title="Reduce only")
            return
        if not await self.ask("Reduce only? Only orders that shrink a position will go out."):
            return
        await self._run(ReduceOnly(actor=ACTOR, reason="d pressed in cockpit"), "Reduce only")

    @work(group="commands")
    async def action_mode(self) -> None:
        """Dry-run (nothing is sent) or back to the mode the engine started in, after one confirmation."""
        from engine.kernel.commands import SetMode

        view = self.view
        started = view.started_mode
        target = started if view.mode == "dry-run" else "dry-run"
        if target == view.mode:
            self.notify(
                f"This engine started in {started}: there is no other mode to switch to without a restart.",
                title="Mode",
            )
            return
        question = (
            "Switch to DRY-RUN? Orders are decided and logged; none is sent, stop-loss exits included."
            if target == "dry-run"
            else f"Switch back to {target.upper()}? Orders will be sent again."
        )
        if not await self.ask(question):
            return
        await self._run(SetMode(actor=ACTOR, reason="m pressed in cockpit", mode=target), "Mode")

    @work(group="commands", exclusive=False)
    async def action_ack(self) -> None:
        """Acknowledge the alert under the cursor (stops its escalation)."""
        from engine.kernel.commands import Ack
        from widgets.alerts import AlertList

        alert_id = self.main_screen.query_one(AlertList).selected_id
        if alert_id is None:
            self.notify("No alert selected: move to one in the alert list, or A acknowledges all.", title="Ack")
            return
        await self._run(Ack(actor=ACTOR, reason="a pressed in cockpit", ids=(alert_id,)), "Ack")

    @work(group="commands", exclusive=False)
    async def action_ack_all(self) -> None:
        """Acknowledge every unacknowledged alert."""
        from engine.kernel.commands import Ack

        await self._run(Ack(actor=ACTOR, reason="A pressed in cockpit", every=True), "Ack all")

    @work(group="commands", exclusive=False)
    async def action_snapshot(self) -> None:
        """Write a snapshot archive of the whole state now."""
        from engine.kernel.commands import Snapshot as TakeSnapshot

        await self._run(TakeSnapshot(actor=ACTOR, reason="s pressed in cockpit"), "Snapshot")

    @work(group="commands", exclusive=False)
    async def action_set_strategy(self, name: str, enabled: bool) -> None:
        from engine.kernel.commands import SetStrategy

        await self._run(SetStrategy(actor=ACTOR, reason="palette", strategy=name, enabled=enabled), "Strategy")

    @work(group="commands")
    async def action_quit_cockpit(self) -> None:
        """Quit. An attached screen detaches (its engine runs on). The owner of its engine, with orders or
        positions open, asks what to do with them: keep, cancel all or close all; on the built-in simulator it
        says that they end with this process."""
        from engine.kernel.commands import CancelAll, CloseAll

        link, view = self.link, self.view
        if not link.owns_engine:
            pid = f" (pid {view.pid})" if view.pid else ""
            self.detached = f"cockpit: detached; the engine keeps running{pid}"
            log.warning("detached from %s", link.describe())
            self.exit(message=Text(self.detached))
            return
        if not self.started.is_set():
            self.exit()  # nothing known yet to keep or close; the engine is stopped on the way out
            return
        open_orders = len(view.open_orders())
        held = view.positions()
        if not open_orders and not held:
            self.exit()
            return
        symbols = ", ".join(p.symbol for p in held) or "none"
        listed = f"{open_orders} open order(s) and {len(held)} position(s) ({symbols})"
        simulator = view.exchange == "sim"
        if simulator:
            what = (
                f"{listed} are on the built-in simulator, which runs inside this cockpit: they end with it "
                "(nothing stays at any venue)."
            )
        else:
            what = f"{listed} would stay at the venue, unwatched."
        choice = await self.push_screen_wait(QuitChoice(what, epoch=view.epoch, simulator=simulator))
        if choice is None:
            return
        if choice == "keep":
            log.warning("quit: %s %s", what, "ended with the simulator" if simulator else "kept at the venue")
        else:
            command = CancelAll if choice == "cancel_all" else CloseAll
            self.notify("Halting and clearing the book before quitting…", title="Quit", severity="warning")
            result = await self._run(command(actor=ACTOR, reason=f"quit: operator chose {choice}"), "Quit")
            if not result.ok:
                self.notify(
                    "Not quitting: the kill switch did not finish; it keeps retrying. q again to decide.",
                    title="Quit",
                    severity="error",
                    timeout=15,
                )
                return
        self.exit()

    # ------------------------------------------------------------ what is allowed now, and why not

    def why_not(self, action: str) -> str | None:
        """Why an action cannot run now, or None when it can. The kill switch (halt, cancel all, close all) is
        never held back: even when the engine thinks nothing is open, the venue is asked; before the engine is up
        they wait for it. An attached screen's keys say when its engine cannot be reached (and the kill switch's,
        what to run instead), and a viewer's token sends nothing."""
        link = self.link
        if action in ("help", "quit"):
            return None
        if action == "next_engine":  # an engine out of reach too: its line says so, the screen shows it
            return "answer or close what is open first (Esc)" if self.screen is not self.main_screen else None
        if not self.started.is_set():
            if action in KILL_KEYS:
                return None
            return "the engine is still starting" if link.owns_engine else "the engine is being reached"
        if not link.owns_engine:
            if link.state == LinkState.DOWN:
                return self.unreachable(KILL_CLI.get(action)).removeprefix("NOT SENT: ")
            if link.state == LinkState.CONNECTING:
                return None if action in KILL_KEYS else "the engine is being reached"
            if action in COMMAND_ACTIONS and not self.view.may_command:
                return f"this token ({self.view.actor}) may only read: its role is viewer, not operator"
        from engine.kernel.events import TradingState  # loaded by then (the engine's start); not before the frame

        view = self.view
        state = view.trading_state
        if action == "halt" and state == TradingState.HALTED:
            return "already HALTED"
        if action == "resume":
            if state == TradingState.ACTIVE:
                return "already ACTIVE"
            if view.resume_refused is not None:
                return view.resume_refused
        if action == "reduce_only" and state == TradingState.REDUCE_ONLY:
            return "already REDUCE_ONLY"
        if action == "new_order":
            if state == TradingState.HALTED:
                return HALTED_WHY
            if not view.ready:
                return "the venue is not connected yet"
        if action == "reconnect" and not view.ready:
            return "the engine is still starting"
        if action == "order_history" and self._selected_order() is None:
            return "select an open order first (Tab to the orders table)"
        if action in ("ack", "ack_all") and not view.unacknowledged():
            return "no alert waiting to be acknowledged"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Shown disabled in the footer (not hidden) when not allowed now; the help screen says why."""
        if action == "next_engine" and not self.link.several:
            return False  # one engine: no such key
        if action in DESCRIPTION and self.why_not(action) and not (action == "resume" and self._overridable()):
            return None
        return True

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        """A key whose action is not allowed now says why instead of doing nothing."""
        if isinstance(action, str) and default_namespace in (None, self):
            name = action.split("(", 1)[0].strip()
            if name in ("halt", "cancel_all", "close_all") and (
                isinstance(self.screen, OverrideReason) or getattr(self.focused, "id", None) == "market-filter"
            ):
                return False  # the letter is typed into the reason or the filter; Esc first, then the kill switch
            if name in DESCRIPTION:
                why = self.why_not(name)
                if why and not (name == "resume" and self._overridable()):
                    title = next((b.description for b in BINDINGS if b.id == name), name)
                    if name in KILL_KEYS and not self.link.owns_engine:  # the kill switch not sent: said in red
                        self.notify(f"NOT SENT: {why}", title=title, severity="error", timeout=15)
                    else:
                        self.notify(f"Not now: {why}", title=title, severity="warning")
                    return True
        return await super().run_action(action, default_namespace, namespaces)

    def _overridable(self) -> bool:
        """A resume the monitors refuse can still be asked for: its second question offers the override."""
        if not (self.started.is_set() and self.link.up):
            return False
        from engine.kernel.events import TradingState  # loaded by then (the engine's start); not before the frame

        return self.view.trading_state != TradingState.ACTIVE and self.view.resume_refused is not None

    def help_entries(self) -> list[tuple[str, str, str, str | None]]:
        keymap = dict(self.settings.keys)
        described = {**DESCRIPTION, **({} if self.link.owns_engine else {"quit": DETACH})}
        return [
            (keymap.get(b.id, b.key_display or b.key), b.id, described.get(b.id, b.description), self.why_not(b.id))
            for b in BINDINGS
            if b.id and (b.id != "next_engine" or self.link.several)
        ]

    # ------------------------------------------------------------ screens and forms

    def _selected_order(self) -> str | None:
        from widgets.keyed_table import KeyedTable  # the panels' tables load after the first frame (BEN-14)

        tables = self.main_screen.query("#orders").results(KeyedTable)
        key = next((t.selected_key for t in tables), None)
        return key if key and self.view.order(key) else None

    def action_filter_markets(self) -> None:
        """`/`: filter the markets panel by name."""
        if self.screen is self.main_screen:
            self.main_screen.open_filter()

    # ------------------------------------------------------------ several engines

    @work(group="select-engine")
    async def action_next_engine(self) -> None:
        """Show the next engine of those this cockpit watches."""
        if self.link.several:
            await self.link.select(self.link.index + 1)

    @work(group="select-engine")
    async def action_select_engine(self, index: int) -> None:
        """Show engine ``index`` (0-based; from the palette)."""
        if self.link.several and not await self.link.select(index):
            self.notify(f"Already showing {self.link.describe()}.", title="Engine")

    @work(group="commands", exclusive=False)
    async def action_halt_all(self) -> None:
        """Halt every engine this cockpit watches, after one question; each engine's answer told."""
        from engine.kernel.commands import Halt

        fleet = self.link
        if not fleet.several:
            await self.action_halt()
            return
        states = ", ".join(f"{line.name} {line.state}" for line in fleet.lines())
        if not await self.push_screen_wait(Confirm(f"HALT ALL {len(fleet.links)} ENGINES? ({states})")):
            self.notify("Nothing halted.", title="Halt all engines")
            return
        answers = await fleet.halt_all(lambda: Halt(actor=ACTOR, reason="palette: halt all engines"))
        lines = [
            f"{inert(a.name, limit=40)}: {'' if a.ok else 'FAILED: ' if a.sent else ''}{a.message}" for a in answers
        ]
        failed = [a for a in answers if not a.ok]
        head = f"{len(answers) - len(failed)} of {len(answers)} engines halted"
        self.notify(
            f"{head}: " + " · ".join(lines),
            title="Halt all engines",
            severity="error" if failed else "warning",
            timeout=20,
        )

    def action_help(self) -> None:
        from cockpit.screens import Help

        self.push_screen(Help(self.help_entries))

    def action_checklist(self) -> None:
        from cockpit.screens import ChecklistScreen

        self.push_screen(ChecklistScreen())

    @work(group="commands")
    async def action_run_checklist(self) -> None:
        """Run the go/no-go checklist now, after one question (on a paper venue its smoke trade places orders)."""
        from cockpit.screens import ChecklistScreen
        from engine.kernel.commands import RunPreflight

        if not await self.ask(
            "Run the go/no-go checklist now? On a paper or testnet venue its smoke trade places "
            "a small market order and a far limit order (then cancels it)."
        ):
            return
        self.notify("Running the go/no-go checklist…", title="Go/no-go")
        await self._run(RunPreflight(actor=ACTOR, reason="checklist screen"), "Go/no-go")
        if isinstance(self.screen, ChecklistScreen):
            self.screen.action_reload()

    def action_fills(self) -> None:
        from cockpit.screens import Fills

        self.push_screen(Fills())

    def action_alert_log(self) -> None:
        from cockpit.screens import AlertLog

        self.push_screen(AlertLog())

    def action_audit_log(self) -> None:
        from cockpit.screens import AuditLog

        self.push_screen(AuditLog())

    def action_strategies(self) -> None:
        from cockpit.screens import Strategies

        self.push_screen(Strategies())

    def action_incidents(self) -> None:
        from cockpit.screens import Incidents

        self.push_screen(Incidents())

    def action_reconciliation(self) -> None:
        from cockpit.screens import Reconciliation

        self.push_screen(Reconciliation())

    def action_order_history(self) -> None:
        from cockpit.screens import OrderHistory

        client_id = self._selected_order()
        if client_id is not None:
            self.push_screen(OrderHistory(client_id))

    @work(group="commands")
    async def action_reconcile(self, adopt: bool) -> None:
        """Reconcile now (from the reconciliation screen); adopting the venue's amounts asks first."""
        from cockpit.screens import Reconciliation
        from engine.kernel.commands import Reconcile

        if adopt and not await self.ask(
            "Adopt the venue's amounts as the engine's? The differences kept for you become the engine's holdings."
        ):
            return
        await self._run(Reconcile(actor=ACTOR, reason="reconciliation screen", adopt=adopt), "Reconcile")
        if isinstance(self.screen, Reconciliation):
            self.screen.action_reload()

    @work(group="commands")
    async def action_new_order(self) -> None:
        """The order form; what it sends goes through the same risk checks as any order."""
        from cockpit.screens import OrderForm
        from engine.kernel.commands import PlaceOrder

        order = await self.push_screen_wait(OrderForm(self.view.symbols or tuple(self.main_screen.config.symbols)))
        if order is None:
            return
        kind = "limit" if order["price"] is not None else "market"
        await self._run(
            PlaceOrder(
                actor=ACTOR,
                reason="order form",
                symbol=order["symbol"],
                side=order["side"],
                type=kind,
                amount=order["amount"],
                price=order["price"],
                stop_loss=order["stop_loss"],
            ),
            "Order",
        )
