"""A periodic loop stops when it is cancelled, even when its tick swallowed the cancellation (a library did: Python
3.11's ``asyncio.wait_for`` returns the awaited future's outcome when the task is cancelled as that future completes).
Before, the loop went back to sleep and an engine's stop waited for it for ever."""

from __future__ import annotations

import asyncio

import pytest
from eventually import eventually

from engine.kernel.tasks import Periodic


async def test_a_tick_that_swallows_the_cancellation_still_ends_the_loop():
    entered = asyncio.Event()

    async def tick() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()  # a tick that only ends by being cancelled
        except asyncio.CancelledError:
            pass  # swallowed, as a careless library would

    loop = asyncio.create_task(Periodic("swallower", tick, 0.01, on_failure=lambda n, e: None).run())
    await eventually(entered.is_set, message="the tick runs")
    loop.cancel()
    await eventually(loop.done, timeout=2, message="the loop ended")
    with pytest.raises(asyncio.CancelledError):
        await loop
