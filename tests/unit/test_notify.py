"""Notification targets: labels that hold no secret, and who gets what."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from eventually import eventually

from engine.kernel.config import NotifyTarget
from engine.kernel.events import Alert, AlertRaised, Severity
from engine.ops.notify import Notifier, masked


def test_labels_never_hold_a_token():
    assert masked("json://user:pass@hooks.example:9000/hook/SECRETPATH?token=abc") == "json://hooks.example:9000/…"
    assert masked("tgram://123456:ABCDEF/987654") == "tgram://…"  # the "host" is the bot token
    assert masked("slack://TokenA/TokenB/TokenC/#ops") == "slack://…"
    assert masked("mailtos://user:password@example.com") == "mailtos://…"


async def test_each_target_gets_what_its_least_severity_allows_and_the_summary_reaches_the_rest_once():
    notifier = Notifier(
        (
            NotifyTarget(url="json://127.0.0.1:9/a", min_severity="INFO"),
            NotifyTarget(url="json://127.0.0.1:9/b", min_severity="CRIT"),
        ),
        0,
        lambda e: None,
        lambda *a, **k: None,
    )
    info = Alert(Severity.INFO, "DAILY_SUMMARY", "the day", id=1)
    notifier.on_event(AlertRaised(info))
    assert [t.queue.qsize() for t in notifier.targets] == [1, 0]
    notifier.send_to_the_rest(info, "summary")
    assert [t.queue.qsize() for t in notifier.targets] == [1, 1]
    assert [t.label for t in notifier.targets] == ["#1 json://127.0.0.1:9/…", "#2 json://127.0.0.1:9/…"]


async def test_outside_text_reaches_a_sink_inert_and_as_plain_text():
    """A venue's error in an alert (a terminal escape, HTML, Markdown) reaches a json:// sink as visible text."""
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    notifier = Notifier(
        (NotifyTarget(url=f"json://127.0.0.1:{port}/hook", min_severity="INFO"),), 0, lambda e: None, lambda *a: None
    )
    workers = [asyncio.create_task(coro) for _, coro in notifier.workers()]
    try:
        hostile = "venue said \x1b[2J<b>wiped</b> [x](http://evil) \u202egnp.exe\nsecond line"
        notifier.on_event(AlertRaised(Alert(Severity.CRIT, "VENUE_AUTH", hostile, id=7)))
        (sent,) = await eventually(lambda: received, timeout=10, message="delivered")
    finally:
        for task in workers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
    body = sent["message"]
    assert "\x1b" not in body and "\\x1b[2J" in body and "\\u202e" in body and "\n" not in body
    assert "<b>wiped</b>" in body and body.endswith("[alert #7]")  # plain text: shown as typed, never rendered
