"""``cockpit sim fault ...``: inject, clear and list faults in a running simulator through its control API.

    fault NAME [--OPTION VALUE ...] [--for SECONDS] [--rest URL] [--token-file PATH]
    fault clear [ID] [--rest URL] [--token-file PATH]
    fault list [--all] [--rest URL] [--token-file PATH]
    fault names

``--rest`` defaults to $COCKPIT_SIM_REST, else http://127.0.0.1:8080. The control token `cockpit sim` printed at
start is read from --token-file, else $COCKPIT_SIM_TOKEN, else the owner-only file `cockpit sim` wrote for that
REST port ($XDG_RUNTIME_DIR/cockpit-sim/rest-PORT.token, else /tmp/cockpit-sim-UID/rest-PORT.token). Exit codes:
0 done, 1 simulator unreachable or refused, 2 bad name or options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

from .access import ENV_TOKEN, default_token_file, read_token_file
from .faults import CATALOGUE, FaultError, FaultSpec, describe_window, spec_of

DEFAULT_REST = "http://127.0.0.1:8080"
ENV_REST = "COCKPIT_SIM_REST"
TIMEOUT = 10.0


class CliError(Exception):
    """A failure to report on one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _names_line() -> str:
    return "valid names: " + ", ".join(CATALOGUE) + " (and clear, list, names)"


def _rest_port(rest: str) -> int | None:
    try:
        parts = urlsplit(rest)
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def find_token(rest: str, token_file: str | None = None) -> tuple[str | None, str]:
    """The control token for the simulator at ``rest`` and where it was looked for: ``token_file``, else
    $COCKPIT_SIM_TOKEN, else the file `cockpit sim` wrote for that REST port."""
    if token_file:
        return read_token_file(Path(token_file)), token_file
    if token := os.environ.get(ENV_TOKEN, "").strip():
        return token, f"${ENV_TOKEN}"
    port = _rest_port(rest)
    if port is None:
        return None, f"${ENV_TOKEN}"
    path = default_token_file(port)
    return read_token_file(path), f"${ENV_TOKEN} or {path}"


def _request(
    rest: str, method: str, path: str, body: dict[str, Any] | None = None, token_file: str | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    token, looked_in = find_token(rest, token_file)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(rest.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
            message = answer.get("error") or answer.get("msg") or exc.reason
        except (ValueError, AttributeError):
            message = exc.reason
        if exc.code == 401:
            found = "no token there" if token is None else "the token there is not this simulator's"
            message = f"{message} (looked in {looked_in}: {found}; pass --token-file PATH)"
        raise CliError(f"simulator refused: {message}", 2 if exc.code == 400 else 1) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach the simulator at {rest}: {reason} (is `cockpit sim` running? "
            f"pass --rest URL or set {ENV_REST})",
            1,
        ) from None


def _add_rest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rest",
        default=os.environ.get(ENV_REST) or DEFAULT_REST,
        metavar="URL",
        help=f"simulator REST URL (default ${ENV_REST} or {DEFAULT_REST})",
    )
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"file holding the control token (default ${ENV_TOKEN}, else the file `cockpit sim` wrote for the port)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() returns its exit code."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message}", 2)


def _fault_parser(spec: FaultSpec) -> _Parser:
    parser = _Parser(prog=f"fault {spec.name}", description=spec.summary, add_help=False)
    for opt in spec.options:
        default = f" (default {opt.default})" if opt.default is not None else ""
        parser.add_argument(
            f"--{opt.name.replace('_', '-')}",
            dest=opt.name,
            metavar=opt.type.__name__.upper(),
            help=opt.help + default,
            required=opt.required,
        )
    if not spec.one_shot:
        parser.add_argument(
            "--for",
            dest="duration",
            type=float,
            metavar="SECONDS",
            help="end the fault after this many seconds (default: until cleared)",
        )
    _add_rest(parser)
    return parser


def _window(fault: dict[str, Any], spec: FaultSpec) -> str:
    return describe_window(spec, fault.get("duration"), (fault.get("options") or {}).get("count"))


