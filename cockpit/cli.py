"""The one program: ``cockpit`` opens the TUI; subcommands run the simulator or the engine headless.

``--config FILE`` and ``--data-dir DIR`` are accepted by every subcommand, before or after its name.

Why one module of this length: the argument parser of every subcommand is here, so the commands, their flags and
their exit codes can be read as one contract; what each command does lives elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cockpit.quick import MESSAGE_LIMIT  # shared with the kill switch's quick path, which answers before the rest
from cockpit.quick import text as _text
from engine.kernel.text import inert

if TYPE_CHECKING:
    from engine.kernel.config import Settings

# The rest of the engine (the command table, the settings' models, the store) is imported where a command needs it:
# the kill switch from a second shell (cockpit.quick) answers before any of it is loaded.


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _live_flag(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "--confirm-live",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help='confirm real-money trading when [engine] mode = "live" (or COCKPIT_CONFIRM_LIVE=1)',
    )


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="TOML configuration file (default: ./config.toml if present)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="where the SQLite store, lock and log live (default: [engine] data_dir)",
    )


class _ScreenParser(argparse.ArgumentParser):
    """A parser that says nothing when it cannot read its arguments: the full one reads them again and says it."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def _screen_parser() -> argparse.ArgumentParser:
    """The top level's options alone (``--config``, ``--data-dir``, ``--confirm-live``, ``--url``, ``--token-file``),
    as ``build_parser`` declares them, with no command and no ``-h``: what ``cockpit`` with no command reads."""
    parser = _ScreenParser(prog="cockpit", add_help=False, exit_on_error=False)
    _common(parser, top=True)
    _live_flag(parser, top=True)
    _attach_flags(parser, top=True)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line as ``build_parser`` reads it. The screen's (no command: only the top level's options) is
    read without building every command's parser, which loads the command table (the engine's records: tens of
    milliseconds before the first frame, decision BEN-10); anything else (a command, ``-h``, an option it does not
    know or a value it cannot read) goes to the full parser, which says what is wrong exactly as before."""
    try:
        args, rest = _screen_parser().parse_known_args(argv)
    except argparse.ArgumentError:
        rest = ["(the full parser says what is wrong)"]
    if rest:
        return build_parser().parse_args(argv)
    args.command = None
    return args


def _attach_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "--url",
        action="append",
        default=None if top else argparse.SUPPRESS,
        metavar="URL",
        help="attach to the engine's remote API at URL (http(s)://HOST:PORT), with --token-file; repeated, "
        "watch several engines (a list shows each; e selects)",
    )
    parser.add_argument(
        "--token-file",
        action="append",
        type=Path,
        default=None if top else argparse.SUPPRESS,
        metavar="FILE",
        help="the bearer token for --url (`cockpit api token create`), in a file readable by you alone: one for "
        "every --url, or one per --url in the same order",
    )


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
    for where, top in ((parser, True), (tui, False)):  # attach to a remote engine instead of the data directory's
        _attach_flags(where, top=top)

    sim = sub.add_parser(
        "sim", help="run the Binance-compatible simulator alone until Ctrl+C; `cockpit sim fault --help` for faults"
    )
    _common(sim, top=False)
    sim.add_argument(
        "--rest-port",
        type=int,
        default=8080,
        metavar="P",
        help="REST port (default 8080, where `cockpit sim fault` looks; 0: a free port)",
    )
    sim.add_argument("--ws-port", type=int, default=8081, metavar="Q", help="websocket port (default 8081; 0: free)")
    sim.add_argument("--seed", type=int, default=1, metavar="S", help="price feed seed (same seed, same prices)")
    sim.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="simulated time runs X times faster than real time (accelerated paper runs)",
    )
    sim.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="SYMBOL=CSV",
        help="replay an OHLCV CSV for SYMBOL (e.g. BTCUSDT=btc.csv) instead of the seeded feed; repeatable",
    )
    sim.add_argument(
        "--replay-start",
        type=int,
        default=None,
        metavar="MS",
        help="start the replay at this timestamp (ms since the epoch)",
    )
    sim.add_argument(
        "--keys",
        default=None,
        metavar="FILE",
        help="TOML file of API keys and their permissions (see docs/simulator.md)",
    )
    sim.add_argument("--history-days", type=float, default=14, metavar="N", help="days of kline history (default 14)")
    sim.add_argument("--tick", type=float, default=0.25, metavar="SECONDS", help="seconds between price ticks")
    sim.add_argument(
        "--weight-limit",
        type=int,
        default=6000,
        metavar="N",
        help="request weight allowed per minute before HTTP 429 (default 6000, as Binance)",
    )
    sim.add_argument(
        "--symbols",
        type=int,
        default=0,
        metavar="N",
        help="list N synthetic USDT markets beside BTCUSDT and ETHUSDT: SYM01USDT, SYM02USDT... (default 0)",
    )
    sim.add_argument(
        "--market",
        choices=("spot", "usdm", "both"),
        default="spot",
        help="what the venue serves: spot (/api/v3, the default), usdm (USDⓈ-M perpetuals: /fapi) or both",
    )
    sim.add_argument(
        "--funding-interval",
        type=float,
        default=8 * 3600,
        metavar="SECONDS",
        help="USDⓈ-M funding every SECONDS of simulated time (default 28800: 8 hours, as Binance)",
    )

    run = sub.add_parser("run", help="run the engine without the TUI, logging JSON lines to stderr")
    _common(run, top=False)
    run.add_argument("--headless", action="store_true", required=True, help="no TUI (required)")
    _live_flag(run, top=False)
    from engine.kernel.commands import SPECS

    for spec in SPECS:
        cmd = sub.add_parser(spec.name, help=spec.help)
        _common(cmd, top=False)
        if spec.name == "strategy":
            # new and list work on files, with no engine (cockpit/strategy_commands.py)
            cmd.add_argument("action", choices=("enable", "disable", "new", "list"))
            cmd.add_argument("name", nargs="?", type=_text, help="strategy name, e.g. ladder, ma_cross, mean_reversion")
        elif spec.name == "close":
            cmd.add_argument("symbol", type=_text, help="a configured symbol, e.g. BTC/USDT (or BTCUSDT)")
        elif spec.name == "order":
            cmd.add_argument("side", choices=("buy", "sell"))
            cmd.add_argument("symbol", type=_text, help="a configured symbol, e.g. BTC/USDT (or BTCUSDT)")
            cmd.add_argument("amount", type=_decimal, help="amount in the base asset, e.g. 0.001")
            cmd.add_argument(
                "--price", type=_decimal, default=None, metavar="P", help="limit price (without it: a market order)"
            )
            cmd.add_argument(
                "--stop-loss",
                type=_decimal,
                default=None,
                metavar="P",
                help="stop price under the entry (required for buys while [risk] require_stop_loss)",
            )
            cmd.add_argument(
                "--take-profit",
                type=_decimal,
                default=None,
                metavar="P",
                help="a buy's take-profit above the entry: it rests with the stop as one OCO at the venue",
            )
        elif spec.name == "ack":
            cmd.add_argument("ids", nargs="*", type=int, metavar="ID", help="alert ids (see `cockpit status`)")
            cmd.add_argument("--all", action="store_true", dest="every", help="every unacknowledged alert")
        elif spec.name == "mode":
            cmd.add_argument(
                "mode", choices=("paper", "dry-run", "live"), help="dry-run, or back to the mode the engine started in"
            )
        elif spec.name == "resume":
            cmd.add_argument(
                "--override",
                type=_text,
                default=None,
                metavar="REASON",
                help="resume past the monitors that still refuse it, saying why it is safe (audited and alerted "
                "as an override; needs a running engine)",
            )
        elif spec.name == "cancel-all":
            cmd.add_argument(
                "--include-stops",
                action="store_true",
                help="cancel the positions' protective stops at the venue too (kept otherwise; none is placed "
                "again until an operator resumes)",
            )
        elif spec.name == "reconcile":
            cmd.add_argument(
                "--adopt",
                action="store_true",
                help="take the venue's amounts as the engine's first (after checking a kept mismatch)",
            )
        if spec.emergency:
            cmd.add_argument(
                "--retry-for",
                type=float,
                default=60.0,
                metavar="S",
                help="with no engine running: keep retrying what failed for S seconds (default 60)",
            )
        cmd.add_argument(
            "--reason", type=_text, default=f"{spec.name} from the command line", help="recorded with the command"
        )
        cmd.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            metavar="S",
            help="seconds to wait for the engine's answer (default 30)",
        )
        cmd.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    incidents = sub.add_parser("incidents", help="list incidents: when, what tripped, time to detect, act, recover")
    _common(incidents, top=False)
    incidents.add_argument("--json", action="store_true", help="print a JSON array")
    incident = sub.add_parser("incident", help="cockpit incident report ID: write the post-incident report")
    _common(incident, top=False)
    incident.add_argument("action", choices=("report",))
    incident.add_argument("id", type=int, metavar="ID")
    audit = sub.add_parser("audit", help="list the commands carried out (every actor), newest first")
    _common(audit, top=False)
    audit.add_argument("--json", action="store_true", help="print a JSON array")
    audit.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default 20)")
    status = sub.add_parser("status", help="print the trading state, open orders and latest alerts")
    _common(status, top=False)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    _gate_commands(sub)
    _data_commands(sub)
    api = sub.add_parser(
        "api", help="the remote API: cockpit api token create NAME --role viewer|operator, list, revoke"
    )
    api_sub = api.add_subparsers(dest="api_command", metavar="WHAT", required=True)
    tok = api_sub.add_parser("token", help="bearer tokens of the remote API ([api] port)")
    tok_sub = tok.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    create = tok_sub.add_parser("create", help="create a token; it is printed once, alone on stdout")
    _common(create, top=False)
    create.add_argument("name", type=_text, help="who holds it (the actor in the audit trail: api:NAME)")
    create.add_argument(
        "--role", choices=("viewer", "operator"), required=True, help="viewer reads; operator also sends commands"
    )
    listing = tok_sub.add_parser("list", help="every token's name, role and creation (never the token)")
    _common(listing, top=False)
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    revoke = tok_sub.add_parser("revoke", help="revoke a token: refused from the next request on")
    _common(revoke, top=False)
    revoke.add_argument("name", type=_text)
    return parser


def _data_commands(sub: Any) -> None:
    """``data download`` and ``data list``: candles on disk (cockpit/data_commands.py, docs/strategies.md)."""
    data = sub.add_parser("data", help="candles for backtests: cockpit data download SYMBOL... | list")
    data_sub = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    down = data_sub.add_parser("download", help="fetch candles through ccxt into DATA_DIR/market/, resumable")
    _common(down, top=False)
    down.add_argument("symbols", nargs="+", type=_text, metavar="SYMBOL", help="as the venue writes it: BTC/USDT")
    down.add_argument("--timeframe", default="1m", help="1m (default), 5m, 1h, 1d ...")
    down.add_argument("--since", required=True, metavar="DATE", help="from this UTC date: 2026-01-01")
    down.add_argument("--until", default=None, metavar="DATE", help="up to this UTC date (default: now)")
    down.add_argument("--exchange", default=None, metavar="ID", help="a ccxt exchange id (default: [venue])")
    listing = data_sub.add_parser("list", help="the candles on disk: symbols, ranges and gaps")
    _common(listing, top=False)
    listing.add_argument("--json", action="store_true", help="print a JSON array")


def _gate_commands(sub: Any) -> None:
    """``preflight``, ``validate`` and ``report daily``: the go/no-go gate (cockpit/gate_commands.py)."""
    pre = sub.add_parser("preflight", help="run the go/no-go checklist; exit 0 GO, 1 NO-GO, 2 could not run")
    _common(pre, top=False)
    _live_flag(pre, top=False)
    pre.add_argument("--json", action="store_true", help="print the checklist as one JSON object")
    pre.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds to wait for a running engine's answer (default 120)",
    )
    val = sub.add_parser("validate", help="paper validation on the simulator, N times faster; GO / NO-GO report")
    _common(val, top=False)
    val.add_argument(
        "--duration",
        default=None,
        metavar="D",
        help="simulated time: 48h, 90m, 2d (default [validation] duration_h, 48 h)",
    )
    val.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="N",
        help="simulated seconds per real second, at most (default [validation] speed; with --strategy: uncapped)",
    )
    val.add_argument(
        "--tick",
        type=float,
        default=None,
        metavar="S",
        help="simulated seconds between price moves (default [validation] tick_s)",
    )
    source = val.add_mutually_exclusive_group()
    source.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="price feed seed (default [venue] sim_seed): same seed, same report",
    )
    source.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="SYMBOL=CSV",
        help="replay an OHLCV CSV for SYMBOL (e.g. BTCUSDT=btc.csv) instead of the seeded feed, or a directory of "
        "`cockpit data download` (DATA_DIR/market/binance): every symbol in it",
    )
    val.add_argument(
        "--strategy",
        type=_text,
        default=None,
        metavar="NAME",
        help="backtest this strategy alone (a built-in or yours) on the symbols the --replay data holds",
    )
    val.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="PARAM=a,b,c",
        help="with --strategy: one run per value (repeatable: the grid of all), one table best first",
    )
    streams = val.add_mutually_exclusive_group()
    streams.add_argument(
        "--in-process",
        dest="in_process",
        action="store_const",
        const=True,
        default=None,
        help="the simulator's streams reach the engine in its process, not over loopback websockets (the same "
        "decisions, faster; the default with --strategy and --replay)",
    )
    streams.add_argument(
        "--loopback",
        dest="in_process",
        action="store_const",
        const=False,
        help="the streams over loopback websockets, as a paper venue's (the default otherwise)",
    )
    val.add_argument("--json", action="store_true", help="print the report as one JSON object")
    rep = sub.add_parser("report", help="cockpit report daily [--date D]: the day's summary, as the sinks get it")
    _common(rep, top=False)
    rep.add_argument("kind", choices=("daily",))
    rep.add_argument("--date", default=None, metavar="D", help="the UTC day, YYYY-MM-DD (default today)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")


def parse_replay(items: list[str]) -> dict[str, str]:
    """``--replay SYMBOL=FILE`` options as {venue symbol: path}; BTC/USDT and btcusdt both mean BTCUSDT."""
    replay: dict[str, str] = {}
    for item in items:
        symbol, sep, path = item.partition("=")
        if not sep or not symbol or not path:
            raise ValueError(f"--replay {item!r} must look like BTCUSDT=prices.csv")
        replay[symbol.upper().replace("/", "")] = path
    return replay


def main(argv: list[str] | None = None) -> int:
    """The program (``cockpit``); the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        from cockpit import quick

        answered = quick.run(argv)  # the kill switch and status from a second shell: a running engine's socket
        code = _main(argv) if answered is None else answered
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (`cockpit audit | head -1`): it has what it wanted. Nothing more is printed,
        # not even Python's own complaint when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _main(argv: list[str]) -> int:
    if argv[:2] == ["sim", "fault"]:
        # `cockpit sim fault NAME [options] [--for S]`, `... fault clear`, `... fault list`: the simulator's own
        # CLI, against a running simulator's control API (see docs/simulator.md).
        from engine.sim.faultcli import main as fault_main

        return fault_main(argv[2:])
    args = parse_args(argv)
    from engine.store.datadir import private_umask

    private_umask()  # everything this program writes is its owner's alone (see engine.store.datadir.PRIVATE_UMASK)
    command = args.command or "tui"
    if command == "sim":
        from engine.sim.standalone import main as sim_main

        for name, port in (("--rest-port", args.rest_port), ("--ws-port", args.ws_port)):
            if not 0 <= port <= 65535:
                print(f"cockpit sim: {name} {port} is not a port (0-65535)", file=sys.stderr)
                return 2
        try:
            replay = parse_replay(args.replay)
        except ValueError as exc:
            print(f"cockpit sim: {exc}", file=sys.stderr)
            return 2
        return sim_main(
            args.rest_port,
            args.ws_port,
            args.seed,
            speed=args.speed,
            replay=replay or None,
            replay_start=args.replay_start,
            keys_file=args.keys,
            history_days=args.history_days,
            tick_interval=args.tick,
            weight_limit=args.weight_limit,
            symbols=args.symbols,
            market=args.market,
            funding_interval_s=args.funding_interval,
        )
    if command == "tui":
        from cockpit import firstframe

        with firstframe.collector_held():  # until the screen's first frame is drawn (decision BEN-14)
            return _settings_then_dispatch(args, command)
    return _settings_then_dispatch(args, command)


