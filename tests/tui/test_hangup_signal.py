"""The hang-up handler runs inside whatever the main thread was doing when SIGHUP came: found in tmux under load, a
cockpit whose terminal was killed while its main thread was inside the screen writer's ``queue.put`` (holding the
queue's lock) waited for itself for ever, its engine still running and its data directory locked. The handler must
return at once whatever lock the interrupted code holds."""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
from types import SimpleNamespace

from cockpit.app import CockpitApp
from engine.kernel.config import EngineConfig, Settings


def test_sighup_inside_the_writers_put_does_not_wait_for_itself(tmp_path, monkeypatch):
    app = CockpitApp(settings=Settings(engine=EngineConfig(data_dir=tmp_path)))
    writes: queue.Queue[str] = queue.Queue(maxsize=4)
    writes.put("drawn before the terminal went away")
    app._driver = SimpleNamespace(  # the parts of Textual's Linux driver the handler touches
        write=None, exit_event=threading.Event(), _writer_thread=SimpleNamespace(_queue=writes)
    )
    loop = asyncio.new_event_loop()
    done = threading.Event()
    # In a thread of its own (so that a handler that waits for ever fails the test instead of hanging it), where
    # signal.signal may not be called: SIGCONT's default restored is taken as done.
    monkeypatch.setattr(signal, "signal", lambda *_: None)

    def interrupted_inside_put() -> None:
        with writes.mutex:  # as queue.put holds it while it notifies the writer
            app._terminal_gone(loop)
        done.set()

    try:
        worker = threading.Thread(target=interrupted_inside_put, daemon=True)
        worker.start()
        assert done.wait(5), "the hang-up handler waited for a lock its own thread holds"
        assert app._driver.exit_event.is_set()
        # With the lock free (a put waiting for room), the queue is emptied so that the write goes through.
        app._terminal_gone(loop)
        assert writes.empty()
    finally:
        loop.close()
