"""Several engines watched from one cockpit: ``--url`` repeated, ``[[remote]]`` entries, or both beside the engine
of this data directory.

Every engine has its own link (``cockpit.attached.AttachedLink``), followed all the time: each keeps its mirror
current from its own events, so the engine list (``widgets.engines.EngineStrip``) says every engine's state as it
moves, and a halt elsewhere is said at once. The main screen shows one engine, the **selected** one: only its
events reach the screen. ``e`` (or the palette's ``Watch engine NAME``) selects another: the screen is cleared and
drawn from that engine's first frame, its events held meanwhile and drawn after it, and every open question is
withdrawn (it was about the other engine).

The kill-switch keys act on the engine selected when the key was pressed (``pinned``), never on one selected after
it; ``Halt all engines`` (palette) asks once, then halts every engine at the same time and reports each answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from textual.message import Message

from cockpit.attached import AttachedLink, Target, read_token
from cockpit.bridge import EngineEvents, EnginesChanged, LinkChanged
from cockpit.link import Link, LinkError, LinkState, QueryFailed, screen_config
from cockpit.main_screen import Snapshot
from engine.kernel.commands import Command, CommandResult
from engine.kernel.events import AlertRaised, AlertUpdated, TradingStateChanged
from engine.kernel.text import inert

log = logging.getLogger(__name__)

HALT_ALL_TIMEOUT_S = 15.0  # each engine's answer to a halt; the halts run at the same time
LIST_EVENTS = (TradingStateChanged, AlertRaised, AlertUpdated)  # what changes an engine's line in the list


@dataclass(frozen=True)
class Watched:
    """One engine to watch: what the list calls it, and where it is."""

    name: str
    target: Target


def name_of(target: Target) -> str:
    """An engine's default name: its URL's host:port, or its data directory's name."""
    if target.data_dir is not None:
        return target.data_dir.name or str(target.data_dir)
    return urlsplit(target.base_url).netloc


def watched(
    remotes: tuple[Any, ...],
    urls: list[str],
    token_files: list[Path],
    local: Path | None,
) -> list[Watched]:
    """The engines one cockpit watches, in the list's order; LinkError says what is wrong.

    ``--url`` given: exactly those engines (with one ``--token-file`` for all, or one per ``--url`` in the same
    order). Else the engine of this data directory (``local``, when one runs there) and every ``[[remote]]`` entry.
    """
    out: list[tuple[str | None, Target]] = []
    if urls:
        if len(token_files) not in (1, len(urls)):
            raise LinkError(
                f"{len(urls)} --url and {len(token_files)} --token-file: give one --token-file for all, or one per "
                "--url in the same order"
            )
        files = token_files * len(urls) if len(token_files) == 1 else token_files
        out += [(None, Target.remote(url, read_token(path))) for url, path in zip(urls, files, strict=True)]
    else:
        if token_files:
            raise LinkError("--token-file goes with --url (a remote engine's API, and your token)")
        if local is not None:
            out.append(("local", Target.local(local)))
        for entry in remotes:
            if entry.url is not None:
                target = Target.remote(entry.url, read_token(Path(entry.token_file).expanduser()))
            else:
                target = Target.local(Path(entry.data_dir).expanduser())
            out.append((entry.name, target))
    engines: list[Watched] = []
    seen: set[str] = set()
    places: set[str] = set()
    for name, target in out:
        place = str(target.data_dir) if target.data_dir is not None else target.base_url
        if place in places:
            raise LinkError(f"the engine at {place} is named twice: watch each engine once")
        places.add(place)
        base = name or name_of(target)
        unique, n = base, 2
        while unique in seen:
            unique, n = f"{base}#{n}", n + 1
        seen.add(unique)
        engines.append(Watched(unique, target))
    return engines


class FleetView:
    """The selected engine's mirror, with an epoch that also moves whenever another engine is selected (a
    question asked about one engine is stale once the screen shows another)."""

    def __init__(self, fleet: FleetLink) -> None:
        self._fleet = fleet

    @property
    def epoch(self) -> int:
        return (self._fleet.switches << 32) + self._fleet.selected.view.epoch

    def open_orders(self) -> list[Any]:
        return self._fleet.selected.view.open_orders()

    def order(self, client_id: str) -> Any:
        return self._fleet.selected.view.order(client_id)

    def positions(self) -> list[Any]:
        return self._fleet.selected.view.positions()

    def unacknowledged(self) -> int:
        return self._fleet.selected.view.unacknowledged()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fleet.selected.view, name)


