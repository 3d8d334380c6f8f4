"""Issue 27: the kill switch answers once the venue has confirmed, and its bookkeeping (alert, audit record, the
incident's update, its row in ``commands``) follows the answer (decision BEN-07). Proof that nothing is lost: the
real engine process (``cockpit run --headless``) holds what follows its answer (the test hook
``TEST_COCKPIT_AFTER_ANSWER_HOLD_S``), is killed with ``kill -9`` right after answering a cancel-all from another
shell, and the restart carries the tier out again from its row on disk and reports it: the audit record, the
CANCEL_ALL alert, the row done. A simulator in its own process keeps the venue's side across the kill."""

from __future__ import annotations

from decimal import Decimal

from crashloop import VENUE_TOML, Session, http, own_sim_session, wait_for

from engine.core.engine import AFTER_ANSWER_HOLD_ENV

CONFIG = (
    VENUE_TOML
    + """[engine]
data_dir = "data"
[alerts]
daily_summary = false
[strategy]
enabled = false
"""
)
HOLD_S = "120"  # longer than the test: what follows the answer never runs in the first engine


def cancel_alls(session: Session) -> list[dict]:
    store = session.store()
    try:
        return [a for a in store.audit(limit=50) if a["command"] == "cancel-all"]
    finally:
        store.close()


def stored_open(session: Session) -> list[str]:
    store = session.store()
    try:
        return [o.client_id for o in store.orders(open_only=True)]
    finally:
        store.close()


def rows(session: Session) -> list[dict]:
    return session._query("select id, status, result, actor from commands where command = 'cancel-all' order by id")


def test_a_kill_between_the_answer_and_its_bookkeeping_loses_nothing(tmp_path):
    with own_sim_session(27, tmp_path, CONFIG) as session:
        sim, env = session.sim, session.env
        session.env = {**env, AFTER_ANSWER_HOLD_ENV: HOLD_S}
        session.start_engine()
        last = Decimal(http("GET", f"{sim.rest}/sim/status", token=sim.token)["prices"]["BTCUSDT"])
        price, stop = ((last * Decimal(f)).quantize(Decimal("0.01")) for f in ("0.9", "0.8"))
        order = {"symbol": "BTC/USDT", "side": "buy", "amount": "0.001", "type": "limit", "price": str(price)}
        ok, message = session.command("order", {**order, "stop_loss": str(stop)})
        assert ok, message
        wait_for(lambda: len(sim.account()["orders"]) == 1, 10, "the buy resting at the venue")

        ok, message = session.command("cancel-all")  # the answer: the venue confirmed
        assert ok and "canceled 1 order(s)" in message, message
        assert not [o for o in sim.account()["orders"] if o["status"] == "NEW"]
        # Answered, and what follows is held: no audit record, no alert yet, the row still running (on disk).
        assert cancel_alls(session) == [] and "CANCEL_ALL" not in session.alert_codes()
        assert [r["status"] for r in rows(session)] == ["running"]
        session.kill()

        session.env = env  # the restart runs what follows an answer at once
        session.start_engine()
        done = wait_for(lambda: cancel_alls(session), 30, "the restart carried the cancel-all out again, audited")
        assert done[0]["actor"].startswith("operator:cli"), done
        # Done at once, or (the venue not reached yet so early in the start) on its retry.
        wait_for(lambda: session.alert_codes() & {"CANCEL_ALL", "KILL_SWITCH_DONE"}, 30, "the cancel-all's alert")
        wait_for(lambda: "running" not in [r["status"] for r in rows(session)], 10, "its row finished")
        assert not [o for o in sim.account()["orders"] if o["status"] == "NEW"]
        # The cancel's report, applied after the answer (decision BEN-09), is in the store after the restart too.
        wait_for(lambda: stored_open(session) == [], 30, "the store holds the buy as cancelled")
