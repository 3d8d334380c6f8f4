"""The command line of ``cockpit``: every subcommand's arguments, flags, defaults and help.

Why one module of this length: the parser of every subcommand is here, so the commands, their flags and their
help read as one contract; what each command does lives elsewhere (``cockpit.cli.dispatch`` routes to it). The
command table (``engine.kernel.commands.SPECS``) is loaded only when every command's parser is built: the screen's
start reads its few options without it (``parse_args``).
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from cockpit.quick import text as _text


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
