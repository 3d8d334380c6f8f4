"""A server that answers HTML to every call is reported as what it is: not a venue, garbage, check rest_url."""

from __future__ import annotations

from eventually import eventually
from htmlserver import html_server

from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig


async def test_a_server_answering_html_is_called_garbage(tmp_path):
    async with html_server() as port:
        engine = Engine(
            Settings(
                venue=VenueConfig(
                    exchange="binance",
                    rest_url=f"http://127.0.0.1:{port}",
                    ws_url=f"ws://127.0.0.1:{port}",
                    api_key="k",
                    api_secret="s",
                    retry_backoff_s=(0.05,),
                ),
                engine=EngineConfig(data_dir=tmp_path),
                strategy=StrategyConfig(enabled=False),
            )
        )
        await engine.start()
        try:
            await eventually(engine.failed.is_set, timeout=20, message="the engine gives up on a garbage venue")
            assert "garbage" in engine.fatal_error and "rest_url" in engine.fatal_error
            assert "not traded" not in engine.fatal_error
        finally:
            await engine.stop()
