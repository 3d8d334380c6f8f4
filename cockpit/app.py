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

The App is one class in three modules, along its seams: this one (the link, the engine's start after the first
frame, the first frames drawn, what a key did said, the questions, a hang-up), ``cockpit.command_keys`` (the keys
that send a command, the kill switch's included, and their one table of what is allowed now and why not) and
``cockpit.screen_keys`` (the keys that open another screen or the order form, and those of several engines). The
keys themselves, with the check of a ``[keys]`` keymap, are ``cockpit.bindings``; the screens, widgets and the
bridge are their own modules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import App
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets._footer import FooterKey

from cockpit.bindings import BINDINGS, DESCRIPTION, KILL_CLI, check_keymap
from cockpit.bridge import LinkChanged
from cockpit.command_keys import CommandKeys
from cockpit.inprocess import InProcessLink
from cockpit.link import Link, LinkError, LinkState, View
from cockpit.main_screen import MainScreen, ScreenConfig, Snapshot
from cockpit.questions import Confirm, OverrideReason, TooSmall
from cockpit.screen_keys import ScreenKeys
from engine.kernel.text import inert
from widgets.banner import StatusBanner
from widgets.notice import NoticeLine

if TYPE_CHECKING:
    from engine.kernel.config import Settings  # the models are loaded after the first frame (cockpit.firstframe)

# What loads after the first frame (decision BEN-10): the engine's commands and events (each action imports the
# command it sends), the other screens (``cockpit.screens``, at the first one opened), the command palette's
# provider (at its first opening), and a fleet's link (``cockpit.fleet``, only when watching several engines).

log = logging.getLogger(__name__)

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


def _palette() -> type:
    """The command palette's provider of the cockpit's commands, loaded when the palette first opens."""
    from cockpit.palette import CockpitCommands

    return CockpitCommands


class CockpitApp(CommandKeys, ScreenKeys, App):
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
        """A first frame is on the screen: the first (a restored halt said; an attached screen says where it is on
        the banner's second line, which is always there, so no notice line appears and moves the panels: decision
        TUI-18), or another after an attached screen reached its engine again (questions asked meanwhile
        withdrawn)."""
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
        if not halted:  # attached: the banner's second line says so, for as long as it is (decision TUI-18)
            return
        if link.owns_engine:
            self.notify(
                f"Restored HALTED (by {info.get('actor')}: {info.get('reason')}). u: resume",
                severity="warning",
                timeout=10,
            )
            return
        self.notify(
            f"Attached to {link.describe()}; HALTED by {info.get('actor')}: {info.get('reason')}. "
            "q detaches and leaves it running.",
            title="Engine",
            severity="warning",
            timeout=10,
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
