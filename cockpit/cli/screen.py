"""``cockpit`` with no command: the full-screen cockpit, attached to the engine that runs on the data directory (or
to remote engines: ``--url``, ``[[remote]]``), else over an engine it starts itself. What would keep the screen from
opening (a data directory it cannot write, a foreign store, a bad token file or keymap) is said on the terminal
first, exit 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.quick import MESSAGE_LIMIT  # shared with the kill switch's quick path, which answers before the rest
from engine.kernel.text import inert

if TYPE_CHECKING:
    from engine.kernel.config import Settings


def run_tui(
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
