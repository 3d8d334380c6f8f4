"""Group commit keeps the promise that matters, end to end through real ccxt and the simulator: a client order id is
on disk while the request carrying it is at the venue (issue 13: write the batch, commit, then send the batch)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from eventually import eventually
from fastsim import FAST

from engine.kernel.commands import PlaceOrder
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig
from engine.store.db import Store


def settings(sim, tmp_path) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **{"timeout_ms": 1000, **FAST},
        ),
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=False),
    )


def stored_ids(tmp_path) -> set[str]:
    other = Store.in_dir(tmp_path, readonly=True)  # another connection: only committed rows
    try:
        return {o.client_id for o in other.orders()}
    finally:
        other.close()


async def test_a_client_id_is_on_disk_while_its_request_is_at_the_venue(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["BTC/USDT"]
    sim.faults.inject("hang", seconds=3, path="/api/v3/order", method="POST", count=1)
    placing = asyncio.create_task(
        engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.8"),
            )
        )
    )
    await eventually(lambda: not sim.faults.is_active("hang"), message="the request is held at the venue")
    (order,) = [o for o in engine.tracker.all() if o.side == "buy"]
    assert order.client_id in stored_ids(tmp_path)  # committed before the request left, not at the command's end
    result = await placing
    assert not result.ok  # never reached the book: asked by client id, not found, marked REJECTED
