"""The one error the engine raises to a front end: it cannot do what was asked, and the message says why."""

from __future__ import annotations


class EngineError(Exception):
    """The engine cannot do what was asked; the message says why and what to do."""
