"""Binance SIGNED request checks: API key, HMAC-SHA256 signature over the raw string, timestamp/recvWindow."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from . import errors

if TYPE_CHECKING:
    from aiohttp import web

    from .clock import SimClock

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
# Binance rejects timestamps more than one second ahead of its clock.
FUTURE_TOLERANCE_MS = 1_000


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` with ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(total: str) -> tuple[str, str | None]:
    """Split a raw ``a=1&b=2&signature=xx`` string into the signed part and the signature (None if absent)."""
    marker = "&signature="
    idx = total.find(marker)
    if idx >= 0:
        signed, rest = total[:idx], total[idx + len(marker) :]
    elif total.startswith("signature="):
        signed, rest = "", total[len("signature=") :]
    else:
        return total, None
    signature, _, after = rest.partition("&")
    if after:
        # Anything after the signature would act without being signed: Binance refuses that request.
        raise errors.VenueError(-1022, "Signature for this request is not valid.")
    return signed, signature


def parse_params(raw: str) -> dict[str, str]:
    """Decode a raw query string or form body into a dict; a parameter given twice is refused (-1101)."""
    pairs = parse_qsl(raw, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise errors.VenueError(-1101, "Duplicate values for a parameter detected.")
    return params


@dataclass
class ApiKey:
    """One API key of the paper account and its permissions (GET /sapi/v1/account/apiRestrictions)."""

    key: str
    secret: str
    can_trade: bool = True
    can_withdraw: bool = False
    can_read: bool = True
    ip_restrict: bool = True
    revoked: bool = False

    def restrictions(self, created_ms: int) -> dict[str, object]:
        """The apiRestrictions body Binance answers for this key."""
        return {
            "ipRestrict": self.ip_restrict,
            "createTime": created_ms,
            "enableReading": self.can_read,
            "enableSpotAndMarginTrading": self.can_trade,
            "enableWithdrawals": self.can_withdraw,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enablePortfolioMarginTrading": False,
        }


class Authenticator:
    """Checks signed requests against the paper account's API keys."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys: dict[str, ApiKey] = {}
        for k in keys:
            self.keys[k.key] = k

    def check_key(self, key: str | None) -> ApiKey:
        """The key's record; -2014 for a missing key, -2015 (HTTP 401) for an unknown or revoked one."""
        if not key:
            raise errors.api_key_format()
        record = self.keys.get(key)
        if record is None or record.revoked:
            raise errors.invalid_api_key()
        return record

    @staticmethod
    def check_signature(record: ApiKey, signed_payload: str, signature: str | None) -> None:
        """-1022 unless ``signature`` is the hex HMAC of the raw signed payload with the key's secret."""
        if not signature:
            raise errors.missing("signature")
        expected = sign(record.secret, signed_payload)
        if not hmac.compare_digest(expected, signature.lower()):
            raise errors.bad_signature()

    @staticmethod
    def check_timestamp(params: dict[str, str], server_time: int) -> None:
        """-1021 when the timestamp is older than recvWindow or more than a second in the future."""
        raw_ts = params.get("timestamp")
        if not raw_ts:
            raise errors.missing("timestamp")
        try:
            timestamp = int(raw_ts)
        except ValueError:
            raise errors.illegal("timestamp", "^[0-9]{1,20}$") from None
        try:
            recv_window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW)
        except ValueError:
            raise errors.illegal("recvWindow", "^[0-9]{1,20}$") from None
        if recv_window > MAX_RECV_WINDOW:
            raise errors.VenueError(-1131, "recvWindow must be less than 60000")
        if server_time - timestamp > recv_window or timestamp > server_time + FUTURE_TOLERANCE_MS:
            raise errors.outside_recv_window()

    def verify_rest(
        self, key: str | None, raw_query: str, raw_body: str, server_time: int
    ) -> tuple[ApiKey, dict[str, str]]:
        """Verify a SIGNED REST call; returns the key and the decoded params (query and body merged)."""
        record = self.check_key(key)
        # Binance signs totalParams = query string + request body, concatenated with no '&' between them
        # (spot API docs, "SIGNED endpoint examples", example 3); the signature may sit in either part.
        signed_query, sig_q = split_signature(raw_query)
        signed_body, sig_b = split_signature(raw_body)
        self.check_signature(record, signed_query + signed_body, sig_q or sig_b)
        # A parameter in both places: the query string's value wins (spot API docs, "SIGNED endpoint examples").
        params = {**parse_params(raw_body), **parse_params(raw_query)}
        params.pop("signature", None)
        self.check_timestamp(params, server_time)
        return record, params

    def verify_ws(self, params: dict[str, object], server_time: int) -> ApiKey:
        """Verify WS-API params (signature over the other params sorted by key and joined raw); returns the key."""
        str_params = {k: str(v) for k, v in params.items()}
        record = self.check_key(str_params.get("apiKey"))
        signature = str_params.pop("signature", None)
        payload = "&".join(f"{k}={str_params[k]}" for k in sorted(str_params))
        self.check_signature(record, payload, signature)
        self.check_timestamp(str_params, server_time)
        return record


class SignedRoutes:
    """A group of SIGNED endpoints (spot's and USDⓈ-M's): checks a request's key and signature against the
    simulator's clock, and what the key may do."""

    auth: Authenticator
    sim_clock: SimClock

    async def _signed_key(self, request: web.Request) -> tuple[ApiKey, dict[str, str]]:
        raw_body = (await request.read()).decode() if request.can_read_body else ""
        return self.auth.verify_rest(
            request.headers.get("X-MBX-APIKEY"), request.rel_url.raw_query_string, raw_body, self.sim_clock.server_ms()
        )

    async def _signed(self, request: web.Request) -> dict[str, str]:
        """Params of a SIGNED read: the key must be allowed to read."""
        record, params = await self._signed_key(request)
        if not record.can_read:
            raise errors.invalid_api_key()
        return params

    async def _trading(self, request: web.Request) -> dict[str, str]:
        """Params of a SIGNED trading call: the key must have trading enabled (else 401 -2015)."""
        record, params = await self._signed_key(request)
        if not record.can_trade:
            raise errors.invalid_api_key()
        return params
