"""The user stream held while a cancel-all's DELETEs are out (decision BEN-09): order events are kept, account
updates and market data pass, and on release every kept event reaches ccxt's handler in the order it came,
including those that came while the release was under way; nothing is dropped."""

import asyncio

from eventually import eventually

from engine.venue.userhold import RELEASE_CHUNK, UserStreamHold


class Client:
    """What a ccxt client is to its handler here: where a message came from."""


class Exchange:
    """The one attribute of a ccxt exchange the hold uses: the handler each connection is given."""

    def __init__(self) -> None:
        self.handled: list[object] = []

    def handle_message(self, client: object, message: object) -> None:
        self.handled.append(message)


def report(n: int) -> dict:
    return {"subscriptionId": 0, "event": {"e": "executionReport", "c": f"ck-{n}"}}


async def test_held_events_reach_ccxt_after_the_release_in_order_and_market_data_passes():
    ex = Exchange()
    hold = UserStreamHold(ex)
    client = Client()
    ticker = {"e": "24hrTicker", "s": "BTCUSDT"}
    hold.hold()
    for n in range(RELEASE_CHUNK + 10):
        ex.handle_message(client, report(n))
    account = {"subscriptionId": 0, "event": {"e": "outboundAccountPosition"}}
    ex.handle_message(client, ticker)
    ex.handle_message(client, account)  # the balances the cancels freed: at once
    ex.handle_message(client, {"e": "ORDER_TRADE_UPDATE"})  # the perps / listen-key shape: no wrapper
    assert ex.handled == [ticker, account] and hold.held == RELEASE_CHUNK + 11
    hold.release()
    assert ex.handled == [ticker, account]  # handed on from the next turn of the loop, not inside the release
    await asyncio.sleep(0)
    assert len(ex.handled) == 2 + RELEASE_CHUNK  # a chunk per turn
    ex.handle_message(client, report(999))  # comes while the rest is handed on: waits behind it
    while hold.held:
        await asyncio.sleep(0)
    events = [m["event"]["c"] if "event" in m else m["e"] for m in ex.handled[2:]]
    assert events == [f"ck-{n}" for n in range(RELEASE_CHUNK + 10)] + ["ORDER_TRADE_UPDATE", "ck-999"]
    ex.handle_message(client, report(1000))  # nothing held any more: straight through
    assert ex.handled[-1] == report(1000)


async def test_holds_nest_and_a_forgotten_hold_ends_by_itself(monkeypatch):
    monkeypatch.setattr("engine.venue.userhold.HOLD_MAX_S", 0.05)
    ex = Exchange()
    hold = UserStreamHold(ex)
    hold.hold()
    hold.hold()
    ex.handle_message(Client(), report(1))
    hold.release()
    for _ in range(5):
        await asyncio.sleep(0)  # turns of the loop a release would hand events on in
    assert ex.handled == []  # one hold is still on
    # ... and never released: handed on after HOLD_MAX_S
    await eventually(lambda: ex.handled == [report(1)], timeout=2, message="the forgotten hold ended")
    assert hold.holders == 0