def _settings_then_dispatch(args: argparse.Namespace, command: str) -> int:
    from engine.kernel.errors import StoreError

    settings: Any = None
    screen = command == "tui" and not getattr(args, "url", None)
    if screen:
        from cockpit import firstframe

        # The inputs validated last time: the first frame is drawn from their values, and the settings are loaded
        # and checked in full right after it, before anything acts (decision BEN-06).
        settings = firstframe.recalled(args.config, args.data_dir)
    if settings is None:
        from engine.kernel.config import ConfigError, load_settings

        try:
            settings = load_settings(args.config, args.data_dir)
            if command in ("tui", "run", "validate"):  # strategies' parameters, checked with the rest of the config
                from engine.api.strategies import check

                check(settings)
        except ConfigError as exc:
            print(f"cockpit: {inert(exc, limit=MESSAGE_LIMIT, lines=True)}", file=sys.stderr)
            return 2
        if screen:
            firstframe.remember(settings, args.config, args.data_dir)
    confirm_live = args.confirm_live or os.environ.get("COCKPIT_CONFIRM_LIVE", "").lower() in ("1", "true", "yes")
    try:
        return _dispatch(settings, command, args, confirm_live)
    except StoreError as exc:
        print(f"cockpit: {inert(exc, limit=MESSAGE_LIMIT, lines=True)}", file=sys.stderr)
        if command in _remote_commands():
            print(f"cockpit {command}: NOT done, nothing was recorded.", file=sys.stderr)
        return 2


