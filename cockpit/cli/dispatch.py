"""From a parsed command line to what carries it out: the simulator's commands, the settings loaded (the screen's
recalled first), and each command handed to its room. A value the parser cannot judge alone (a port, a duration, a
day, a replay file) is refused here with a sentence saying what is wrong, exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.cli.headless import run_headless
from cockpit.cli.parser import parse_args, parse_replay
from cockpit.cli.remote import remote_commands, run_remote
from cockpit.cli.screen import run_tui
from cockpit.quick import MESSAGE_LIMIT  # shared with the kill switch's quick path, which answers before the rest
from engine.kernel.text import inert

if TYPE_CHECKING:
    from engine.kernel.config import Settings

# The rest of the engine (the command table, the settings' models, the store) is imported where a command needs it.


def full_program(argv: list[str]) -> int:
    """The program for everything ``cockpit.quick`` steps aside from (``cockpit.cli.main``); the exit status."""
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
        if command in remote_commands():
            print(f"cockpit {command}: NOT done, nothing was recorded.", file=sys.stderr)
        return 2


def _dispatch(settings: Settings, command: str, args: argparse.Namespace, confirm_live: bool) -> int:
    if command == "tui":  # first: the screen's start loads no command table (decision BEN-10)
        return run_tui(settings, confirm_live, getattr(args, "url", None), getattr(args, "token_file", None))
    if command == "run":
        return run_headless(settings, confirm_live)
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
    if command in remote_commands():
        return run_remote(settings, command, args)
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
    return run_tui(settings, confirm_live, getattr(args, "url", None), getattr(args, "token_file", None))


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
