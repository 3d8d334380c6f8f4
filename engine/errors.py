"""The one error the engine raises to a front end: it cannot do what was asked, and the message says why."""

from __future__ import annotations


class EngineError(Exception):
    """The engine cannot do what was asked; the message says why and what to do."""


class StoreError(EngineError):
    """The store cannot be used: not cockpit's, damaged, or not writable; the message says what to do."""