def _dispatch(settings: Settings, command: str, args: argparse.Namespace, confirm_live: bool) -> int:
    if command == "tui":  # first: the screen's start loads no command table (decision BEN-10)
        return _run_tui(settings, confirm_live, getattr(args, "url", None), getattr(args, "token_file", None))
    if command == "run":
        return _run_headless(settings, confirm_live)
    if command == "ack" and not args.ids and not args.every:
        print("cockpit ack: name alert ids or --all (ids are in `cockpit status`)", file=sys.stderr)
        return 2
    if command == "strategy" and (args.action == "list" or args.name is None):
        from cockpit.strategy_commands import listing

        if args.action == "list":
            return listing(settings, args.json)
        print(f"cockpit strategy {args.action}: name the strategy (`cockpit strategy list`)", file=sys.stderr)
        return 2
    if command == "strategy" and args.action == "new":
        from cockpit.strategy_commands import new

        return new(settings, args.name)
    if command in _remote_commands():
        return _remote(settings, command, args)
    if command == "api":
        from cockpit.api_commands import token

        return token(
            settings,
            args.token_action,
            getattr(args, "name", None),
            getattr(args, "role", ""),
            getattr(args, "json", False),
        )
    if command == "data":
        from cockpit import data_commands

        if args.data_action == "download":
            return data_commands.download(settings, args)
        return data_commands.listing(settings, args.json)
    if command in ("incidents", "incident"):
        from cockpit.status import print_incident_report, print_incidents

        if command == "incidents":
            return print_incidents(settings, as_json=args.json)
        return print_incident_report(settings, args.id)
    if command == "audit":
        from cockpit.status import print_audit

        return print_audit(settings, as_json=args.json, limit=args.limit)
    if command == "status":
        from cockpit.status import print_status

        return print_status(settings, as_json=args.json)
    if command in ("preflight", "validate", "report"):
        return _gate(settings, command, args, confirm_live)
    return _run_tui(settings, confirm_live, getattr(args, "url", None), getattr(args, "token_file", None))


