"""The first frame without the settings' models: what `cockpit` draws before pydantic is imported, when the
configuration's inputs are those it validated last time.

Loading the settings (pydantic and pydantic-settings imported, twenty-odd models built, then validated) costs more
CPU than Textual's own import, and the first frame needs seven values from it. So after each validation that
passes, `cockpit` keeps those values with a fingerprint of everything the settings are made of: the config file's
bytes and path, `.env`'s bytes, every ``COCKPIT_`` variable and the runbooks' toggles, ``HOME`` and
``XDG_STATE_HOME`` (the default data directory), the working directory, whether ``--data-dir`` was given, and the
size and time of the code that validates (``engine.kernel.config``, this module, pydantic's). A start whose
fingerprint matches draws from them; one that does not loads the settings first as always, and a bad configuration
is said before the screen opens, exactly as before.

The values drawn from are never acted on: the settings are loaded and validated in full right after the first
frame, before the engine is built and before any key acts (the kill switch's keys wait for the engine, as they do
on every start). If that load fails the screen closes with the same message and exit status; if its values differ
from those drawn (something the fingerprint does not cover changed) the screen closes saying so. Live mode, other
engines to watch (``[[remote]]``) and strategy parameters (checked against the strategies' code) are never drawn
early: those starts validate before the screen.

The record holds no secret: the environment's values are only in the fingerprint (a SHA-256 over all inputs).
Decision BEN-06.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.kernel.config import Settings

RECORD = "first-frame.json"
# Variables the settings read besides COCKPIT_*: the runbooks' toggles (``engine.kernel.config.ENV_ALIASES``) and
# where the default data directory is.
OTHER_INPUTS = ("RISK_KILL_SWITCH_ENABLED", "RISK_REDUCE_ONLY_MODE", "DRY_RUN", "HOME", "XDG_STATE_HOME")
CODE = ("engine/kernel/config.py", "engine/api/strategies.py", "cockpit/firstframe.py")


def record_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cockpit" / RECORD


def _config_path(config_file: Path | None) -> Path | None:
    if config_file is not None:
        return config_file
    default = Path("config.toml")
    return default if default.is_file() else None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def fingerprint(config_file: Path | None, data_dir_given: bool) -> str:
    """A digest of every input the settings are made of (see the module's doc)."""
    root = Path(__file__).resolve().parent.parent
    code: list[Any] = [(name, _stat(root / name)) for name in CODE]
    for package in ("pydantic", "pydantic_settings"):
        spec = importlib.util.find_spec(package)  # finds, does not import
        code.append((package, _stat(Path(spec.origin)) if spec and spec.origin else None))
    config = _config_path(config_file)
    env = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("COCKPIT_") or k in OTHER_INPUTS)
    dotenv = Path(".env")
    inputs = [
        code,
        os.getcwd(),
        str(config.resolve()) if config is not None else None,
        _read(config),
        _read(dotenv) if dotenv.is_file() else None,
        env,
        data_dir_given,
    ]
    return hashlib.sha256(repr(inputs).encode("utf-8", "surrogateescape")).hexdigest()


def frame_of(settings: Any) -> dict[str, Any] | None:
    """The values the first frame and the start before it read; None for a start that is never drawn early."""
    if settings.engine.mode == "live" or settings.remote or settings.strategy.params:
        return None
    return {
        "mode": settings.engine.mode,
        "quote_asset": settings.engine.quote_asset,
        "data_dir": str(settings.engine.data_dir),
        "exchange": settings.venue.exchange,
        "symbols": list(settings.venue.symbols),
        "stuck_order_s": settings.monitors.stuck_order_s,
        "screen_min_severity": settings.alerts.screen_min_severity,
        "on_hangup": settings.tui.on_hangup,
        "keys": dict(settings.keys),
    }


def remember(settings: Settings, config_file: Path | None, data_dir: Path | None) -> None:
    """Keep the first frame's values of settings that were just validated (best effort: a cache)."""
    frame = frame_of(settings)
    path = record_path()
    try:
        if frame is None:
            path.unlink(missing_ok=True)
            return
        if data_dir is not None:
            frame.pop("data_dir")  # the command line's, each time
        record = {"fingerprint": fingerprint(config_file, data_dir is not None), "frame": frame}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{RECORD}.{os.getpid()}")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


class Provisional(SimpleNamespace):
    """The settings' values the first frame draws from, before they are validated: ``validate()`` loads the real
    ones (``ConfigError`` as always) and says whether they are the ones drawn."""

    provisional = True
    frame: dict[str, Any]
    load: Callable[[], Settings]

    def validate(self) -> Settings:
        """The settings loaded and checked in full; ``ConfigError`` when they fail, or differ from those drawn."""
        from engine.kernel.config import ConfigError

        settings = self.load()
        frame = frame_of(settings)
        if frame is not None and "data_dir" not in self.frame:
            frame.pop("data_dir")
        if frame != self.frame:
            raise ConfigError(
                "the configuration changed while cockpit was starting (what the screen showed is not what was "
                "loaded); start cockpit again"
            )
        return settings


def validated(config_file: Path | None, data_dir: Path | None) -> Settings:
    """The settings from their sources, checked in full (the strategies' parameters too): ``ConfigError``."""
    from engine.api.strategies import check
    from engine.kernel.config import load_settings

    settings = load_settings(config_file, data_dir)
    check(settings)
    return settings


def recalled(config_file: Path | None, data_dir: Path | None) -> Provisional | None:
    """The first frame's values when the inputs are those validated last time, else None (load them first)."""
    try:
        record = json.loads(record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint(config_file, data_dir is not None):
        return None
    frame = record.get("frame")
    if not isinstance(frame, dict):
        return None
    where = str(data_dir) if data_dir is not None else frame.get("data_dir")
    if not isinstance(where, str):
        return None
    try:
        return Provisional(
            frame=frame,
            load=lambda: validated(config_file, data_dir),
            engine=SimpleNamespace(mode=frame["mode"], quote_asset=frame["quote_asset"], data_dir=Path(where)),
            venue=SimpleNamespace(exchange=frame["exchange"], symbols=tuple(frame["symbols"])),
            monitors=SimpleNamespace(stuck_order_s=frame["stuck_order_s"]),
            alerts=SimpleNamespace(screen_min_severity=frame["screen_min_severity"]),
            tui=SimpleNamespace(on_hangup=frame["on_hangup"]),
            keys=dict(frame["keys"]),
            remote=(),
        )
    except (KeyError, TypeError):
        return None


_collector_held = False


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """Python's cyclic garbage collector off from here until the screen's first frame is drawn (the app calls
    ``release_collector`` once its footer's keys are on the screen) or this start ends without one.

    A start allocates hundreds of thousands of objects (Textual's and the cockpit's modules, the screen's widgets
    and styles) and frees almost none: each collection the allocations set off walks them all again to find nothing.
    That was 20-35 ms of the ~370 ms of CPU to the first frame (a bare Textual app's start pays ~16). Nothing is
    lost by waiting: what is garbage then is collected right after the frame (decision BEN-14)."""
    global _collector_held
    if gc.isenabled():
        gc.disable()
        _collector_held = True
    try:
        yield
    finally:
        release_collector()


def release_collector() -> None:
    """The collector on again, if ``collector_held`` turned it off (else nothing: a test's or a caller's own
    setting is left as it is)."""
    global _collector_held
    if _collector_held:
        _collector_held = False
        gc.enable()
