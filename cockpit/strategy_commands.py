"""``cockpit strategy new NAME`` and ``cockpit strategy list``: the strategies users write (docs/strategies.md)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

from engine.api import strategies
from engine.kernel.config import Settings
from engine.kernel.text import inert


def new(settings: Settings, name: str) -> int:
    """Write the template; print its path, and how to run it."""
    try:
        path = strategies.new(settings, name)
    except ValueError as exc:
        print(f"cockpit strategy new: {inert(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cockpit strategy new: cannot write it: {inert(exc.strerror or exc)}", file=sys.stderr)
        return 1
    print(path)
    print(
        f'to run it: add run = ["{name}"] under [strategy] in config.toml; `cockpit strategy list` shows it',
        file=sys.stderr,
    )
    return 0


def listing(settings: Settings, as_json: bool) -> int:
    """Every strategy found: where from, whether it runs, its parameters; the error of one that failed to load.
    Exit 1 when one named in ``[strategy] run`` cannot run."""
    found = strategies.found(settings)
    if as_json:
        print(json.dumps(found, default=str))
    else:
        for s in found:
            state = "FAILED" if s["error"] else ("runs" if s["runs"] else "off")
            timeframe = f" · {s['timeframe']} candles, {s['history']} needed" if s["timeframe"] else ""
            print(f"{inert(s['name'])}  {state}  ({inert(s['source'])}){timeframe}")
            if s["error"]:
                print(f"    error: {inert(s['error'], limit=500)}")
            record = s["record"]
            if record is not None and (s["runs"] or record["round_trips"] or not record["enabled"]):
                print(f"    {_record(record)}")
                if not record["enabled"]:
                    print(f"    {_switched_off(record)}")
            for p in s["params"]:
                bounds = " ".join(f"{k} {v}" for k, v in p["bounds"].items())
                print(
                    f"    {inert(p['name'])}: {inert(p['type'])} = {inert(p['default'])}"
                    + (f" ({bounds})" if bounds else "")
                )
    names = {s["name"] for s in found if s["error"] is None}
    missing = [n for n in settings.strategy.run if n not in names]
    if missing:
        print(
            f"cockpit strategy list: [strategy] run names {', '.join(map(inert, missing))}: not loaded", file=sys.stderr
        )
        return 1
    return 0


def _record(r: dict[str, Any]) -> str:
    """One strategy's record as the store keeps it (what a restart goes on from)."""
    won = f" ({Decimal(r['win_rate']) * 100:.0f} % won)" if r["win_rate"] is not None else ""
    return (
        f"record: {r['round_trips']} round trip(s){won}, realised PnL {Decimal(r['realised_pnl']):.2f}, "
        f"{r['consecutive_losses']} lost in a row"
    )


def _switched_off(r: dict[str, Any]) -> str:
    """Who switched it off, when, why, and when its check comes round (a failure, a losing streak)."""
    until = f"; checked again at {r['disabled_until']}" if r["disabled_until"] else ""
    return f"switched off by {inert(r['disabled_by'])} at {r['disabled_at']}{until}: {inert(r['reason'], limit=300)}"
