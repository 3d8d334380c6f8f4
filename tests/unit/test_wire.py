"""The wire codec: every event the engine publishes goes to JSON and comes back the same typed record."""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.api import wire
from engine.kernel import events as ev


def sample(tp: Any, depth: int = 0) -> Any:
    """A value of type ``tp`` with enough digits to catch a float on the way."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return {"value": "61.2s", "n": 3, "nested": [1, "x", None]}
    if origin in (typing.Union, __import__("types").UnionType):
        return sample(next(a for a in typing.get_args(tp) if a is not type(None)), depth)
    if origin is tuple:
        return (sample(typing.get_args(tp)[0], depth),)
    if origin in (dict, typing.get_origin(typing.Mapping[str, int])) or tp is typing.Mapping:
        args = typing.get_args(tp)
        return {"k": sample(args[1] if len(args) == 2 else Any, depth)}
    if tp is Decimal:
        return Decimal("64880.12345678901234567")
    if tp is datetime:
        return datetime(2026, 12, 6, 14, 25, 31, 123456, tzinfo=UTC)
    if tp is bool:
        return True
    if tp is int:
        return 7
    if tp is float:
        return 1.5
    if tp is str:
        return "text \x1b[31m with an escape"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, vars(ev))
        return tp(**{f.name: sample(hints[f.name], depth + 1) for f in dataclasses.fields(tp)})
    raise AssertionError(f"no sample for {tp}")


@pytest.mark.parametrize("name", sorted(wire.EVENTS))
def test_every_event_goes_to_json_and_back_unchanged(name):
    event = sample(wire.EVENTS[name])
    text = wire.dumps(wire.encode(event, seq=41))
    body = json.loads(text)
    assert body["type"] == name and body["seq"] == 41
    assert wire.decode(body) == event


def test_money_stays_exact_and_never_a_float():
    order = sample(ev.Order)
    body = json.loads(wire.dumps(wire.encode(ev.OrderCreated(order))))
    assert body["order"]["amount"] == "64880.12345678901234567"
    assert wire.decode(body).order.amount == Decimal("64880.12345678901234567")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "Nope"}, "not an engine event"),
        ({"type": "EngineStopped", "reason": "x", "actor": "monitor:x"}, "no field 'actor'"),
        ({"type": "EngineStopped"}, "EngineStopped"),
        (
            {"type": "TickerUpdated", "symbol": "B", "last": "abc", "bid": None, "ask": None, "ts": "2026-12-06"},
            "not a number",
        ),
        (
            {"type": "TradingStateChanged", "previous": "ACTIVE", "state": "SIDEWAYS", "actor": "a", "reason": "r"},
            "not a TradingState",
        ),
    ],
)
def test_what_is_not_an_engine_record_is_refused_by_name(body, words):
    with pytest.raises(wire.WireError, match=words):
        wire.decode(body)
