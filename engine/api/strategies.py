"""The strategies as the command line sees them: what is found (``cockpit strategy list``), a new file from the
template (``cockpit strategy new NAME``), and the check of ``[strategy.params.*]`` at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.kernel.config import Settings
from engine.strategies import loader
from engine.strategies.template import render

NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def check(settings: Settings) -> None:
    """ConfigError when a ``[strategy.params.NAME]`` table names no strategy or holds a wrong value."""
    if settings.strategy.params:
        loader.check(settings.strategy)


def found(settings: Settings) -> list[dict[str, Any]]:
    """Every strategy found, with its source, whether it runs, its parameters, and the error of one that failed."""
    cfg = settings.strategy
    out = []
    for f in loader.discover(cfg):
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