def _gate(settings: Settings, command: str, args: argparse.Namespace, confirm_live: bool) -> int:
    from cockpit import gate_commands as gate

    if command == "preflight":
        return gate.preflight(settings, as_json=args.json, confirm_live=confirm_live, timeout=args.timeout)
    if command == "report":
        if args.date is not None:
            try:
                date.fromisoformat(args.date)
            except ValueError:
                print(
                    f"cockpit report daily: --date {args.date!r} is not a day: write YYYY-MM-DD (UTC)", file=sys.stderr
                )
                return 2
        return gate.report_daily(settings, args.date, args.json)
    try:
        duration = None if args.duration is None else gate.parse_duration(args.duration)
    except ValueError as exc:
        print(f"cockpit validate: --duration {exc}", file=sys.stderr)
        return 2
    for name, value in (("--speed", args.speed), ("--tick", args.tick)):
        if value is not None and not value > 0:
            print(f"cockpit validate: {name} must be positive", file=sys.stderr)
            return 2
    try:
        replay = parse_replay([item for item in args.replay if not Path(item).is_dir()])
    except ValueError as exc:
        print(f"cockpit validate: {exc}", file=sys.stderr)
        return 2
    for item in args.replay:
        if Path(item).is_dir():  # candles from `cockpit data download`: every symbol the directory holds
            from engine.api.marketdata import replay_files

            found = replay_files(Path(item))
            if not found:
                print(f"cockpit validate: --replay {item}: no SYMBOL-TIMEFRAME.csv file in it", file=sys.stderr)
                return 2
            replay.update({symbol: str(path) for symbol, path in found.items()})
    if args.sweep and args.strategy is None:
        print("cockpit validate: --sweep needs --strategy NAME", file=sys.stderr)
        return 2
    return gate.validate(
        settings,
        sweep=args.sweep,
        duration_s=duration,
        speed=args.speed,
        seed=args.seed,
        replay=replay,
        tick_s=args.tick,
        as_json=args.json,
        strategy=args.strategy,
        in_process=args.in_process,
    )


