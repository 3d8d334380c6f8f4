"""The strategies as the command line sees them: what is found (``cockpit strategy list``), a new file from the
template (``cockpit strategy new NAME``), and the check of ``[strategy.params.*]`` at start."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.kernel.config import Settings
from engine.kernel.events import utcnow
from engine.store.db import DB_NAME, Store
from engine.strategies import loader, runner
from engine.strategies.streak import LossStreakGuard
from engine.strategies.template import render

NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def check(settings: Settings) -> None:
    """ConfigError when a ``[strategy.params.NAME]`` table names no strategy or holds a wrong value."""
    if settings.strategy.params:
        loader.check(settings.strategy)


def records(data_dir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each of ``names``' record (round trips, wins, realised PnL, losses in a row) and on/off state (who switched it
    off, when, why, until when) as the store in ``data_dir`` keeps them: what the engine restores at start (decision
    STR-09). Empty without a store."""
    if not (data_dir / DB_NAME).exists():
        return {}
    store = Store.in_dir(data_dir, readonly=True)
    try:
        trips = [(t["opened_by"], Decimal(t["pnl"])) for t in store.round_trips()]
        saved = store.load_json("strategy_guard")
    finally:
        store.close()
    guard = LossStreakGuard.from_dict(saved) if saved else None
    now = utcnow()
    out = {}
    for name, stats in runner.records(trips, names).items():
        state: dict[str, Any] = guard.status(name, now) if guard is not None else {"enabled": True}
        out[name] = {
            "round_trips": stats.round_trips,
            "wins": stats.wins,
            "losses": stats.losses,
            "consecutive_losses": stats.consecutive_losses,
            "realised_pnl": str(stats.realised_pnl),
            "win_rate": None if stats.win_rate is None else str(stats.win_rate),
            "enabled": state["enabled"],
            "disabled_by": state.get("disabled_by"),
            "disabled_at": _iso(state.get("disabled_at")),
            "disabled_until": _iso(state.get("disabled_until")),
            "reason": state.get("reason", ""),
        }
    return out


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="seconds")


def found(settings: Settings) -> list[dict[str, Any]]:
    """Every strategy found, with its source, whether it runs, its parameters, the error of one that failed, and its
    record and on/off state as the store keeps them (``record``: None where nothing has run)."""
    cfg = settings.strategy
    discovered = loader.discover(cfg)
    kept = records(settings.engine.data_dir, [f.name for f in discovered])
    out = []
    for f in discovered:
        builtin = f.source == loader.BUILT_IN
        runs = cfg.enabled and (getattr(cfg, f.name).enabled if builtin else f.name in cfg.run)
        out.append(
            {
                "name": f.name,
                "source": f.source,
                "runs": bool(runs) and f.error is None,
                "timeframe": f.cls.timeframe if f.cls is not None else None,
                "history": f.cls.history if f.cls is not None else None,
                "params": f.params(),
                "error": f.error,
                "record": kept.get(f.name),
            }
        )
    return out


def new(settings: Settings, name: str) -> Path:
    """Write the template for ``name`` into the first of ``[strategy] paths`` (created if missing); its path.
    ValueError for a bad name or a file that is there already."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a strategy name: use lower-case letters, digits and _ (starting with a letter)"
        )
    if name in {c.name for c in loader.BUILT_INS}:
        raise ValueError(f"{name!r} is a built-in strategy's name; choose another")
    directory = settings.strategy.paths[0]
    path = directory / f"{name}.py"
    if path.exists():
        raise ValueError(f"{path} exists already; edit it, or choose another name")
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(render(name), encoding="utf-8")
    return path
