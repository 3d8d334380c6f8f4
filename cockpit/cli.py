"""The one program: ``cockpit`` opens the TUI; subcommands run the simulator or the engine headless.

``--config FILE`` and ``--data-dir DIR`` are accepted by every subcommand, before or after its name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from engine.config import ConfigError, Settings, load_settings


def _live_flag(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument("--confirm-live", action="store_true", default=False if top else argparse.SUPPRESS,
                        help='confirm real-money trading when [engine] mode = "live" (or COCKPIT_CONFIRM_LIVE=1)')


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=default, metavar="FILE",
                        help="TOML configuration file (default: ./config.toml if present)")
    parser.add_argument("--data-dir", type=Path, default=default, metavar="DIR",
                        help="where the SQLite store, lock and log live (default: [engine] data_dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="Terminal cockpit for a crypto trading engine. With no command, opens the cockpit.",
    )
    _common(parser, top=True)
    _live_flag(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tui = sub.add_parser("tui", help="open the full-screen cockpit (the default)")
    _common(tui, top=False)
    _live_flag(tui, top=False)

    sim = sub.add_parser(
        "sim", help="run the Binance-compatible simulator alone until Ctrl+C; `cockpit sim fault --help` for faults")
    _common(sim, top=False)
    sim.add_argument("--rest-port", type=int, default=8080, metavar="P",
                     help="REST port (default 8080, where `cockpit sim fault` looks; 0: a free port)")
    sim.add_argument("--ws-port", type=int, default=8081, metavar="Q", help="websocket port (default 8081; 0: free)")
    sim.add_argument("--seed", type=int, default=1, metavar="S", help="price feed seed (same seed, same prices)")
    sim.add_argument("--speed", type=float, default=1.0, metavar="X",
                     help="simulated time runs X times faster than real time (accelerated paper runs)")
    sim.add_argument("--replay", action="append", default=[], metavar="SYMBOL=CSV",
                     help="replay an OHLCV CSV for SYMBOL (e.g. BTCUSDT=btc.csv) instead of the seeded feed; repeatable")
    sim.add_argument("--replay-start", type=int, default=None, metavar="MS",
                     help="start the replay at this timestamp (ms since the epoch)")
    sim.add_argument("--keys", default=None, metavar="FILE",
                     help="TOML file of API keys and their permissions (see docs/simulator.md)")
    sim.add_argument("--history-days", type=float, default=14, metavar="N", help="days of kline history (default 14)")
    sim.add_argument("--tick", type=float, default=0.25, metavar="SECONDS", help="seconds between price ticks")
    sim.add_argument("--weight-limit", type=int, default=6000, metavar="N",
                     help="request weight allowed per minute before HTTP 429 (default 6000, as Binance)")

    run = sub.add_parser("run", help="run the engine without the TUI, logging JSON lines to stderr")
    _common(run, top=False)
    run.add_argument("--headless", action="store_true", required=True, help="no TUI (required)")
    _live_flag(run, top=False)
    for name, help_text in (
        ("halt", "halt the running engine: no new orders (works with no engine running too)"),
        ("resume", "resume trading on the running engine"),
        ("reduce-only", "only orders that shrink a position from now on"),
        ("cancel-all", "halt, then cancel every open order at the venue"),
        ("strategy", "enable or disable a strategy: cockpit strategy enable|disable NAME"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        _common(cmd, top=False)
        if name == "strategy":
            cmd.add_argument("action", choices=("enable", "disable"))
            cmd.add_argument("name", help="strategy name, e.g. ladder, ma_cross, mean_reversion")
        cmd.add_argument("--reason", default=f"{name} from the command line", help="recorded with the command")
        cmd.add_argument("--timeout", type=float, default=15.0, metavar="S",
                         help="seconds to wait for the engine's answer (default 15)")
    status = sub.add_parser("status", help="print the trading state, open orders and latest alerts")
    _common(status, top=False)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["sim", "fault"]:
        # `cockpit sim fault NAME [options] [--for S]`, `... fault clear`, `... fault list`: the simulator's own
        # CLI, against a running simulator's control API (see docs/simulator.md).
        from engine.sim.faultcli import main as fault_main

        return fault_main(argv[2:])
    args = build_parser().parse_args(argv)
    command = args.command or "tui"
    if command == "sim":
        from engine.sim.standalone import main as sim_main

        for name, port in (("--rest-port", args.rest_port), ("--ws-port", args.ws_port)):
            if not 0 <= port <= 65535:
                print(f"cockpit sim: {name} {port} is not a port (0-65535)", file=sys.stderr)
                return 2
        replay: dict[str, str] = {}
        for item in args.replay:
            symbol, sep, path = item.partition("=")
            if not sep or not symbol or not path:
                print(f"cockpit sim: --replay {item!r} must look like BTCUSDT=prices.csv", file=sys.stderr)
                return 2
            replay[symbol.upper()] = path
        return sim_main(args.rest_port, args.ws_port, args.seed, speed=args.speed, replay=replay or None,
                        replay_start=args.replay_start, keys_file=args.keys, history_days=args.history_days,
                        tick_interval=args.tick, weight_limit=args.weight_limit)
    try:
        settings = load_settings(args.config, args.data_dir)
    except ConfigError as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return 2
    confirm_live = args.confirm_live or os.environ.get("COCKPIT_CONFIRM_LIVE", "").lower() in ("1", "true", "yes")
    if command == "run":
        return _run_headless(settings, confirm_live)
    if command in ("halt", "resume", "reduce-only", "cancel-all", "strategy"):
        from engine.remote import send

        extra = {"name": args.name, "enabled": args.action == "enable"} if command == "strategy" else None
        ok, message = send(settings.engine.data_dir, command, args.reason, args.timeout, extra)
        print(message, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if command == "status":
        from cockpit.status import print_status

        return print_status(settings, as_json=args.json)
    return _run_tui(settings, confirm_live)


def _run_tui(settings: Settings, confirm_live: bool) -> int:
    from cockpit.app import CockpitApp
    from engine.core import Engine

    log_path = Path(settings.engine.data_dir) / "cockpit.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_path, level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = CockpitApp(Engine(settings, confirm_live=confirm_live))
    app.run()
    return app.return_code or 0


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _run_headless(settings: Settings, confirm_live: bool) -> int:
    from engine.core import Engine, EngineError
    from engine.datadir import DataDirBusy

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.Formatter.converter = __import__("time").gmtime
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("websockets").setLevel(logging.WARNING)

    async def run() -> int:
        engine = Engine(settings, confirm_live=confirm_live)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await engine.start()
        except (EngineError, DataDirBusy) as exc:
            logging.getLogger("cockpit").error("%s", exc)
            return 2
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(engine.failed.wait())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            failing.cancel()
            await engine.stop("signal received" if stop.is_set() else "engine failed")
        if engine.fatal_error:
            logging.getLogger("cockpit").error("%s", engine.fatal_error)
            return 2
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
