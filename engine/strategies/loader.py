"""Finding strategies: the built-ins, Python files under ``[strategy] paths``, and the ``cockpit.strategies`` entry
points; then building the ones to run, their parameters validated against each strategy's own ``Params``.

A file that fails to import, or a class that breaks the API's rules, is recorded with its error and disables only
itself: ``cockpit strategy list`` names it, and the engine alerts ``STRATEGY_LOAD_FAILED`` when it was to run. A
parameter that is wrong is a configuration error (exit 2 at start), like any other setting.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.kernel.config import ConfigError, StrategyConfig
from engine.strategies.api import TIMEFRAMES_MS, Strategy
from engine.strategies.ladder import Ladder
from engine.strategies.ma_cross import MaCross
from engine.strategies.mean_reversion import MeanReversion

ENTRY_POINT_GROUP = "cockpit.strategies"
BUILT_INS: tuple[type[Strategy], ...] = (Ladder, MaCross, MeanReversion)
BUILT_IN = "built-in"


@dataclass(frozen=True)
class Found:
    """One strategy found, or one source that failed to give one (``error`` says why, ``cls`` is None)."""

    name: str
    source: str  # "built-in", the file, or "entry point NAME = module:attr"
    cls: type[Strategy] | None = None
    error: str | None = None

    def params(self) -> list[dict[str, Any]]:
        """Each parameter's name, type, default and bounds, for `cockpit strategy list`."""
        if self.cls is None:
            return []
        out = []
        for key, info in self.cls.Params.model_fields.items():
            if key == "enabled":
                continue
            bounds = {
                type(m).__name__.lower(): getattr(m, type(m).__name__.lower())
                for m in info.metadata
                if type(m).__name__ in ("Gt", "Ge", "Lt", "Le")
            }
            kind = getattr(info.annotation, "__name__", str(info.annotation))
            out.append({"name": key, "type": kind, "default": info.default, "bounds": bounds})
        return out


@dataclass
class Loaded:
    """The strategies to run, and the error of each one named in ``[strategy] run`` that could not be built."""

    strategies: list[Strategy] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _short_error(exc: BaseException, file: Path | None = None) -> str:
    """The error and, for a file, the line of it that raised: what the author needs to fix it."""
    where = ""
    if file is not None and not isinstance(exc, SyntaxError):  # a SyntaxError names its line itself
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
        if frames:
            where = f" (line {frames[-1].lineno})"
    return f"{type(exc).__name__}: {exc}{where}"[:500]


def _problem(cls: type[Strategy]) -> str | None:
    """What in ``cls`` breaks the API's rules, or None."""
    if not cls.name or not cls.name.replace("_", "").replace("-", "").isalnum():
        return f"class {cls.__name__}: name {cls.name!r} must be a word (letters, digits, _ or -)"
    if cls.timeframe is not None and cls.timeframe not in TIMEFRAMES_MS:
        return f"{cls.name}: timeframe {cls.timeframe!r} is not one of {', '.join(TIMEFRAMES_MS)}"
    if not isinstance(cls.history, int) or cls.history < 0 or cls.history > 5000:
        return f"{cls.name}: history must be a whole number of candles from 0 to 5000"
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
        return f"{cls.name}: Params must be a subclass of engine.strategies.api.Params"
    if cls.decide is Strategy.decide:
        return f"{cls.name}: has no decide(view) method"
    return None


def _from_file(file: Path) -> list[Found]:
    tag = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    module_name = f"cockpit_user_strategy_{tag}_{file.stem}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            return [Found(file.stem, str(file), error="not a Python file that can be imported")]
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # pydantic and dataclasses look their module up by name
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the plugin boundary: a user's file may fail in any way
        sys.modules.pop(module_name, None)
        return [Found(file.stem, str(file), error=_short_error(exc, file))]
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, Strategy) and c.__module__ == module_name and not inspect.isabstract(c) and c.name
    ]
    if not classes:
        return [Found(file.stem, str(file), error="no Strategy subclass with a name in this file")]
    return [Found(c.name, str(file), c, _problem(c)) for c in classes]


def _from_entry_points() -> list[Found]:
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {ep.name} = {ep.value}"
        try:
            cls = ep.load()
        except (Exception, SystemExit) as exc:
            found.append(Found(ep.name, source, error=_short_error(exc)))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            found.append(Found(ep.name, source, error="does not name a Strategy subclass"))
            continue
        found.append(Found(cls.name or ep.name, source, cls, _problem(cls)))
    return found


