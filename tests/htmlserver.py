"""A server on loopback that answers an nginx welcome page to every request: what a wrong `rest_url` looks like."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def html_server() -> AsyncIterator[int]:
    """Serve the page on a free loopback port; yields the port."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome to nginx!</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()
