"""The journal: numbers that go on across restarts, catch-up from memory or the store, and an honest "incomplete"."""

from __future__ import annotations

from engine.api import wire
from engine.api.journal import Journal
from engine.kernel.events import Alert, AlertRaised, Severity, TickerUpdated, TradingState, TradingStateChanged, utcnow
from engine.store.db import Store


def change(n: int) -> TradingStateChanged:
    return TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", f"halt {n}")


def now() -> str:
    return utcnow().isoformat()


def test_numbers_only_what_must_be_delivered_and_go_on_after_a_restart(tmp_path):
    store = Store.in_dir(tmp_path)
    journal = Journal(store, now)
    journal.on_event(change(1))
    journal.on_event(TickerUpdated("BTC/USDT", last=1, bid=None, ask=None, ts=utcnow()))  # fast data: no number
    journal.on_event(AlertRaised(Alert(Severity.WARN, "X", "m")))
    assert journal.seq == 2
    journal.flush()
    store.close()
    store = Store.in_dir(tmp_path)
    again = Journal(store, now)  # the next start
    assert again.seq == 2
    again.on_event(change(3))
    assert again.seq == 3
    events, complete = again.since(0)  # two from the store, one from memory
    assert complete and [e["seq"] for e in events] == [1, 2, 3]
    assert [wire.decode(e).reason for e in events if e["type"] == "TradingStateChanged"] == ["halt 1", "halt 3"]
    store.close()


def test_a_client_gets_what_it_missed_from_memory_or_the_store_and_is_told_when_it_cannot(tmp_path):
    store = Store.in_dir(tmp_path)
    journal = Journal(store, now, keep_in_memory=10)
    for n in range(1, 31):
        journal.on_event(change(n))
    assert journal.since(25)[0][0]["seq"] == 26 and journal.since(25)[1]  # still in memory
    events, complete = journal.since(5)  # gone from memory: from the store (written first)
    assert complete and [e["seq"] for e in events] == list(range(6, 31))
    assert journal.since(30) == ([], True)  # nothing missed
    assert journal.since(31)[1] is False  # a number this journal never gave
    assert journal.since(5, limit=10)[1] is False  # more than the client asked to take
    store.db.execute("delete from journal where seq = 12")  # a hole (a store that could not be written)
    store.db.conn.commit()
    assert journal.since(5)[1] is False
    store.close()
