"""Fixtures for the simulator tests: extra ccxt clients against the same simulator."""

from __future__ import annotations

from typing import Any

import pytest

from engine.exchange import build_exchange


@pytest.fixture
async def make_client(sim):
    """Factory for extra ccxt clients against ``sim`` (other keys, shifted clocks), closed after the test."""
    clients: list[Any] = []

    def make(api_key: str | None = None, api_secret: str | None = None) -> Any:
        ex = build_exchange(
            "binance", rest_url=sim.rest_url, ws_url=sim.ws_url,
            api_key=api_key or sim.api_key, api_secret=api_secret or sim.api_secret, timeout_ms=5_000,
        )
        clients.append(ex)
        return ex

    try:
        yield make
    finally:
        for ex in clients:
            await ex.close()