def _symbol(settings: Settings, text: str) -> str:
    """``BTCUSDT`` or ``btc/usdt`` as the configured ``BTC/USDT`` (unknown symbols pass through for the engine
    to refuse with the list of configured ones)."""
    for symbol in settings.venue.symbols:
        if text.upper().replace("/", "") == symbol.replace("/", ""):
            return symbol
    return text


def _remote_commands() -> dict[str, Any]:
    """The commands the engine runs (``engine.kernel.commands.SPECS``), by name."""
    from engine.kernel.commands import SPECS

    return {spec.name: spec for spec in SPECS}


def _remote_args(settings: Settings, command: str, args: argparse.Namespace) -> dict | None:
    if command == "strategy":
        return {"strategy": args.name, "enabled": args.action == "enable"}
    if command == "close":
        return {"symbol": _symbol(settings, args.symbol)}
    if command == "reconcile":
        return {"adopt": args.adopt}
    if command == "cancel-all" and args.include_stops:
        return {"include_stops": True}
    if command == "resume" and args.override is not None:
        return {"override": True}
    if command == "mode":
        return {"mode": args.mode}
    if command == "ack":
        return {"ids": list(args.ids), "every": args.every}
    if command == "order":
        return {
            "symbol": _symbol(settings, args.symbol),
            "side": args.side,
            "amount": str(args.amount),
            "type": "limit" if args.price is not None else "market",
            "price": None if args.price is None else str(args.price),
            "stop_loss": None if args.stop_loss is None else str(args.stop_loss),
            "take_profit": None if args.take_profit is None else str(args.take_profit),
        }
    return None


