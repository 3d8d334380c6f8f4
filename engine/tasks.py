"""Every background task is owned: kept referenced, named, and its failure logged and reported."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Coroutine, Any

log = logging.getLogger(__name__)


class TaskGroup:
    """Spawns named tasks, keeps them, reports a crash through ``on_crash`` and cancels all on close."""

    def __init__(self, on_crash: Callable[[str, BaseException], None]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_crash = on_crash

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s crashed", task.get_name(), exc_info=exc)
            self._on_crash(task.get_name(), exc)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
