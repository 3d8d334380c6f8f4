"""Wait for a condition instead of sleeping for a fixed time (tests wait for conditions, never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value; return that value or fail."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        except AssertionError as exc:  # predicates may assert to explain what they saw
            last_exc = exc
        if time.monotonic() > deadline:
            detail = f": {last_exc}" if last_exc else ""
            raise AssertionError(f"condition not met within {timeout}s {message}{detail}")
        await asyncio.sleep(interval)  # the poll interval of this wait for a condition
