"""Incidents: every kill-switch trip, manual or automatic, opens one and writes a snapshot archive at once
(runbook 000 §3 "Log full state"); the timeline says how long it took to detect (first bad reading -> alert), to
act (alert -> kill switch done) and to recover (-> resume). ``report`` writes the post-incident review (runbook
001 "Post-Incident Review") with what the data answers filled in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.kernel.events import (
    AlertRaised,
    CommandAudited,
    Event,
    IncidentChanged,
    TradingState,
    TradingStateChanged,
    utcnow,
)
from engine.kernel.ports import Publish, Spawn
from engine.kernel.text import inert, inert_md
from engine.ops.daily import describe_position
from engine.trading.state import is_operator

if TYPE_CHECKING:
    from engine.store.db import Store

log = logging.getLogger(__name__)

# Seconds between an incident's trip (its state captured) and its archive being written.
SNAPSHOT_WRITE_DELAY_S = 1.0
# The longest a reason, an alert's message or a command's result is shown in the report (the snapshot has it all).
REPORT_FIELD_LIMIT = 4000


def store_parts(store: Store) -> dict[str, Any]:
    """What a snapshot holds when no engine runs: what the store knows."""
    state, info = store.trading_state()
    return {
        "state": {"trading_state": state.value, "info": info},
        "alerts": store.alerts(limit=200),
        "orders": [
            {
                "client_id": o.client_id,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.type,
                "amount": o.amount,
                "price": o.price,
                "status": o.status.value,
                "filled": o.filled,
                "origin": o.origin,
            }
            for o in store.orders()
        ][-500:],
        "balances": [{"asset": b.asset, "free": b.free, "locked": b.locked} for b in store.balances()],
        "monitors": store.load_json("monitors"),
        "holdings": store.load_json("holdings"),
        "audit": store.audit(limit=200),
        "incidents": store.incidents(limit=20),
    }


def write_snapshot(data_dir: Path, parts: Mapping[str, Any], why: str) -> Path:
    """A zip of JSON files (one per part) in ``DATA/snapshots``; returns its path. Secrets are never in ``parts``.

    A part may be a function of no argument, called here (in the writing thread) for the content."""
    folder = Path(data_dir) / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"snapshot_{stamp}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # The reason is outside text: the README shows it inert; the JSON parts keep it faithfully (JSON escapes it).
        archive.writestr("README.txt", f"cockpit snapshot taken {stamp}: {inert(why)}\n")
        for name, content in parts.items():
            if callable(content):
                content = content()
            archive.writestr(f"{name}.json", json.dumps(content, default=str, indent=1, sort_keys=True))
    return path


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 3)


def timings(row: Mapping[str, Any]) -> dict[str, float | None]:
    """Time to detect, to act and to recover, in seconds (None where the data does not say)."""
    return {
        "detect_s": _seconds(row.get("first_reading_at"), row.get("alerted_at")),
        "act_s": _seconds(row.get("alerted_at"), row.get("acted_at")),
        "recover_s": _seconds(row.get("acted_at") or row.get("opened_at"), row.get("recovered_at")),
    }


class Incidents:
    """Opens an incident at a kill-switch trip, records the kill switch's actions, closes it at resume."""

    def __init__(
        self,
        data_dir: Path,
        publish: Publish,
        snapshot_parts: Callable[[], dict[str, Any]],
        spawn: Spawn | None,
        next_id: int = 1,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.publish = publish
        self.spawn = spawn
        self.snapshot_parts = snapshot_parts
        self.next_id = next_id
        self.current: dict[str, Any] | None = None

    def restore(
        self, open_row: Mapping[str, Any] | None, max_id: int, state: TradingState, state_ts: str | None
    ) -> None:
        """Go on with the incident left open, unless trading left HALTED meanwhile (a resume with no engine)."""
        self.next_id = max_id + 1
        self.current = dict(open_row) if open_row else None
        if self.current is not None and state != TradingState.HALTED:
            self.current["recovered_at"] = state_ts or utcnow().isoformat()
            self._save()
            self.current = None

    def on_event(self, event: Event) -> None:
        """Inline bus handler."""
        if isinstance(event, TradingStateChanged):
            if event.state == TradingState.HALTED and self.current is None:
                self._open(event)
            elif event.previous == TradingState.HALTED and event.state != TradingState.HALTED and self.current:
                self.current["recovered_at"] = event.ts.isoformat()
                self.current["recovery"] = json.dumps(
                    {
                        "by": event.actor,
                        "reason": event.reason,
                        "override": bool(event.values.get("override")),
                        "override_reason": event.values.get("override_reason"),
                        "overridden": list(event.values.get("overridden") or []),
                    }
                )
                self._save()
                self.current = None
        elif isinstance(event, CommandAudited) and event.kill_switch and self.current is not None:
            actions = json.loads(self.current.get("actions") or "[]")
            actions.append(
                {
                    "ts": event.ts.isoformat(),
                    "command": event.command,
                    "actor": event.actor,
                    "ok": event.ok,
                    "result": event.result,
                    "duration_ms": round(event.duration_ms, 1),
                }
            )
            self.current["actions"] = json.dumps(actions)
            if event.ok and not self.current.get("acted_at"):
                self.current["acted_at"] = event.ts.isoformat()  # the first action that completed
            self._save()
        elif (
            isinstance(event, AlertRaised)
            and event.alert.code == "KILL_SWITCH_DONE"
            and self.current is not None
            and not self.current.get("acted_at")
        ):
            self.current["acted_at"] = event.alert.ts.isoformat()  # a tier that completed on a retry
            self._save()

    def _open(self, event: TradingStateChanged) -> None:
        first = str(event.values.get("first_reading_at") or event.ts.isoformat())
        self.current = {
            "id": self.next_id,
            "opened_at": event.ts.isoformat(),
            "trigger": event.code or ("operator" if is_operator(event.actor) else event.actor),
            "actor": event.actor,
            "code": event.code,
            "reason": event.reason,
            "first_reading_at": first,
            "alerted_at": event.ts.isoformat(),
            "acted_at": None,
            "recovered_at": None,
            "snapshot": None,
            "actions": "[]",
            "recovery": None,
        }
        self.next_id += 1
        self._save()
        if self.spawn is None:
            parts = self._capture(self.current)
            if parts is not None:
                self._write_now(self.current, parts, event.reason)
        else:
            # Captured as soon as the kill switch's own work yields (its first venue call), not before it: the
            # snapshot must never delay a halt or a cancel; the archive is written in a thread a second later.
            self.spawn(f"incident {self.current['id']} snapshot", self._write(self.current, event.reason))

    def _capture(self, incident: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.snapshot_parts()
        except Exception as exc:  # a snapshot must never stand in the kill switch's way
            log.error("incident snapshot not captured", exc_info=exc)
            incident["snapshot"] = f"not captured: {type(exc).__name__}: {exc}"
            self.publish(IncidentChanged(dict(incident)))
            return None

    def _write_now(self, incident: dict[str, Any], parts: dict[str, Any], reason: str) -> None:
        try:
            incident["snapshot"] = str(write_snapshot(self.data_dir, parts, f"incident {incident['id']}: {reason}"))
        except Exception as exc:  # a full disk must not stop anything; the incident says so
            incident["snapshot"] = f"not written: {exc}"
        self.publish(IncidentChanged(dict(incident)))

    async def _write(self, incident: dict[str, Any], reason: str) -> None:
        await asyncio.sleep(0)
        parts = self._capture(incident)
        if parts is None:
            return
        why = f"incident {incident['id']}: {reason}"
        try:
            # The archive (~50 ms of JSON and zip for 500 orders and events) is written once the kill switch's own
            # work is done: in a thread it would still compete with it for the interpreter. A stop writes it now.
            await asyncio.sleep(SNAPSHOT_WRITE_DELAY_S)
        except asyncio.CancelledError:
            self._write_now(incident, parts, reason)
            raise
        try:
            path = await asyncio.to_thread(write_snapshot, self.data_dir, parts, why)
            incident["snapshot"] = str(path)
        except Exception as exc:  # a full disk must not stop anything; the incident says so
            incident["snapshot"] = f"not written: {exc}"
            log.error("incident snapshot not written: %s", exc)
        self.publish(IncidentChanged(dict(incident)))

    def _save(self) -> None:
        assert self.current is not None
        self.publish(IncidentChanged(dict(self.current)))


# What a question of the review is answered from: the incident's row and the actions the kill switch took. Every
# stored value is outside text (an operator's reason, a venue's error, an actor's name): shown through ``_md``.
ReviewAnswer = Callable[[Mapping[str, Any], list[Mapping[str, Any]]], str]


def _md(value: object) -> str:
    """A stored value as it may stand in the Markdown report: inert (no escape sequence, no bidi override, one
    line) and no Markdown markup."""
    return inert_md(value, limit=REPORT_FIELD_LIMIT)


def _resumed(row: Mapping[str, Any]) -> str:
    if not row["recovered_at"]:
        return "not yet: still HALTED"
    try:
        recovery = json.loads(row.get("recovery") or "{}")
    except ValueError:
        recovery = {}
    said = _md(row["recovered_at"])
    if recovery.get("by"):
        said += f" by {_md(recovery['by'])}"
    if recovery.get("override"):
        overridden = "; ".join(str(x) for x in recovery.get("overridden") or []) or "nothing was refusing it"
        said += (
            f": OVERRIDE past the monitors, because: {_md(recovery.get('override_reason') or recovery.get('reason'))}"
            f" (overriding: {_md(overridden)})"
        )
    elif recovery.get("reason"):
        said += f": {_md(recovery['reason'])}"
    return said


REVIEW_QUESTIONS: tuple[tuple[str, ReviewAnswer], ...] = (
    ("What triggered the incident?", lambda r, a: f"{_md(r['trigger'])} ({_md(r['actor'])}): {_md(r['reason'])}"),
    (
        "When was it detected and halted, and how long after the first bad reading?",
        lambda r, a: (
            f"{_md(r['alerted_at'])} ({_fmt(timings(r)['detect_s'])} after the first bad reading at "
            f"{_md(r['first_reading_at'])})"
        ),
    ),
    (
        "What did the kill switch do, and how long did it take?",
        lambda r, a: (
            "; ".join(f"{_md(x['ts'])} {_md(x['command'])} by {_md(x['actor'])}: {_md(x['result'])}" for x in a)
            or "halt only"
        ),
    ),
    (
        "Were positions closed correctly?",
        lambda r, a: next(
            (_md(x["result"]) for x in reversed(a) if x["command"] == "close-all"),
            "no close-all was run: positions were left to the operator",
        ),
    ),
    ("When was trading resumed, by whom, and was it an override?", lambda r, a: _resumed(r)),
    ("What could prevent it next time?", lambda r, a: "(for the team to answer)"),
)


def _fmt(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds:.1f}s"


def snapshot_positions(snapshot: str | None) -> list[dict[str, Any]] | None:
    """The perps positions (runbook 002) the incident's snapshot captured at the trip, or None: no archive (not
    written yet, or failed), or an engine trading spot (the report has said nothing of its positions)."""
    if not snapshot or not snapshot.endswith(".zip") or not Path(snapshot).is_file():
        return None
    try:
        with zipfile.ZipFile(snapshot) as archive:
            market = json.loads(archive.read("config.json")).get("venue", {}).get("market")
            positions = json.loads(archive.read("positions.json"))
    except (OSError, KeyError, ValueError, AttributeError, zipfile.BadZipFile):
        return None
    if market != "usdm" or not isinstance(positions, list) or not all(isinstance(p, dict) for p in positions):
        return None
    return positions


def report(
    row: Mapping[str, Any],
    alerts: Sequence[Mapping[str, Any]],
    changes: Sequence[Mapping[str, Any]],
    positions: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The post-incident review in Markdown: the timeline and the runbook's questions; on perps, the positions at
    the trip (side, leverage, liquidation price and distance, funding) from its snapshot."""
    actions = json.loads(row.get("actions") or "[]")
    t = timings(row)
    lines = [
        f"# Incident {_md(row['id'])}: {_md(row['trigger'])}",
        "",
        f"- opened: {_md(row['opened_at'])} by {_md(row['actor'])}",
        f"- reason: {_md(row['reason'])}",
        f"- time to detect: {_fmt(t['detect_s'])}; time to act: {_fmt(t['act_s'])}; "
        f"time to recover: {_fmt(t['recover_s'])}",
        f"- snapshot: {_md(row.get('snapshot') or 'none')}",
        "",
        "## Timeline",
        "",
    ]
    events = [
        (
            str(c["ts"]),
            f"trading {_md(c['previous'])} -> {_md(c['state'])} by {_md(c['actor'])}: {_md(c['reason'])}",
        )
        for c in changes
    ]
    events += [(str(a["ts"]), f"{_md(a['severity'])} {_md(a['code'])}: {_md(a['message'])}") for a in alerts]
    events += [
        (
            str(x["ts"]),
            f"{_md(x['command'])} by {_md(x['actor'])} ({'ok' if x['ok'] else 'NOT done'}): {_md(x['result'])}",
        )
        for x in actions
    ]
    lines += [f"- {_md(ts)} {what}" for ts, what in sorted(events)]
    if positions is not None:
        lines += ["", "## Positions at the trip (perps, from the snapshot)", ""]
        lines += [f"- {_md(describe_position(p))}" for p in positions] or ["- none: flat"]
    lines += ["", "## Post-incident review (runbook 001)", ""]
    for question, answer in REVIEW_QUESTIONS:
        lines += [f"**{question}**", "", answer(row, actions), ""]
    return "\n".join(lines)


def report_text(store: Store, incident_id: int) -> str:
    """The post-incident report of ``incident_id`` from the store, in Markdown. KeyError: no such incident."""
    row = store.incident(incident_id)
    if row is None:
        raise KeyError(f"no incident {incident_id}")
    until = row["recovered_at"]
    return report(
        row,
        store.alerts_between(row["first_reading_at"] or row["opened_at"], until),
        store.state_changes(row["opened_at"], until),
        snapshot_positions(row.get("snapshot")),
    )


def write_report(store: Store, data_dir: Path, incident_id: int) -> Path:
    """Write ``DIR/incident_ID.md``, the post-incident report, and return its path. KeyError: no such incident;
    OSError: it could not be written."""
    text = report_text(store, incident_id)
    path = data_dir / f"incident_{incident_id}.md"
    path.write_text(text, encoding="utf-8")
    return path
