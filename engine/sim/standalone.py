"""Run the simulator in the foreground until SIGINT/SIGTERM (``cockpit sim``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

from .access import ENV_TOKEN, TokenFileError, default_token_file, remove_token_file, write_token_file
from .auth import ApiKey
from .replay import ReplayError
from .server import Simulator

log = logging.getLogger(__name__)

KEY_FIELDS = {"key", "secret", "can_trade", "can_withdraw", "can_read", "ip_restrict"}


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file and the entry."""


def load_keys(path: str | Path) -> tuple[ApiKey | None, list[ApiKey]]:
    """Read a TOML keys file: an optional ``[main]`` key (key, secret) and ``[[keys]]`` entries with
    key, secret, can_trade (default true), can_withdraw (default false), can_read, ip_restrict."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KeysFileError(f"{path}: {exc}") from None

    def entry(raw: Any, where: str) -> ApiKey:
        if not isinstance(raw, dict):
            raise KeysFileError(f"{path}: {where} must be a table")
        unknown = set(raw) - KEY_FIELDS
        if unknown:
            raise KeysFileError(
                f"{path}: {where}: unknown field(s) {', '.join(sorted(unknown))} "
                f"(valid: {', '.join(sorted(KEY_FIELDS))})"
            )
        for name in ("key", "secret"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise KeysFileError(f"{path}: {where}: {name} must be a non-empty string")
        for name in KEY_FIELDS - {"key", "secret"}:
            if name in raw and not isinstance(raw[name], bool):
                raise KeysFileError(f"{path}: {where}: {name} must be true or false")
        return ApiKey(**raw)

    unknown_tables = set(data) - {"main", "keys"}
    if unknown_tables:
        raise KeysFileError(f"{path}: unknown table(s) {', '.join(sorted(unknown_tables))} (valid: main, keys)")
    main = entry(data["main"], "[main]") if "main" in data else None
    extra = data.get("keys", [])
    if not isinstance(extra, list):
        raise KeysFileError(f"{path}: keys must be an array of tables ([[keys]])")
    return main, [entry(raw, f"[[keys]] #{i + 1}") for i, raw in enumerate(extra)]


def _publish_token(sim: Simulator, token_file: str | Path | None) -> Path | None:
    """Write the control token where ``cockpit sim fault`` looks (0600); None (and a warning) if it cannot."""
    path = Path(token_file) if token_file else default_token_file(sim.rest_port)
    try:
        write_token_file(path, sim.control_token)
    except (OSError, TokenFileError) as exc:
        log.warning(
            "cannot write the control token file %s: %s; give `cockpit sim fault` the printed token in $%s",
            path,
            exc,
            ENV_TOKEN,
        )
        return None
    sim.control_token_file = path
    return path


async def _serve(sim: Simulator, token_file: str | Path | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with sim:
            path = _publish_token(sim, token_file)
            try:
                # The operator copies these lines into the cockpit config; the secrets go to stdout only.
                print(f"REST {sim.rest_url}", flush=True)
                print(f"WS {sim.ws_url}", flush=True)
                print(f"API key {sim.api_key}", flush=True)
                print(f"API secret {sim.api_secret}", flush=True)
                print(
                    f"Faults: cockpit sim fault NAME --rest {sim.rest_url}  (control API {sim.rest_url}/sim/faults)",
                    flush=True,
                )
                if path is not None:
                    print(f"Control token file {path}", flush=True)
                print(f"Control token {sim.control_token}", flush=True)
                if sim.market != "spot":
                    print(f"Market {sim.market}: USDⓈ-M futures under {sim.rest_url}/fapi", flush=True)
                await stop.wait()
                log.info("signal received, stopping")
            finally:
                if path is not None:
                    remove_token_file(path, sim.control_token)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(
    rest_port: int,
    ws_port: int,
    seed: int,
    host: str = "127.0.0.1",
    *,
    speed: float = 1.0,
    replay: dict[str, str] | None = None,
    replay_start: int | None = None,
    keys_file: str | None = None,
    history_days: float = 14,
    tick_interval: float = 0.25,
    weight_limit: int = 6000,
    token_file: str | Path | None = None,
    symbols: int = 0,
    market: str = "spot",
    funding_interval_s: float = 8 * 3600,
) -> int:
    """Serve until SIGINT/SIGTERM; print REST/WS URLs, the API key and secret, the fault command and the control
    token (also written, owner-only, to ``token_file``, default :func:`default_token_file` of the REST port, and
    removed at exit) once serving; return 0 (1 if a port cannot be bound, 2 for a bad keys file, CSV or option)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        main_key, keys = load_keys(keys_file) if keys_file else (None, [])
        sim = Simulator(
            seed=seed,
            rest_port=rest_port,
            ws_port=ws_port,
            host=host,
            speed=speed,
            replay=replay,
            replay_start=replay_start,
            history_days=history_days,
            tick_interval=tick_interval,
            weight_limit=weight_limit,
            symbols=symbols,
            market=market,
            funding_interval_s=funding_interval_s,
            keys=[main_key, *keys] if main_key else keys,
            api_key=main_key.key if main_key else None,
            api_secret=main_key.secret if main_key else None,
        )
    except (KeysFileError, ReplayError, ValueError) as exc:
        log.error("cannot start simulator: %s", exc)
        return 2
    try:
        asyncio.run(_serve(sim, token_file))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were installed
        return 0
    except OSError as exc:
        log.error("cannot start simulator: %s", exc)
        return 1
    return 0