def _remote(settings: Settings, command: str, args: argparse.Namespace) -> int:
    """A command for the engine running on the data dir; cancel-all and close-all with none act on the venue."""
    from engine.store.datadir import DB_NAME, engine_pid

    data_dir = settings.engine.data_dir
    details = None
    if _remote_commands()[command].emergency and (data_dir / DB_NAME).exists() and engine_pid(data_dir) is None:
        import asyncio

        from engine.core.emergency import act_without_engine
        from engine.kernel.commands import CancelAll, CloseAll
        from engine.kernel.text import InertFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(InertFormatter("cockpit: %(message)s"))
        logging.basicConfig(level=logging.ERROR, handlers=[handler])
        print(f"no engine is running on {inert(data_dir.resolve())}: acting on the venue directly", file=sys.stderr)
        try:
            from engine.api.inbox import cli_actor

            kill: CancelAll | CloseAll = (
                CancelAll(actor=cli_actor(), reason=args.reason, include_stops=args.include_stops)
                if command == "cancel-all"
                else CloseAll(actor=cli_actor(), reason=args.reason)
            )
            result = asyncio.run(act_without_engine(settings, kill, retry_for_s=args.retry_for))
        except KeyboardInterrupt:
            print("stopped by the operator; HALTED stays latched. Run the command again to finish.", file=sys.stderr)
            return 1
        ok, message, details = result.ok, result.message, dict(result.details)
    else:
        reason = args.override if command == "resume" and args.override is not None else args.reason
        ok, message, details = _to_engine(
            data_dir, command, reason, args.timeout, _remote_args(settings, command, args)
        )
    if args.json:
        print(json.dumps({"ok": ok, "message": message, "details": details}, default=str))  # the true text
    else:
        # The answer carries the reason and the venue's words: shown inert (no escape reaches the terminal).
        print(inert(message, limit=MESSAGE_LIMIT, lines=True), file=sys.stdout if ok else sys.stderr)
        if command == "reconnect" and details and "after" in details:
            for name, after in details["after"].items():
                before = details["before"].get(name, "?")
                print(f"  {inert(name):<16} before: {inert(before):<24} after: {inert(after)}")
        if command == "reconcile" and details:
            _print_reconcile(details)
    return 0 if ok else 1