def discover(cfg: StrategyConfig) -> list[Found]:
    """Every strategy found, in order: built-ins, files (by directory, then file name), entry points. A second
    strategy of a name already taken is an error of its own."""
    found: list[Found] = [Found(c.name, BUILT_IN, c) for c in BUILT_INS]
    for directory in cfg.paths:
        if directory.is_dir():
            for file in sorted(directory.glob("*.py")):
                if not file.name.startswith("_"):
                    found += _from_file(file)
    found += _from_entry_points()
    seen: dict[str, Found] = {}
    out = []
    for f in found:
        first = seen.get(f.name)
        if first is not None and f.cls is not None:
            f = Found(f.name, f.source, None, f"the name {f.name!r} is taken by {first.source}; rename one of them")
        elif f.cls is not None:
            seen[f.name] = f
        out.append(f)
    return out


def params_of(found: Found, cfg: StrategyConfig) -> BaseModel:
    """The parameters of a found strategy, from ``[strategy.params.NAME]``; ConfigError naming each wrong key."""
    assert found.cls is not None
    if found.source == BUILT_IN:
        params: BaseModel = getattr(cfg, found.name)
        return params
    try:
        return found.cls.Params(**cfg.params.get(found.name, {}))
    except ValidationError as exc:
        lines = [f"[strategy.params.{found.name}]: {exc.error_count()} invalid parameter(s):"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(table)"
            what = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {key}: {what}")
        known = ", ".join(found.cls.Params.model_fields) or "none"
        lines.append(f"  ({found.name}'s parameters: {known}; `cockpit strategy list` shows their bounds)")
        raise ConfigError("\n".join(lines)) from None


def check(cfg: StrategyConfig, found: list[Found] | None = None) -> None:
    """The configuration's side of the strategies: every ``params`` table names a strategy found (one that failed
    to load is judged when it loads), and its values fit that strategy's ``Params``."""
    found = discover(cfg) if found is None else found
    by_name = {f.name: f for f in found if f.cls is not None}
    broken = {f.name for f in found if f.cls is None}
    for name in cfg.params:
        if name in broken:
            continue
        f = by_name.get(name)
        if f is None:
            raise ConfigError(
                f"[strategy.params.{name}]: no strategy named {name!r} was found; `cockpit strategy list` shows "
                "what is found under [strategy] paths"
            )
        if f.source == BUILT_IN:
            raise ConfigError(
                f"[strategy.params.{name}]: the built-in {name}'s parameters are set in [strategy.{name}]"
            )
        params_of(f, cfg)


def load_strategies(cfg: StrategyConfig, symbols: tuple[str, ...]) -> Loaded:
    """The strategies to run: the built-ins enabled in their own tables, then each one named in ``run``; none when
    the master switch is off. A wrong parameter raises ConfigError; a strategy that cannot be built is a failure."""
    loaded = Loaded()
    if not cfg.enabled:
        return loaded
    if cfg.ladder.enabled:
        loaded.strategies.append(Ladder(cfg.ladder, symbols))
    if cfg.ma_cross.enabled:
        loaded.strategies.append(MaCross(cfg.ma_cross, symbols))
    if cfg.mean_reversion.enabled:
        loaded.strategies.append(MeanReversion(cfg.mean_reversion, symbols))
    if not cfg.run and not cfg.params:
        return loaded
    found = discover(cfg)
    check(cfg, found)
    for name in dict.fromkeys(cfg.run):
        match = [f for f in found if f.name == name]
        usable = next((f for f in match if f.cls is not None and f.error is None), None)
        if usable is None or usable.cls is None:
            errors = [f"{f.source}: {f.error}" for f in found if f.error and (f.name == name or f.cls is None)]
            loaded.failures[name] = (
                "; ".join(errors)
                if errors
                else f"not found under [strategy] paths ({', '.join(map(str, cfg.paths))}) nor in an entry point"
            )
            continue
        if usable.source == BUILT_IN:
            continue  # a built-in runs by its own table's `enabled`
        wanted = usable.cls.symbols or symbols
        missing = [s for s in wanted if s not in symbols]
        if missing:
            loaded.failures[name] = f"trades {', '.join(missing)}, not in [venue] symbols ({', '.join(symbols)})"
            continue
        params = params_of(usable, cfg)
        try:
            loaded.strategies.append(usable.cls(params, tuple(wanted)))
        except Exception as exc:  # the plugin boundary: a user's constructor may fail in any way
            loaded.failures[name] = _short_error(exc, Path(usable.source))
    return loaded
