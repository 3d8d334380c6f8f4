"""Notification targets: labels that hold no secret, and who gets what."""

from __future__ import annotations

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
