"""Raw SIGNED REST calls, signed independently of the simulator's own code (for what ccxt would not send)."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL


def sign_query(secret: str, params: dict[str, Any]) -> str:
    """``a=1&b=2&signature=<hex HMAC-SHA256 of a=1&b=2>``, written independently of the simulator's code."""
    payload = urlencode(params)
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={signature}"


async def signed_request(
    sim: Any,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    secret: str | None = None,
    api_key: str | None = None,
    timestamp: int | None = None,
    prefix: str = "/api/v3/",
) -> tuple[int, Any, Any]:
    """Send a SIGNED call to ``prefix + path`` (form body for POST, raw query otherwise); returns
    (status, json, headers)."""
    params = {**params, "timestamp": timestamp or int(time.time() * 1000), "recvWindow": 5000}
    signed = sign_query(secret or sim.api_secret, params)
    headers = {"X-MBX-APIKEY": api_key or sim.api_key}
    async with aiohttp.ClientSession() as session:
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = session.request(method, f"{sim.rest_url}{prefix}{path}", data=signed.encode(), headers=headers)
        else:
            url = URL(f"{sim.rest_url}{prefix}{path}?{signed}", encoded=True)
            request = session.request(method, url, headers=headers)
        async with request as resp:
            return resp.status, await resp.json(), resp.headers
