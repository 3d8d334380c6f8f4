"""The checklist's checks of the configuration alone: the mode against the venue, the rate limiter, the stop-loss
and daily loss limit (required for live, runbook 003), alert sinks, and where health and metrics are served.

Each takes the settings and answers a ``Check``; those that are FAIL in live mode are WARN in paper and dry-run.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.gate.checklist import Check, Status
from engine.kernel.config import Settings
from engine.ops.notify import masked


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _live_fail(settings: Settings) -> Status:
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
    if settings.engine.mode != "live":
        where: str | None
        if cfg.exchange == "sim":
            where = "the built-in simulator"
        elif cfg.rest_url:
            where = f"a local server {cfg.rest_url}" if is_loopback(cfg.rest_url) else None
        else:
            where = f"{cfg.exchange}'s testnet"
        if where is None:
            return Check(
                *c,
                Status.FAIL,
                f"{settings.engine.mode} against {cfg.rest_url}, which is not on this "
                "machine: it could be a real venue",
                evidence,
                "remove [venue] rest_url (paper uses the testnet) or point it at a 127.0.0.1 simulator",
            )
        sends = "orders are logged, nothing is sent" if settings.engine.mode == "dry-run" else "orders go"
        return Check(*c, Status.PASS, f"{settings.engine.mode.upper()}: {sends} to {where}", evidence)
    problems = []
    if not confirm_live:
        problems.append("live needs --confirm-live (or COCKPIT_CONFIRM_LIVE=1)")
    if cfg.exchange == "sim":
        problems.append('live cannot use exchange = "sim"')
    if cfg.rest_url and is_loopback(cfg.rest_url):
        problems.append(f"live points real-money orders at a local server ({cfg.rest_url})")
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
        _live_fail(settings),
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
        _live_fail(settings),
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


def health(settings: Settings) -> Check:
    """/health and /metrics are off or on loopback (they show state and positions)."""
    h = settings.health
    c = ("health_loopback", "Health and metrics on loopback")
    evidence = {"host": h.host, "port": h.port}
    if not h.port:
        return Check(*c, Status.PASS, "/health and /metrics are off ([health] port = 0)", evidence)
    if is_loopback(f"http://{h.host}") or h.host in ("localhost", "::1"):
        return Check(*c, Status.PASS, f"served on {h.host}:{h.port} (loopback)", evidence)
    return Check(
        *c,
        Status.WARN,
        f"served on {h.host}:{h.port}: reachable from other machines, with the engine's state and positions",
        evidence,
        'set [health] host = "127.0.0.1" unless a firewall stands in front',
    )
