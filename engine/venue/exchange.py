"""Build a ccxt client for a venue, pointing it at a Binance-compatible server when asked.

The real ccxt ``binance`` client talks to the built-in simulator unchanged except for its URLs and a few
options; each one is explained where it is set, below.
This is where ccxt is imported (``engine.venue.errors.load_ccxt``): nothing else in the engine imports it.
"""

from __future__ import annotations

from typing import Any

from engine.venue.errors import load_ccxt


def build_exchange(
    exchange_id: str = "binance",
    *,
    rest_url: str | None = None,
    ws_url: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    timeout_ms: int = 10_000,
    rate_limit: bool = True,
    market: str = "spot",
) -> Any:
    """Return a ccxt.pro exchange (async REST + streams); ``rest_url``/``ws_url`` redirect a Binance-style client."""
    ccxtpro = load_ccxt()  # the engine imports it off the event loop first; quick then
    try:
        cls = getattr(ccxtpro, exchange_id)
    except AttributeError:
        raise ValueError(f"unknown exchange id {exchange_id!r}: use 'sim' or an id from ccxt.pro.exchanges") from None
    params: dict[str, Any] = {"enableRateLimit": rate_limit, "timeout": timeout_ms}
    if api_key:
        params["apiKey"] = api_key
    if api_secret:
        params["secret"] = api_secret
    ex = cls(params)
    if market == "usdm":
        # Perps: ccxt's unified calls act on the swap markets (``binanceusdm`` defaults to them already).
        ex.options["defaultType"] = "swap"
        # A margin mode already set is no failure (Binance answers -4046): not raised, so not counted as a REST
        # error by the monitors (two symbols at start would otherwise halt on rest_errors).
        ex.options["setMarginMode"] = {**ex.options.get("setMarginMode", {}), "throwMarginModeAlreadySet": False}
    if rest_url and market == "usdm":
        point_at_local_binance_usdm(ex, rest_url, ws_url)
    elif rest_url:
        point_at_local_binance(ex, rest_url, ws_url)
    if rest_url:
        if rest_url.startswith("http://") and (ws_url is None or ws_url.startswith("ws://")):
            # ccxt waits timeout_on_exit (250 ms) at close for TLS transports to shut cleanly; with none there is
            # nothing to wait for, and every stop of an engine (two clients) would wait half a second.
            ex.timeout_on_exit = 0
    if exchange_id.startswith("binance"):
        prepare_binance(ex)
    return ex


MARKET_CONNECTIONS = 4


def prepare_binance(ex: Any) -> None:
    """Options every Binance client of the engine needs, on the real venue as on the simulator."""
    # Cancel-all and reconciliation list open orders for every symbol at once.
    ex.options["fetchOpenOrders"] = {**ex.options.get("fetchOpenOrders", {}), "warnWithoutSymbol": False}
    ex.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    # @ticker (with bid/ask) rather than @miniTicker.
    ex.options["watchTickers"] = {"name": "ticker"}
    ex.options["watchTicker"] = {"name": "ticker"}
    # A bounded number of market-stream connections: ccxt numbers each new subscription's connection in turn, up to
    # this many, then shares them (Binance allows 1,024 streams a connection). The engine's tickers come on
    # combined streams (``Venue.watch_tickers``); candles of many symbols would otherwise take a connection each.
    ex.options["streamLimits"] = {**ex.options.get("streamLimits", {}), "spot": MARKET_CONNECTIONS}
    # The engine takes its own REST snapshot; ccxt's snapshot resolves before the first watch_balance
    # registers, so that call would wait for the next account update anyway.
    ex.options["watchBalance"] = {"fetchBalanceSnapshot": False}
    # ccxt 4.5.90 raises KeyError('spot') in handle_balance for an account update that arrives before the
    # first watch_balance call created the cache (any fill right after the order stream subscribed).
    if isinstance(getattr(ex, "balance", None), dict):
        ex.balance.setdefault("spot", {})
        ex.balance.setdefault("future", {})  # the same on the futures user stream


def point_at_local_binance(ex: Any, rest_url: str, ws_url: str | None) -> None:
    """Redirect a ccxt binance client to a Binance-spot-compatible server (facts note, sections 1 and 3)."""
    rest = rest_url.rstrip("/")
    api: dict[str, Any] = {
        "public": f"{rest}/api/v3",
        "private": f"{rest}/api/v3",
        # Only for the account's API restrictions (pre-flight: refuse a key that can withdraw).
        "sapi": f"{rest}/sapi/v1",
    }
    if ws_url:
        ws = ws_url.rstrip("/")
        api["ws"] = {"spot": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}
    # Replacing the whole dict makes every other family (sapi, fapi, ...) fail with NotSupported
    # instead of reaching for the internet.
    ex.urls["api"] = api
    ex.options["fetchMarkets"] = {"types": ["spot"]}
    ex.options["fetchCurrencies"] = False
    ex.options["fetchMargins"] = False
    # With a non-Binance host ccxt ignores the spot-only exact error codes; restore them.
    spot = ex.exceptions.get("spot", {}).get("exact", {})
    ex.exceptions["exact"] = {**spot, **ex.exceptions.get("exact", {})}


def point_at_local_binance_usdm(ex: Any, rest_url: str, ws_url: str | None) -> None:
    """Redirect a ccxt ``binanceusdm`` client to a Binance-USDⓈ-M-compatible server (the USDⓈ-M note, "Wiring a
    test to loopback"): every REST family to the server's own path, the linear streams to its ``/ws`` (ccxt turns
    that into ``/public/ws``, ``/market/ws`` and ``/private/ws``)."""
    rest = rest_url.rstrip("/")
    api: dict[str, Any] = {}
    for name, url in ex.urls["api"].items():
        if isinstance(url, str):
            api[name] = rest + "/" + url.split("://", 1)[-1].split("/", 1)[-1]
    if ws_url:
        api["ws"] = {"linear": f"{ws_url.rstrip('/')}/ws"}
    ex.urls["api"] = api
    ex.options["fetchMarkets"] = {"types": ["linear"]}
    ex.options["fetchCurrencies"] = False
    ex.options["fetchMargins"] = False
    # On a host that is not fapi.binance.com ccxt ignores the futures exact error codes (-2019 margin is
    # insufficient, -2022 reduce-only rejected, -4164...): restore them, so a refusal is a refusal.
    linear = ex.exceptions.get("linear", {}).get("exact", {})
    ex.exceptions["exact"] = {**ex.exceptions.get("exact", {}), **linear}
