"""ccxt's exception classes for the code that classifies venue errors, without importing ccxt to get them.

Importing ccxt costs most of a second (its package loads every exchange it knows), which the cockpit's first frame
and the CLI's quick commands must not pay: ccxt is imported only where the venue is connected (``load_ccxt``, from
``engine.venue.exchange``). Until then no ccxt error can exist, so a class asked for before ccxt is loaded is
``NotLoaded``, which no exception is an instance of: ``except venueerrors.NetworkError`` and
``isinstance(exc, venueerrors.BaseError)`` mean exactly what they meant with ccxt imported.

Use: ``from engine import venueerrors as vx`` ... ``except vx.OrderNotFound:``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

_ERRORS = "ccxt.base.errors"


class NotLoaded(Exception):
    """Stands for a ccxt class while ccxt is not imported: nothing is ever raised as it, so it matches nothing."""


def load_ccxt() -> ModuleType:
    """Import ccxt's async and streaming clients (slow: call it off the event loop, e.g. in a thread)."""
    return importlib.import_module("ccxt.pro")


def loaded() -> bool:
    return _ERRORS in sys.modules


def _errors() -> ModuleType | None:
    return sys.modules.get(_ERRORS)


# The engine's own ccxt error classes, made once ccxt is imported: name -> (ccxt base class, docstring).
_OWN = {
    "CircuitOpen": (
        "ExchangeNotAvailable",
        "Calls are suspended after repeated failures; the message says until when.",
    ),
    "VenueGarbage": (
        "BadResponse",
        "The venue (or something between it and us) answered garbage: not JSON, or JSON of the wrong shape.",
    ),
}
_own: dict[str, type[Exception]] = {}


def own_class(name: str) -> type[Exception]:
    """One of the engine's own ccxt error classes (``CircuitOpen``, ``VenueGarbage``), importing ccxt's errors if
    they were not: it is asked for only to raise one, where the venue is connected."""
    if not loaded():
        importlib.import_module(_ERRORS)
    cls: type[Exception] = __getattr__(name)
    return cls


def circuit_open_class() -> type[Exception]:
    """The engine's ``CircuitOpen``, a ccxt ExchangeNotAvailable."""
    return own_class("CircuitOpen")


def __getattr__(name: str) -> Any:
    """ccxt's class ``name`` (``NotLoaded`` while ccxt is not imported); also the engine's own classes:
    ``CircuitOpen`` (an ExchangeNotAvailable for calls refused by the circuit breaker) and ``VenueGarbage`` (a
    BadResponse for an answer that is not what a venue says)."""
    errors = _errors()
    if errors is None:
        if name.startswith("__"):
            raise AttributeError(name)
        return NotLoaded
    if name in _OWN:
        if name not in _own:
            base, doc = _OWN[name]
            _own[name] = type(name, (getattr(errors, base),), {"__doc__": doc, "__module__": __name__})
        return _own[name]
    try:
        return getattr(errors, name)
    except AttributeError:
        raise AttributeError(f"ccxt has no exception class {name!r}") from None
