"""The engine in this process: what ``cockpit`` runs on a data directory where no engine runs yet.

This is the one module of the cockpit that builds an engine (the import-linter contract in ``pyproject.toml`` names
it): the factory imports ``engine.core.engine`` in a thread after the first frame (it takes most of a second) and
starts the engine. Past that the link is the engine's service API used in process: the first frame and the lists
from ``engine.service.query`` (what reads the disk runs in a thread, on a connection of its own), the events from
one subscription to its bus, and the keys' commands through its one ``execute`` as ``operator:key``.

Its view reads the engine's own values (the same process: exact at the moment a key asks, with no I/O), where an
attached screen keeps a mirror from the events.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from cockpit.bridge import pump
from cockpit.link import Emergency, Link, LinkError, LinkState, View
from engine.kernel.errors import EngineError

if TYPE_CHECKING:
    from engine.kernel.commands import Command, CommandResult  # the engine's records: loaded after the first frame
    from engine.kernel.config import Settings  # the models are loaded after the first frame (cockpit.firstframe)
    from engine.kernel.events import Order, Position, TradingState

ACTOR = "operator:key"


class EngineView(View):
    """The view of an engine in this process: its own values, read when asked."""

    def __init__(self, link: InProcessLink) -> None:
        self._link = link

    @property
    def _engine(self) -> Any:
        return self._link.engine

    @property
    def trading_state(self) -> TradingState:  # type: ignore[override]
        return self._engine.trading_state  # type: ignore[no-any-return]

    @property
    def state_info(self) -> Mapping[str, Any]:  # type: ignore[override]
        return self._engine.state_info  # type: ignore[no-any-return]

    @property
    def epoch(self) -> int:  # type: ignore[override]
        return int(self._engine.state.epoch)

    @property
    def ready(self) -> bool:  # type: ignore[override]
        return bool(self._engine.ready.is_set())

    @property
    def mode(self) -> str:  # type: ignore[override]
        return str(self._engine.mode)

    @property
    def started_mode(self) -> str:  # type: ignore[override]
        return self._link.settings.engine.mode

    @property
    def quote(self) -> str:  # type: ignore[override]
        return self._link.settings.engine.quote_asset

    @property
    def symbols(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._engine.symbols)

    @property
    def resume_refused(self) -> str | None:  # type: ignore[override]
        refused = self._engine.resume_refusal(ACTOR)
        return None if refused is None else str(refused.message)

    @property
    def kill_switch_retrying(self) -> list[str]:  # type: ignore[override]
        return list(self._engine.kill_switch_retrying())

    @property
    def strategies(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return list(self._engine.runner.status())

    @property
    def pid(self) -> int | None:  # type: ignore[override]
        return os.getpid()

    @property
    def data_dir(self) -> str | None:  # type: ignore[override]
        return str(self._link.settings.engine.data_dir)

    may_command = True
    actor = ACTOR

    @property
    def exchange(self) -> str:  # type: ignore[override]
        return self._link.settings.venue.exchange

    def open_orders(self) -> list[Order]:
        return list(self._engine.tracker.open_orders())

    def order(self, client_id: str) -> Order | None:
        return self._engine.tracker.get(client_id)  # type: ignore[no-any-return]

    def positions(self) -> list[Position]:
        return list(self._engine.portfolio.positions())

    def unacknowledged(self) -> int:
        return len(self._engine.alert_book.unacknowledged())


class InProcessLink(Link):
    """An engine this program starts (or was handed, in tests and benchmarks) and stops when it quits."""

    owns_engine = True
    kind = "in-process"

    def __init__(self, engine: Any = None, *, settings: Settings | None = None, confirm_live: bool = False) -> None:
        if engine is None and settings is None:
            raise TypeError("InProcessLink needs an engine or the settings to build one")
        self.engine = engine  # None until built (``open``)
        self.settings: Settings = engine.settings if engine is not None else settings
        self._confirm_live = confirm_live
        self.view = EngineView(self)
        data_dir = Path(self.settings.engine.data_dir)
        self.emergency = Emergency(str(data_dir), remote=False)
        self.local_data_dir = data_dir

    async def open(self) -> None:
        """Build the engine if there is none yet (its imports in a thread: the screen keeps drawing and reading
        keys), then start it; LinkError saying why it cannot start (a data directory in use, a bad configuration)."""
        from engine.store.datadir import DataDirBusy

        if getattr(self.settings, "provisional", False):
            # The first frame was drawn from the values validated last time: the settings are loaded and checked in
            # full before the engine is built (a bad configuration closes the screen with its message, exit 2).
            from engine.kernel.config import ConfigError

            try:
                self.settings = await asyncio.to_thread(self.settings.validate)
            except ConfigError as exc:
                raise LinkError(str(exc)) from exc
        try:
            if self.engine is None:
                await asyncio.to_thread(importlib.import_module, "engine.core.engine")
                from engine.core.engine import Engine

                self.engine = Engine(
                    self.settings, confirm_live=self._confirm_live, take_signals=True, checks_at_start=True
                )
            await self.engine.start()
        except (EngineError, DataDirBusy, OSError, RuntimeError) as exc:
            raise LinkError(str(exc)) from exc
        self.state = LinkState.UP

    async def follow(self, post: Callable[[Message], object]) -> None:
        """Subscribed first, then the first frame: nothing published in between falls through."""
        service = self.engine.service
        subscription = service.subscribe()
        try:
            snapshot, _ = await self.first_frame()
            post(snapshot)
            await pump(subscription, post)
        finally:
            service.unsubscribe(subscription)

    async def execute(self, command: Command) -> CommandResult:
        return await self.engine.execute(command)  # type: ignore[no-any-return]

    async def query(self, name: str, **params: Any) -> Any:
        return await self.engine.service.query(name, params)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.stop()

    def describe(self) -> str:
        return "the engine in this cockpit"
