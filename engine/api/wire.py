"""Events and values on the wire: JSON that turns back into the same typed records on the other side.

The service API (the local socket and the remote HTTP/WebSocket) sends the engine's events as JSON objects
``{"type": "OrderUpdated", "seq": 42, ...fields}``. An attached screen decodes them back into the very dataclasses
the engine published, so the screen that draws an in-process engine draws an attached one with the same code.

Encoding follows the field types: ``Decimal`` is a string (exact, never a float), ``datetime`` ISO 8601, an enum its
value, a nested record (an order inside ``OrderUpdated``) an object, tuples lists. Values typed ``Any`` (a
monitor's readings, an audit record's values) go as JSON can carry them (a Decimal inside is a string) and come back
as JSON values. Decoding is by the field types too, so an unknown type name or a field that is not the engine's is
an error naming it, never a guess.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import PurePath
from typing import Any

from engine.kernel import events as ev

# Events that say nothing a front end draws (a monitor's latched fact kept for the next start).
NOT_SENT: frozenset[type[ev.Event]] = frozenset({ev.Persisted})


def _all_records() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in dir(ev):
        obj = getattr(ev, name)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == ev.__name__:
            found[name] = obj
    return found


RECORDS = _all_records()
EVENTS: dict[str, type[ev.Event]] = {
    name: cls for name, cls in RECORDS.items() if issubclass(cls, ev.Event) and cls is not ev.Event
}


# The keys an event's object carries beside its fields (no event may have a field of these names).
ENVELOPE = ("type", "seq")
assert not [c for c in EVENTS.values() for f in dataclasses.fields(c) if f.name in ENVELOPE]


class WireError(ValueError):
    """A message that is not one of the engine's records (an unknown type, a missing or foreign field)."""


def plain(value: Any) -> Any:
    """Any value as JSON can carry it: Decimal and paths as strings, times ISO, enums their value, records objects."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def encode(event: ev.Event, seq: int | None = None) -> dict[str, Any]:
    """An event as a JSON-ready object: its type name, its sequence number (when journaled) and its fields."""
    body: dict[str, Any] = {"type": type(event).__name__}
    if seq is not None:
        body["seq"] = seq
    for f in dataclasses.fields(event):
        body[f.name] = plain(getattr(event, f.name))
    return body


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=plain, separators=(",", ":"))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(ev))


def _decode_value(tp: Any, value: Any, where: str) -> Any:
    if tp is Any or value is None:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _decode_value(options[0], value, where)
        for option in options:  # e.g. str | None handled above; wider unions: the first that takes it
            try:
                return _decode_value(option, value, where)
            except (WireError, ValueError, TypeError, ArithmeticError):
                continue
        raise WireError(f"{where}: {value!r} is none of {tp}")
    if origin in (tuple,):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        if not isinstance(value, list):
            raise WireError(f"{where}: a list was expected, not {type(value).__name__}")
        return tuple(_decode_value(inner, v, where) for v in value)
    if origin in (list,):
        (inner,) = typing.get_args(tp) or (Any,)
        return [_decode_value(inner, v, where) for v in value]
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        args = typing.get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        if not isinstance(value, dict):
            raise WireError(f"{where}: an object was expected, not {type(value).__name__}")
        return {k: _decode_value(inner, v, where) for k, v in value.items()}
    if tp is Decimal:
        try:
            return Decimal(str(value))
        except ArithmeticError:
            raise WireError(f"{where}: {value!r} is not a number") from None
    if tp is datetime:
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise WireError(f"{where}: {value!r} is not a time") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise WireError(f"{where}: {value!r} is not a {tp.__name__}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return record(tp, value, where)
    if tp in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return tp(value)
    if tp is float and isinstance(value, str):  # a non-finite float went as a string
        return float(value)
    if tp in (str, bool) and isinstance(value, tp):
        return value
    if tp is str:
        return str(value)
    raise WireError(f"{where}: {value!r} is not a {getattr(tp, '__name__', tp)}")


def record(cls: type, body: Mapping[str, Any], where: str = "") -> Any:
    """One of the engine's records from its JSON object (unknown fields refused by name)."""
    if not isinstance(body, Mapping):
        raise WireError(f"{where or cls.__name__}: an object was expected")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in body.items():
        if key not in names:
            raise WireError(f"{cls.__name__} has no field {key!r}")
        kwargs[key] = _decode_value(hints[key], value, f"{cls.__name__}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise WireError(f"{cls.__name__}: {exc}") from None


def decode(body: Mapping[str, Any]) -> ev.Event:
    """An event from its JSON object; WireError names what is wrong."""
    name = body.get("type") if isinstance(body, Mapping) else None
    cls = EVENTS.get(str(name))
    if cls is None:
        raise WireError(f"not an engine event: type {name!r}")
    event: ev.Event = record(cls, {k: v for k, v in body.items() if k not in ENVELOPE})
    return event
