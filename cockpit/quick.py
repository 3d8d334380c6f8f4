"""The kill switch and the status from a second shell, at the speed of the interpreter.

``cockpit halt``, ``cancel-all``, ``close-all`` and ``status`` with an engine running need three things: the data
directory, the engine's socket in it, and the engine's answer (``status``: the report the engine reads from its own
store, printed by the same code as when no engine runs). This path finds the data directory the way the settings would
(``--data-dir``, then ``COCKPIT_ENGINE__DATA_DIR``, then ``[engine] data_dir`` of ``--config`` or ``./config.toml``,
relative to that file, then the default), sends the command over the socket with the standard library, and prints
the answer exactly as the full program does: before the settings' models, the command table or the store are
imported (most of a second on a loaded machine, where the engine answers in milliseconds).

It steps aside (``None``: the full program runs, with its checks and its emergency path) for anything else: another
command or flag, a ``.env`` file (it may move the data directory), a configuration file it cannot read, or no
engine answering on the socket. It never weakens a check that matters to a halt: the engine itself ran its
configuration's checks when it started, and the socket names the actor from the kernel's credentials.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

COMMON = frozenset({"--data-dir", "--config"})
# Each command this path takes, with the options it takes (each once; a value after it or after "=").
COMMANDS: dict[str, frozenset[str]] = {
    **{name: COMMON | {"--reason", "--timeout", "--retry-for"} for name in ("halt", "cancel-all", "close-all")},
    "status": COMMON,
}
FLAGS = frozenset({"--json"})
MESSAGE_LIMIT = 4000  # the longest answer printed for a command (--json prints all of it)


def run(argv: list[str]) -> int | None:
    """The exit status of a command a running engine answered, or None to run the full program."""
    options = _parse(argv)
    if options is None:
        return None
    data_dir = _data_dir(options)
    if data_dir is None:
        return None
    if options["command"] == "status":
        return _status(data_dir, "--json" in options)
    return _kill_switch(data_dir, options)


def _status(data_dir: Path, as_json: bool) -> int | None:
    from engine.api import client

    if not client.socket_path(data_dir).exists():
        return None
    try:
        status, report = client.call(data_dir, "GET", "/api/status_report", timeout=10.0)
    except (OSError, TimeoutError, client.EngineUnreachable, client.NotYours):
        return None  # the store answers instead
    if status != 200 or not isinstance(report, dict):
        return None
    from cockpit.status import render_status

    report["data_dir"] = str(data_dir)  # as this shell named it, like the store's answer
    return render_status(report, data_dir, as_json)


def _kill_switch(data_dir: Path, options: dict[str, str]) -> int | None:
    command = options["command"]
    reason = options.get("--reason", f"{command} from the command line")
    try:
        timeout = float(options.get("--timeout", "30"))
        float(options.get("--retry-for", "60"))
    except ValueError:
        return None  # the full program says what is wrong with it
    from engine.api import client

    answer = client.command_if_running(data_dir, command, None, reason, timeout)
    if answer is None:
        return None
    ok, message, details = answer
    if "--json" in options:
        print(json.dumps({"ok": ok, "message": message, "details": details}, default=str))
    else:
        from engine.kernel.text import inert

        print(inert(message, limit=MESSAGE_LIMIT, lines=True), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _parse(argv: list[str]) -> dict[str, str] | None:
    """``[--data-dir D] [--config F] COMMAND [its options] [--json]``, each option once, also as ``--opt=value``;
    None for anything else."""
    options: dict[str, str] = {}
    command = next((token for token in argv if token in COMMANDS), None)
    if command is None:
        return None
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in COMMANDS[command] and name not in options:
            if not eq:
                if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                    return None
                i += 1
                value = argv[i]
            options[name] = text(value)
        elif token in FLAGS and not eq and token not in options:
            options[token] = ""
        elif token == command and "command" not in options:
            options["command"] = token
        else:
            return None
        i += 1
    return options if "command" in options else None


def text(raw: str) -> str:
    """Outside text from the command line (a reason, a name, a symbol), as the store can keep it: a byte that is
    not UTF-8 (Python hands it over as a lone surrogate) becomes U+FFFD instead of failing the command (a halt
    must not fail over a pasted byte)."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _data_dir(options: dict[str, str]) -> Path | None:
    """Where the settings would put the data directory, or None when only the full settings can tell."""
    if "--data-dir" in options:
        return Path(options["--data-dir"])
    if Path(".env").exists():
        return None
    environ = {key.upper(): value for key, value in os.environ.items()}
    if "COCKPIT_ENGINE" in environ:  # the whole section as JSON
        return None
    if "COCKPIT_ENGINE__DATA_DIR" in environ:
        return Path(environ["COCKPIT_ENGINE__DATA_DIR"])
    config = Path(options["--config"]) if "--config" in options else Path("config.toml")
    if "--config" in options or config.is_file():
        import tomllib  # here: ``cockpit`` with no command loads this module before its first frame, and needs none

        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # the full program says what is wrong with it
        engine = data.get("engine", {})
        if not isinstance(engine, dict):
            return None
        if "data_dir" in engine:
            if not isinstance(engine["data_dir"], str):
                return None
            where = Path(engine["data_dir"]).expanduser()
            return where if where.is_absolute() else config.parent.resolve() / where
    from engine.kernel.paths import default_data_dir

    return default_data_dir()
