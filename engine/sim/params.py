"""Binance's request parameters: decimals, integers and mandatory values, with the error codes it answers."""

from __future__ import annotations

import re
from decimal import Decimal

from . import errors

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def decimal_param(params: dict[str, str], name: str, required: bool = False) -> Decimal | None:
    """A decimal parameter in Binance's format, -1100 if malformed, -1102 if required and absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.missing(name)
        return None
    if not DECIMAL_RE.match(raw):
        raise errors.illegal(name)
    return Decimal(raw)


def int_param(params: dict[str, str], name: str) -> int | None:
    """An integer parameter, -1100 if malformed."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise errors.illegal(name, "^[0-9]{1,20}$")
    return int(raw)


def required(params: dict[str, str], name: str) -> str:
    """A mandatory string parameter, -1102 if absent."""
    value = params.get(name)
    if not value:
        raise errors.missing(name)
    return value
