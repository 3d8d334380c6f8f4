"""The checklist's checks of the configuration alone: the mode against the venue, the rate limiter, the stop-loss
and daily loss limit (required for live, runbook 003), alert sinks, and where health and metrics are served.

Each takes the settings and answers a ``Check``; those that are FAIL in live mode are WARN in paper and dry-run.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from engine.gate.checklist import Check, Status
from engine.kernel.config import Settings
from engine.ops.notify import masked

# The venues' real-money API hosts (ccxt's own URLs for them): live accepts a [venue] rest_url only on one of these,
# and paper never reaches one. An exchange not listed here goes live only on ccxt's own URL (no rest_url).
LIVE_HOSTS: dict[str, frozenset[str]] = {
    "binance": frozenset(
        {"api.binance.com", "api1.binance.com", "api2.binance.com", "api3.binance.com", "api4.binance.com"}
        | {"api-gcp.binance.com"}
    ),
    "binanceusdm": frozenset({"fapi.binance.com"}),
    "binanceus": frozenset({"api.binance.us"}),
}


def host_of(url: str) -> str:
    """The host a URL names, lower case ('' for none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine: localhost, a loopback address, or the unspecified 0.0.0.0 / ::
    (which reaches this machine too). A name that only starts with "127." is not."""
    host = host_of(url)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def listens_locally(host: str) -> bool:
    """Whether a server bound to ``host`` answers this machine only (0.0.0.0 and :: answer every network)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def venue_host_problem(settings: Settings) -> str | None:
    """Why [venue] rest_url does not fit the mode, or None: paper and dry-run never reach a real venue's API;
    live reaches only the venue's real API hosts (not a testnet, not this machine, not a host nobody checked)."""
    cfg = settings.venue
    if cfg.exchange == "sim" or not cfg.rest_url:
        return None
    host = host_of(cfg.rest_url)
    real = LIVE_HOSTS.get(cfg.exchange, frozenset())
    if settings.engine.mode != "live":
        if host in real:
            return (
                f"{settings.engine.mode} against {host}, {cfg.exchange}'s real-money API: remove [venue] rest_url "
                "(paper uses the exchange's testnet) or point it at a testnet or a local simulator"
            )
        return None
    if host not in real:
        where = "this machine" if is_loopback(cfg.rest_url) else host or repr(cfg.rest_url)
        allowed = ", ".join(sorted(real)) or f"none: live on {cfg.exchange} uses ccxt's own URL"
        return (
            f"live points real-money orders at {where}, which is not {cfg.exchange}'s real API "
            f"(accepted hosts: {allowed}); remove [venue] rest_url or name a real API host"
        )
    return None


def live_fail(settings: Settings) -> Status:
    """FAIL in live mode, WARN in paper and dry-run."""
    return Status.FAIL if settings.engine.mode == "live" else Status.WARN


def mode(settings: Settings, confirm_live: bool) -> Check:
    """Paper and dry-run reach only a simulator or a testnet; live is confirmed and reaches a real venue."""
    cfg = settings.venue
    evidence = {
        "mode": settings.engine.mode,
        "exchange": cfg.exchange,
        "rest_url": cfg.rest_url or "",
        "confirm_live": confirm_live,
    }
    c = ("mode", "Mode is what the operator asked for")
    problem = venue_host_problem(settings)
    if settings.engine.mode != "live":
        if problem is not None:
            return Check(*c, Status.FAIL, problem, evidence, "remove [venue] rest_url or name a testnet host")
        if cfg.exchange == "sim":
            where = "the built-in simulator"
        elif cfg.rest_url:
            where = f"a local server {cfg.rest_url}" if is_loopback(cfg.rest_url) else f"{host_of(cfg.rest_url)}"
        else:
            where = f"{cfg.exchange}'s testnet"
        sends = "orders are logged, nothing is sent" if settings.engine.mode == "dry-run" else "orders go"
        return Check(*c, Status.PASS, f"{settings.engine.mode.upper()}: {sends} to {where}", evidence)
    problems = []
    if not confirm_live:
        problems.append("live needs --confirm-live (or COCKPIT_CONFIRM_LIVE=1)")
    if cfg.exchange == "sim":
        problems.append('live cannot use exchange = "sim"')
    if problem is not None:
        problems.append(problem)
    if problems:
        return Check(
            *c,
            Status.FAIL,
            "; ".join(problems),
            evidence,
            "set a real exchange id, remove a local rest_url, and confirm with --confirm-live",
        )
    return Check(*c, Status.PASS, f"LIVE on {cfg.exchange}, confirmed by the operator", evidence)


def rate_limit(settings: Settings) -> Check:
    """ccxt's client-side rate limiter is on (runbook 003: WARN if off)."""
    on = settings.venue.rate_limit
    c = ("rate_limit", "Rate limiting on")
    if on:
        return Check(*c, Status.PASS, "ccxt's client-side rate limiter is on", {"rate_limit": True})
    return Check(
        *c,
        Status.WARN,
        "ccxt's client-side rate limiter is off: a burst can reach the venue's 429 and 418 ban",
        {"rate_limit": False},
        "set [venue] rate_limit = true",
    )


def stop_loss(settings: Settings) -> Check:
    """Every entry needs a stop-loss (runbook 003: required for live)."""
    s = settings
    pcts = {
        name: str(getattr(s.strategy, name).stop_loss_pct)
        for name in ("ladder", "ma_cross", "mean_reversion")
        if getattr(s.strategy, name).enabled
    }
    evidence = {"require_stop_loss": s.risk.require_stop_loss, "strategy_stop_loss_pct": pcts}
    c = ("stop_loss", "Stop-loss set")
    if s.risk.require_stop_loss:
        return Check(
            *c,
            Status.PASS,
            "every entry must carry a stop-loss; strategies: "
            + (", ".join(f"{k} {v}%" for k, v in pcts.items()) or "none enabled"),
            evidence,
        )
    return Check(
        *c,
        live_fail(settings),
        "[risk] require_stop_loss = false: entries may go out without a stop (runbook 003: required for live)",
        evidence,
        "set [risk] require_stop_loss = true",
    )


def daily_loss_limit(settings: Settings) -> Check:
    """A daily loss limit is set (runbook 003: required for live)."""
    limit = settings.risk.daily_loss_limit_pct
    c = ("daily_loss_limit", "Daily loss limit set")
    if limit > 0:
        return Check(
            *c,
            Status.PASS,
            f"trading halts and closes at a daily loss of {limit}%",
            {"daily_loss_limit_pct": str(limit)},
        )
    return Check(
        *c,
        live_fail(settings),
        "[risk] daily_loss_limit_pct = 0: no daily loss limit (runbook 003: required for live)",
        {"daily_loss_limit_pct": "0"},
        "set [risk] daily_loss_limit_pct, e.g. 3",
    )


def alert_sinks(settings: Settings) -> Check:
    """Someone is told: at least one notification URL (WARN without)."""
    targets = settings.alerts.notify
    c = ("alert_sinks", "Alert sinks configured")
    if targets:
        labels = [f"{masked(t.url.get_secret_value())} (>= {t.min_severity})" for t in targets]
        return Check(
            *c, Status.PASS, f"{len(targets)} notification target(s): {', '.join(labels)}", {"targets": labels}
        )
    return Check(
        *c,
        Status.WARN,
        "no notification URL: alerts reach the screen and the logs only",
        {"targets": []},
        "add [alerts] notify (e.g. COCKPIT_ALERTS__NOTIFY with a Telegram URL)",
    )


def chat_control(settings: Settings) -> Check:
    """The kill switch reaches the phone: a chat bot is enabled (runbook 003 "Pre-live Checklist" 7: "Ensure
    Telegram notifications are configured"); WARN in live without one."""
    chat = settings.chat
    bots = chat.enabled()
    c = ("chat_control", "Chat control configured")
    if bots:
        return Check(*c, Status.PASS, f"kill switch and status from {', '.join(bots)}", {"bots": bots})
    if settings.engine.mode != "live":
        return Check(*c, Status.PASS, "no chat bot (a WARN in live: runbook 003 pre-live checklist 7)", {"bots": []})
    return Check(
        *c,
        Status.WARN,
        "no chat bot: away from the desk, a CRIT reaches nobody who can halt from where they are",
        {"bots": []},
        "enable [chat.telegram] or [chat.slack] (docs/operator.md, chat control)",
    )


def health(settings: Settings) -> Check:
    """/health and /metrics are off or on loopback (they show state and positions)."""
    h = settings.health
    c = ("health_loopback", "Health and metrics on loopback")
    evidence = {"host": h.host, "port": h.port}
    if not h.port:
        return Check(*c, Status.PASS, "/health and /metrics are off ([health] port = 0)", evidence)
    if listens_locally(h.host):
        return Check(*c, Status.PASS, f"served on {h.host}:{h.port} (loopback)", evidence)
    return Check(
        *c,
        Status.WARN,
        f"served on {h.host}:{h.port}: reachable from other machines, with the engine's state and positions",
        evidence,
        'set [health] host = "127.0.0.1" unless a firewall stands in front',
    )