def _describe(fault: dict[str, Any]) -> str:
    shown = {k: v for k, v in (fault.get("options") or {}).items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no options"


def _inject(name: str, argv: list[str], out: TextIO) -> int:
    try:
        spec = spec_of(name)
    except FaultError:
        raise CliError(f"unknown fault {name!r}; {_names_line()}", 2) from None
    parser = _fault_parser(spec)
    if any(a in ("-h", "--help") for a in argv):
        out.write(parser.format_help())
        return 0
    args = vars(parser.parse_args(argv))
    rest, token_file, duration = args.pop("rest"), args.pop("token_file"), args.pop("duration", None)
    options = {k: v for k, v in args.items() if v is not None}
    try:
        spec.parse(options)  # refuse bad options here, before reaching the simulator
    except FaultError as exc:
        raise CliError(str(exc), 2) from None
    if duration is not None and duration <= 0:
        raise CliError("--for must be a positive number of seconds", 2)
    body = {"name": name, "options": options, "duration": duration}
    answer = _request(rest, "POST", "/sim/faults", body, token_file)
    fault = answer["fault"]
    state = "done" if spec.one_shot else "started"
    print(f"fault {fault['id']} {name} {state} ({_window(fault, spec)}): {_describe(fault)}", file=out)
    return 0


def _clear(argv: list[str], out: TextIO) -> int:
    parser = _Parser(prog="fault clear", description="end one fault, or every active fault")
    parser.add_argument("id", nargs="?", type=int, help="the fault id (default: all)")
    _add_rest(parser)
    args = parser.parse_args(argv)
    path = "/sim/faults" if args.id is None else f"/sim/faults/{args.id}"
    cleared = _request(args.rest, "DELETE", path, token_file=args.token_file)["cleared"]
    if not cleared:
        print("no active fault to clear" if args.id is None else f"fault {args.id} had already ended", file=out)
    for fault_id in cleared:
        print(f"fault {fault_id} cleared", file=out)
    return 0


def _list(argv: list[str], out: TextIO) -> int:
    parser = _Parser(prog="fault list", description="the simulator's active faults")
    parser.add_argument("--all", action="store_true", help="also the faults that have ended")
    _add_rest(parser)
    args = parser.parse_args(argv)
    answer = _request(args.rest, "GET", "/sim/faults", token_file=args.token_file)
    faults = answer["history"] if args.all else answer["active"]
    if not faults:
        print("no active faults" if not args.all else "no faults yet", file=out)
    for fault in faults:
        since = time.strftime("%H:%M:%S", time.localtime(fault["started_at"]))
        state = "active" if fault["active"] else f"ended ({fault['end_reason']})"
        print(
            f"fault {fault['id']} {fault['name']} {state} since {since}: {_describe(fault)} (hits {fault['hits']})",
            file=out,
        )
    return 0


def _names(out: TextIO) -> int:
    for spec in CATALOGUE.values():
        opts = " ".join(f"--{o.name.replace('_', '-')}" + ("" if o.required else "?") for o in spec.options)
        print(f"{spec.name:18} {spec.summary}" + (f"  [{opts}]" if opts else ""), file=out)
    return 0


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``fault ...`` with the arguments after the word ``fault``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if not argv or argv[0] in ("-h", "--help"):
            out.write(__doc__ or "")
            print(_names_line(), file=out)
            return 0 if argv else 2
        command, rest = argv[0], argv[1:]
        if command == "clear":
            return _clear(rest, out)
        if command == "list":
            return _list(rest, out)
        if command == "names":
            return _names(out)
        return _inject(command, rest, out)
    except CliError as exc:
        print(f"cockpit sim fault: {exc}", file=err)
        if exc.code == 2 and "valid names" not in str(exc):
            print(_names_line(), file=err)
        return exc.code


if __name__ == "__main__":  # pragma: no cover - for `python -m engine.sim.faultcli`
    raise SystemExit(main(sys.argv[1:]))