def _to_engine(
    data_dir: Path, command: str, reason: str, timeout: float, args: dict | None
) -> tuple[bool, str, dict | None]:
    """A running engine's socket first (the standard library only: no store, no engine imported), then the rest
    of the ways (``engine.api.inbox.send_detailed``: the store's inbox, the latched state with no engine)."""
    from engine.api import client

    answer = client.command_if_running(data_dir, command, args, reason, timeout)
    if answer is not None:
        return answer
    from engine.api.inbox import send_detailed

    return send_detailed(data_dir, command, reason, timeout, args, via_socket=False)


def _print_reconcile(report: dict) -> None:
    """What reconciliation found; every value is the venue's or the store's, shown inert."""
    orders = report.get("orders", {})
    for what in ("adopted", "resolved", "lost"):
        for item in orders.get(what, []):
            print(f"  order {what}: {inert(item)}")
    for raw in report.get("differences", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(
            f"  {d['asset']}: venue {d['venue']}, engine {d['engine']}, diff {d['diff']} "
            f"({d['pct_of_equity']}% of equity)"
        )
    for raw in report.get("adopted", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(f"  adopted: {d['asset']} {d['diff']}")
    for raw in report.get("mismatch", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(
            f"  KEPT for the operator: {d['asset']} venue {d['venue']} vs engine {d['engine']} "
            f"({d['pct_of_equity']}% of equity) - check the venue's trades, then `cockpit reconcile --adopt`"
        )


def _run_tui(
    settings: Settings, confirm_live: bool, urls: list[str] | None = None, token_files: list[Path] | None = None
) -> int:
    """The screen: attached to the engine that runs on the data directory (or at each ``--url``, or to each
    ``[[remote]]`` engine beside it), else over an engine it starts itself."""
    from engine.store.datadir import DB_NAME, check_writable, engine_pid, refuse_foreign

    data_dir = Path(settings.engine.data_dir)
    urls, token_files = urls or [], token_files or []
    if bool(urls) != bool(token_files):
        print("cockpit: --url and --token-file go together (a remote engine's API, and your token)", file=sys.stderr)
        return 2
    link = None
    pid = engine_pid(data_dir)
    if urls or settings.remote:
        from cockpit.fleet import FleetLink, watched
        from cockpit.link import LinkError

        try:
            engines = watched(settings.remote, urls, token_files, data_dir if pid is not None and not urls else None)
            if len(engines) == 1:
                from cockpit.attached import AttachedLink

                link = AttachedLink(engines[0].target)
            else:
                link = FleetLink(engines)
        except LinkError as exc:
            print(f"cockpit: {inert(exc, limit=MESSAGE_LIMIT)}", file=sys.stderr)
            return 2
        if not urls and pid is None:
            print(
                f"cockpit: no engine runs on {inert(data_dir.resolve())}: watching the [[remote]] engines only "
                "(`cockpit run --headless` starts one here)",
                file=sys.stderr,
            )
        for engine in engines:
            print(f"cockpit: attaching to engine {inert(engine.name)} at {inert(engine.target.where)}", file=sys.stderr)
    elif pid is not None:
        # An engine runs here (headless, or another cockpit's): this screen attaches to it over its socket, and q
        # detaches, leaving it running. Several screens may follow one engine.
        from cockpit.attached import AttachedLink, Target

        link = AttachedLink(Target.local(data_dir))
        print(
            f"cockpit: an engine (pid {inert(pid)}) runs on {inert(data_dir.resolve())}: attaching to it "
            "(q detaches; the engine keeps running)",
            file=sys.stderr,
        )
    else:
        # Before the screen opens: a data directory that cannot be written or a store that is not cockpit's is said
        # in plain words on the terminal (exit 2), not behind the full-screen app.
        check_writable(data_dir)
        refuse_foreign(data_dir / DB_NAME)
        # Where the store is, said before the screen opens (it stays in the terminal's scrollback after quitting):
        # another shell's `cockpit halt` finds it there by default, or with --data-dir.
        print(f"cockpit: data in {inert(data_dir.resolve())}", file=sys.stderr)

    from cockpit.app import CockpitApp, check_keymap

    try:
        check_keymap(dict(settings.keys))
    except ValueError as exc:
        print(f"cockpit: {inert(exc, limit=MESSAGE_LIMIT)}", file=sys.stderr)
        return 2
    from engine.kernel.text import InertFormatter

    # A plain-text log, read in a terminal (tail, less): outside text in it is made inert like on the screen. A
    # screen attached to a remote engine logs here only if this machine's data directory is there already.
    if link is None or link.kind == "local" or data_dir.is_dir():
        handler: logging.Handler = logging.FileHandler(data_dir / "cockpit.log")
    else:
        handler = logging.NullHandler()
    handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # The engine (or aiohttp, to attach) is imported by the app after its first frame: the screen does not wait.
    if link is None:
        app = CockpitApp(settings=settings, confirm_live=confirm_live)
    else:
        app = CockpitApp(link=link, settings=settings, panels_after_frame=True)
    app.run()
    return app.return_code or 0


def _run_headless(settings: Settings, confirm_live: bool) -> int:
    import asyncio

    from engine.core.engine import Engine, EngineError
    from engine.ops.logfiles import JsonFormatter
    from engine.ops.sdnotify import ServiceNotifier, status_line
    from engine.store.datadir import DataDirBusy

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("cockpit").info("data in %s", Path(settings.engine.data_dir).resolve())

    async def run() -> int:
        engine = Engine(settings, confirm_live=confirm_live, take_signals=True, checks_at_start=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await engine.start()
        except (EngineError, DataDirBusy) as exc:
            logging.getLogger("cockpit").error("%s", exc)
            return 2
        # Under systemd (Type=notify, docs/deploy/): READY=1 once the venue is connected and the state restored,
        # the watchdog fed from this loop, STOPPING=1 at the stop. Nothing at all without $NOTIFY_SOCKET.
        service = ServiceNotifier()
        if service.enabled:
            engine.tasks.spawn(
                "systemd notify",
                service.serve(
                    engine.ready,
                    lambda: status_line(
                        engine.mode,
                        engine.venue_label,
                        engine.trading_state.value,
                        engine.state_info,
                        engine.ready.is_set(),
                    ),
                ),
            )
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(engine.failed.wait())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            failing.cancel()
            why = "signal received" if stop.is_set() else "engine failed"
            service.stopping(f"stopping: {why}" + (f": {engine.fatal_error}" if engine.fatal_error else ""))
            await engine.stop(why)
        if engine.fatal_error:
            logging.getLogger("cockpit").error("%s", engine.fatal_error)
            return 2
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
