"""Fixtures for the simulator tests: extra ccxt clients against the same simulator."""

from __future__ import annotations

from typing import Any

import pytest

from engine.venue.exchange import build_exchange


@pytest.fixture
async def make_client(sim):
    """Factory for extra ccxt clients against ``sim`` (other keys, shifted clocks, short timeouts), closed after
    the test. ccxt's own rate limiter is off unless asked for: it only slows the tests down."""
    clients: list[Any] = []

    def make(
        api_key: str | None = None, api_secret: str | None = None, *, timeout_ms: int = 5_000, rate_limit: bool = False
    ) -> Any:
        ex = build_exchange(
            "binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=api_key or sim.api_key,
            api_secret=api_secret or sim.api_secret,
            timeout_ms=timeout_ms,
        )
        ex.enableRateLimit = rate_limit
        ex.timeout_on_exit = 0  # ccxt sleeps this long in close() for TLS shutdown; loopback HTTP needs none
        clients.append(ex)
        return ex

    try:
        yield make
    finally:
        for ex in clients:
            await ex.close()


@pytest.fixture
async def exchange(sim):
    """The real ccxt.pro binance client with the paper keys, as tests/conftest.py builds it (rate limiter on),
    closed without ccxt's 0.25 s exit pause."""
    ex = build_exchange(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        timeout_ms=5_000,
    )
    ex.timeout_on_exit = 0
    try:
        yield ex
    finally:
        await ex.close()


@pytest.fixture
async def client(make_client):
    """A ccxt client with a 3-second timeout (short enough for the hang faults, long enough for a loaded two-core
    machine running the suite in parallel) and no client-side rate limiter (markets loaded)."""
    ex = make_client(timeout_ms=3_000)
    await ex.load_markets()
    return ex