@dataclass(frozen=True)
class EngineLine:
    """One engine in the list: its number (1-based), name, state in words, unacknowledged alerts, selected."""

    number: int
    name: str
    state: str
    alerts: int
    selected: bool
    viewer: bool = False


@dataclass(frozen=True)
class HaltAnswer:
    """One engine's answer to ``Halt all engines``: sent or not, and what the engine (or the link) said."""

    name: str
    sent: bool
    ok: bool
    message: str


class FleetLink(Link):
    """Several attached engines, one of them on the screen (see the module's docstring)."""

    owns_engine = False
    several = True

    def __init__(self, engines: list[Watched]) -> None:
        if len(engines) < 2:
            raise ValueError("a fleet watches two engines or more (one is an AttachedLink)")
        self.names = [e.name for e in engines]
        self.links = [AttachedLink(e.target) for e in engines]
        self.index = 0
        self.switches = 0  # how many times another engine was selected (the view's epoch moves with it)
        self.view = FleetView(self)  # type: ignore[assignment]
        self._post: Callable[[Message], object] | None = None
        self._held: list[Message] | None = None  # the selected engine's messages while its frame is drawn
        self._switching = asyncio.Lock()

    # ------------------------------------------------------------ the selected engine

    @property
    def selected(self) -> AttachedLink:
        return self.links[self.index]

    @property
    def name(self) -> str:
        return self.names[self.index]

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.selected.kind

    @property
    def state(self) -> LinkState:  # type: ignore[override]
        return self.selected.state

    @property
    def down_since(self):  # type: ignore[override]
        return self.selected.down_since

    @property
    def emergency(self):  # type: ignore[override]
        return self.selected.emergency

    @property
    def local_data_dir(self) -> Path | None:  # type: ignore[override]
        return self.selected.local_data_dir

    @property
    def where(self) -> str:  # type: ignore[override]
        return self.name

    def describe(self) -> str:
        return self._describe(self.index)

    def _describe(self, index: int) -> str:
        pid = self.links[index].view.pid
        name = inert(self.names[index], limit=40)
        return f"engine {name} (pid {pid})" if pid else f"engine {name}"

    def pinned(self) -> Link:
        return self.selected

    def on_engine(self, pinned: Link) -> str:
        index = next((i for i, link in enumerate(self.links) if link is pinned), self.index)
        return f" on engine {inert(self.names[index], limit=40)}"

    async def execute(self, command: Command) -> CommandResult:
        return await self.selected.execute(command)

    async def query(self, name: str, **params: Any) -> Any:
        return await self.selected.query(name, **params)

    async def refresh(self) -> None:
        await self.selected.refresh()

    # ------------------------------------------------------------ following every engine

    async def open(self) -> None:
        await asyncio.gather(*(link.open() for link in self.links))

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links), return_exceptions=True)

    async def follow(self, post: Callable[[Message], object]) -> None:
        self._post = post
        post(EnginesChanged(self.lines()))
        await asyncio.gather(*(link.follow(self._poster(i)) for i, link in enumerate(self.links)))

    def _poster(self, index: int) -> Callable[[Message], object]:
        """Where engine ``index``'s messages go: to the screen while it is selected (held while its frame is
        drawn), nowhere otherwise (its mirror is kept by its link); the list is drawn again when it changed."""

        def post(message: Message) -> None:
            assert self._post is not None
            changed = isinstance(message, (LinkChanged, Snapshot)) or (
                isinstance(message, EngineEvents) and any(isinstance(e, LIST_EVENTS) for e in message.events)
            )
            notice = None if index == self.index else self._aside(index, message)
            if index != self.index:
                if isinstance(message, EngineEvents):
                    message.drawn.set()  # not drawn: the link's pump goes on, its mirror is current
            elif self._held is not None:
                if isinstance(message, EngineEvents):
                    message.drawn.set()
                self._held.append(message)
            else:
                self._post(message)
            if changed or notice:
                self._post(EnginesChanged(self.lines(), notice))

        return post

    def _aside(self, index: int, message: Message) -> str | None:
        """What the operator is told of an engine not on the screen: lost, back, or its state moved."""
        name = inert(self.names[index], limit=40)
        if isinstance(message, LinkChanged):
            if not message.up:
                return f"Lost engine {name} ({message.detail}); its line says UNREACHABLE"
            return f"Engine {name} {message.detail or 'reached'}" if message.detail == "reconnected" else None
        if isinstance(message, EngineEvents):
            for event in message.events:
                if isinstance(event, TradingStateChanged):
                    by = inert(event.actor, limit=60)
                    why = inert(event.reason, limit=120)
                    return f"Engine {name}: {event.state.value} by {by}: {why}"
        return None

    def lines(self) -> list[EngineLine]:
        """The engine list, without I/O (every link's mirror)."""
        out = []
        for i, link in enumerate(self.links):
            if link.state == LinkState.DOWN:
                state = "UNREACHABLE"
            elif link.state == LinkState.CONNECTING:
                state = "CONNECTING"
            else:
                state = link.view.trading_state.value
            out.append(
                EngineLine(
                    i + 1,
                    inert(self.names[i], limit=40),
                    state,
                    link.view.unacknowledged() if link.up else 0,
                    i == self.index,
                    viewer=link.up and not link.view.may_command,
                )
            )
        return out

    async def select(self, index: int) -> bool:
        """Show engine ``index``: the screen cleared and drawn from its first frame (its last known state when it
        cannot be reached), then its events. False when it was selected already."""
        async with self._switching:
            index %= len(self.links)
            if index == self.index or self._post is None:
                return False
            self.index, self.switches = index, self.switches + 1
            self._held = []
            link = self.selected
            try:
                snapshot = await self._frame(link)
                self._post(snapshot)
                if link.state == LinkState.DOWN:
                    self._post(LinkChanged(False, link.down_since, "unreachable"))
                else:
                    self._post(LinkChanged(True, detail="selected"))
            finally:
                held, self._held = self._held, None
                for message in held:
                    if not isinstance(message, Snapshot):  # the frame just drawn is newer than one held
                        self._post(message)
                self._post(EnginesChanged(self.lines()))
            return True

    async def _frame(self, link: AttachedLink) -> Snapshot:
        """A first frame of ``link`` marked ``fresh`` (another engine: the screen starts from nothing); when it
        cannot be asked, what its mirror last heard."""
        if link.up:
            try:
                snapshot, raw = await link.first_frame(link.config)
                link.view.load(snapshot, raw.get("state_epoch"))
                snapshot.fresh = True
                return snapshot
            except (QueryFailed, ValueError) as exc:
                log.warning("the first frame of %s was not read: %s", link.describe(), exc)
        view = link.view
        return Snapshot(
            state=view.trading_state,
            state_info=dict(view.state_info),
            venue="",
            connected=None,
            orders=view.open_orders(),
            balances=[],
            positions=view.positions(),
            alerts=[],
            mode=view.mode or None,
            config=link.config or screen_config({}),
            fresh=True,
        )

    # ------------------------------------------------------------ every engine at once

    async def halt_all(self, command: Callable[[], Command]) -> list[HaltAnswer]:
        """A halt sent to every engine in reach at the same time; each engine's answer, or why it was not sent."""

        async def one(index: int) -> HaltAnswer:
            link, name = self.links[index], self.names[index]
            if not link.up:
                since = f" since {link.down_since:%H:%M:%S}" if link.down_since else ""
                return HaltAnswer(name, False, False, f"NOT SENT: unreachable{since}; {link.emergency.advice('halt')}")
            if not link.view.may_command:
                return HaltAnswer(name, False, False, f"NOT SENT: this token ({link.view.actor}) may only read")
            try:
                async with asyncio.timeout(HALT_ALL_TIMEOUT_S):
                    result = await link.execute(command())
            except TimeoutError:
                return HaltAnswer(name, True, False, "no answer in time; whether it ran is in `cockpit audit`")
            return HaltAnswer(name, True, result.ok, result.message)

        answers = await asyncio.gather(*(one(i) for i in range(len(self.links))))
        with contextlib.suppress(Exception):
            if self._post is not None:
                self._post(EnginesChanged(self.lines()))
        return list(answers)
