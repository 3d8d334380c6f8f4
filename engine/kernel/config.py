"""The one frozen configuration model: defaults, then ``config.toml``, then ``.env``, then the environment.

Precedence (highest first): environment variables (``COCKPIT_`` prefix, ``__`` for nesting, e.g.
``COCKPIT_VENUE__EXCHANGE=binance``), then ``.env`` in the working directory, then the TOML file, then the
defaults here. The environment wins so that the runbooks' emergency toggles work without editing files.
Secrets (API key and secret) are read only from the environment or ``.env``: a TOML file that holds one is
refused, so a key never lands in a file that gets copied, committed or pasted into a ticket.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from engine.kernel.paths import default_data_dir

SECRET_KEYS = ("api_key", "api_secret")
# Chat tokens, by bot: like the venue's keys, only from the environment or .env.
CHAT_SECRET_KEYS = {"telegram": ("token",), "slack": ("bot_token", "app_token")}


def _not_below(lower: str, *, equal_ok: bool = False, words: str = "over") -> Any:
    """A validator of a CRIT threshold against its WARN one (``lower``, validated before it): the CRIT must be over
    it (or at least it, with ``equal_ok``), or the WARN could never come first."""

    def check(cls: type, value: Any, info: ValidationInfo) -> Any:
        floor = info.data.get(lower)
        if floor is not None and (value < floor if equal_ok else value <= floor):
            relation = "at least" if equal_ok else words
            raise ValueError(f"{info.field_name} ({value}) must be {relation} {lower} ({floor})")
        return value

    return classmethod(check)


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the key and what to do."""


class _Section(BaseModel):
    # Every number finite: `interval_s = inf` would stop every monitor, and a NaN compares false with any threshold.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class VenueConfig(_Section):
    """Where orders go: ``sim`` starts the built-in simulator; any other value is a ccxt exchange id."""

    exchange: str = "sim"
    # "spot" trades the spot market (a position is a base-asset balance); "usdm" trades USDⓈ-M perpetual futures
    # (runbook 002): signed positions with leverage, through ccxt's unified derivatives calls. On the simulator it
    # is ccxt's ``binanceusdm``; any other ccxt id is used as named, its swap markets loaded.
    market: Literal["spot", "usdm"] = "spot"
    # Perps only: the venue's dead-man's switch (Binance's countdownCancelAll) is armed for every symbol with this
    # many seconds and renewed while the engine is healthy, so a dead engine's working orders are cancelled by the
    # venue within it; 0 turns it off (a checklist WARN).
    deadman_s: float = Field(default=60.0, ge=0, le=3600)
    rest_url: str | None = None
    ws_url: str | None = None
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeout_ms: int = Field(default=10_000, ge=500, le=120_000)
    sim_seed: int = 1
    # Backoff between retries of a failed call or stream, in seconds (runbook 000 §3: 1, 2, 4, 8).
    retry_backoff_s: tuple[Annotated[float, Field(gt=0, le=300)], ...] = Field(
        default=(1.0, 2.0, 4.0, 8.0), min_length=1, max_length=20
    )
    # REST polling keeps state fresh every poll_s while a stream is down or market data is older than stale_s
    # (runbook 001 §1: WARN when the last update is over 10 s old).
    poll_s: float = Field(default=2.0, gt=0, le=300)
    stale_s: float = Field(default=10.0, gt=0, le=3600)
    # After breaker_failures consecutive temporary failures, REST calls are suspended for breaker_cooldown_s,
    # then one probe call decides whether they resume.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    # ccxt's client-side rate limiter (runbook 003 pre-flight: "Rate Limit Configured, WARN if off").
    rate_limit: bool = True
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        if value != "sim" and not _ccxt_pro_has(value):
            raise ValueError(
                f'{value!r} is not a ccxt exchange id; use "sim" or one of ccxt.pro.exchanges (e.g. "binance")'
            )
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_are_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for sym in value:
            if sym.count("/") != 1:
                raise ValueError(f"symbol {sym!r} must look like 'BTC/USDT'")
        if not value:
            raise ValueError("at least one symbol is needed")
        return value


def _ccxt_pro_has(exchange_id: str) -> bool:
    """Whether ``exchange_id`` is in ``ccxt.pro.exchanges``, without importing ccxt (most of a second): that list
    is the modules of the ccxt.pro package, one per exchange."""
    spec = importlib.util.find_spec("ccxt")
    if spec is None or not spec.submodule_search_locations:
        return False
    name = exchange_id if exchange_id.isidentifier() and not exchange_id.startswith("_") else ""
    return bool(name) and any((Path(root) / "pro" / f"{name}.py").is_file() for root in spec.submodule_search_locations)


class EngineConfig(_Section):
    """Trading mode and where state lives."""

    mode: Literal["paper", "dry-run", "live"] = "paper"
    data_dir: Path = Field(default_factory=default_data_dir)
    quote_asset: str = "USDT"
    # How often equity is sampled into the equity curve, drawdown and daily-loss checks.
    equity_sample_s: float = Field(default=10.0, gt=0, le=3600)
    # A start after an unclean stop (a crash, a watchdog's kill, kill -9: the last run never recorded its stop):
    # "halted" comes back HALTED with an incident, so no strategy trades again before a person has looked; "keep"
    # keeps the state the store holds.
    after_unclean_stop: Literal["halted", "keep"] = "halted"


class RiskConfig(_Section):
    """Pre-trade limits and automatic halts. Defaults from runbook 003's live checklist unless noted."""

    max_position_pct: Decimal = Field(default=Decimal("3"), gt=0, le=100)  # MAX_POSITION_SIZE_PCT=3.0
    max_concurrent_positions: int = Field(default=3, ge=1)  # MAX_CONCURRENT_POSITIONS=3
    require_stop_loss: bool = True  # "Stop-Loss Configured: FAIL if 0"
    # Every held position's stop rests at the venue as a stop-limit, so it protects the position while the engine
    # is gone (runbook 003: "stop-loss orders are on-exchange if using stop-limit"); off is a checklist WARN.
    stops_at_venue: bool = True
    # The stop-limit's limit sits this far under its trigger, in percent: room for the price to gap and still fill.
    stop_limit_offset_pct: Decimal = Field(default=Decimal("0.5"), gt=0, lt=50)
    # DAILY_LOSS_LIMIT_PCT=3.0; 0 turns the limit off (the go/no-go checklist refuses that in live mode).
    daily_loss_limit_pct: Decimal = Field(default=Decimal("3"), ge=0, le=100)
    max_drawdown_warn_pct: Decimal = Field(default=Decimal("10"), gt=0, le=100)
    max_drawdown_pct: Decimal = Field(default=Decimal("15"), gt=0, le=100)  # validation: max drawdown <= 15%
    max_orders_per_minute: int = Field(default=30, ge=1)
    # Start-up toggles (runbook 002 §1): RISK_KILL_SWITCH_ENABLED=1 / RISK_REDUCE_ONLY_MODE=1 map here.
    kill_switch: bool = False
    reduce_only: bool = False
    # Perps ([venue] market = "usdm", runbook 002 RISK_MAX_LEVERAGE=3): no position may be levered over
    # max_leverage; ``leverage`` is what is set per symbol at start, and ``margin_mode`` its margin type.
    max_leverage: Decimal = Field(default=Decimal("3"), gt=0, le=125)
    leverage: int = Field(default=3, ge=1, le=125)
    margin_mode: Literal["isolated", "cross"] = "isolated"

    _hard_over_warn = field_validator("max_drawdown_pct")(_not_below("max_drawdown_warn_pct", equal_ok=True))

    @model_validator(mode="after")
    def _leverage_under_max(self) -> RiskConfig:
        if self.leverage > self.max_leverage:
            raise ValueError(f"[risk] leverage ({self.leverage}) must be at most max_leverage ({self.max_leverage})")
        return self


class MonitorsConfig(_Section):
    """The runbooks' monitors: each signal's WARN and CRIT thresholds (runbook 001 unless noted)."""

    interval_s: float = Field(default=1.0, gt=0, le=60)  # how often every monitor takes a reading
    confirm_readings: int = Field(default=2, ge=1)  # consecutive CRIT readings before acting (no single bad read)
    # §1 websocket staleness (market and user streams): WARN reconnects, CRIT closes all ("ws_stale: MUST close").
    ws_stale_warn_s: float = Field(default=10.0, gt=0, le=3600)
    ws_stale_crit_s: float = Field(default=60.0, gt=0, le=3600)
    # §2 REST errors (any call, polling and the ping included): this many within the window halts.
    rest_errors_max: int = Field(default=2, ge=1)
    rest_errors_window_s: float = Field(default=60.0, gt=0, le=3600)
    ping_s: float = Field(default=5.0, gt=0, le=300)  # a cheap public call, so a silent venue is noticed
    # §3 latency p95.
    rest_latency_warn_ms: float = Field(default=2000.0, gt=0)
    stream_latency_warn_ms: float = Field(default=500.0, gt=0)
    reconnects_warn_per_hour: int = Field(default=6, ge=1)
    # §4 stuck orders: open longer than stuck_order_s is cancelled (and placed again if stuck_order_reissue).
    stuck_order_s: float = Field(default=300.0, gt=0, le=86_400)
    stuck_order_reissue: bool = False
    # §5 daily loss: WARN at this percent of [risk] daily_loss_limit_pct; at the limit halt and close all.
    daily_loss_warn_pct_of_limit: Decimal = Field(default=Decimal("80"), gt=0, le=100)
    # Flash crash: a move over flash_crash_pct within flash_crash_window_s halts; resume is refused until every
    # minute of the last flash_calm_s moved less than flash_calm_pct.
    flash_crash_pct: Decimal = Field(default=Decimal("10"), gt=0)
    flash_crash_window_s: float = Field(default=60.0, gt=0, le=3600)
    flash_calm_pct: Decimal = Field(default=Decimal("1"), gt=0)
    flash_calm_s: float = Field(default=300.0, ge=0, le=86_400)
    # §6 reconciliation: the engine's own fills against the venue's balances, in percent of equity.
    mismatch_warn_pct: Decimal = Field(default=Decimal("0.1"), ge=0)
    mismatch_halt_pct: Decimal = Field(default=Decimal("1"), gt=0)
    reconcile_s: float = Field(default=5.0, gt=0, le=3600)
    clock_skew_warn_ms: float = Field(default=500.0, gt=0)
    # Perps (runbook 002 "Key Metrics": leverage vs maximum, liquidation distance). leverage: WARN at this percent
    # of [risk] max_leverage, CRIT over the maximum (reduce-only). liquidation_distance: the mark's distance to the
    # liquidation price in percent; WARN under liq_warn_pct, CRIT under liq_crit_pct, and the CRIT's action:
    # "close" closes the position, "reduce" sells liq_reduce_pct of it with a reduce-only market order.
    leverage_warn_pct_of_max: Decimal = Field(default=Decimal("80"), gt=0, le=100)
    liq_crit_pct: Decimal = Field(default=Decimal("7.5"), gt=0, lt=100)
    liq_warn_pct: Decimal = Field(default=Decimal("15"), gt=0, lt=100)
    liq_crit_action: Literal["close", "reduce"] = "close"
    liq_reduce_pct: Decimal = Field(default=Decimal("50"), gt=0, le=100)
    # funding: WARN when the funding about to be paid is over this percent of equity.
    funding_warn_pct: Decimal = Field(default=Decimal("0.1"), gt=0)
    # mark_divergence: the mark price away from the last price, in percent: WARN, then CRIT (reduce-only).
    mark_divergence_warn_pct: Decimal = Field(default=Decimal("1"), gt=0)
    mark_divergence_crit_pct: Decimal = Field(default=Decimal("3"), gt=0)

    _crit_after_warn = field_validator("ws_stale_crit_s")(_not_below("ws_stale_warn_s", words="longer than"))
    _halt_over_warn = field_validator("mismatch_halt_pct")(_not_below("mismatch_warn_pct"))
    _liq_crit_under_warn = field_validator("liq_warn_pct")(_not_below("liq_crit_pct"))
    _divergence_crit_over_warn = field_validator("mark_divergence_crit_pct")(_not_below("mark_divergence_warn_pct"))


class NotifyTarget(_Section):
    """One notification URL in apprise's syntax (Slack, Telegram, e-mail, json:// webhooks...) and the least
    severity it receives. The URL may carry a token: it is a secret, shown only masked."""

    url: SecretStr
    min_severity: Literal["INFO", "WARN", "CRIT"] = "WARN"

    @field_validator("url")
    @classmethod
    def _apprise_understands(cls, url: SecretStr) -> SecretStr:
        import apprise

        text = url.get_secret_value()
        try:
            _ = urlsplit(text).port  # a port past 65535 passes apprise and fails later, at the first send
        except ValueError:
            raise ValueError("its port is not a port (0-65535); fix the URL") from None
        if not apprise.Apprise().add(text):
            raise ValueError(
                "not a notification URL apprise understands (e.g. json://host:port/path, slack://..., tgram://...)"
            )
        return url


class AlertsConfig(_Section):
    """Where alerts go and how they are repeated (runbook 000 §4: WARN to the on-duty trader within 15 min, CRIT to
    on-duty and backup within 5 min, a persistent CRIT escalated within 2 min)."""

    dedupe_s: float = Field(default=60.0, ge=0)  # the same code again within this is counted, not repeated
    warn_escalate_s: float = Field(default=900.0, gt=0, le=86_400)  # an unacknowledged WARN becomes CRIT after this
    crit_repeat_s: float = Field(default=120.0, gt=0, le=86_400)  # an unacknowledged CRIT is sent again this often
    screen_min_severity: Literal["INFO", "WARN", "CRIT"] = "INFO"  # the cockpit's alert list
    log_min_severity: Literal["INFO", "WARN", "CRIT"] = "INFO"  # alerts written to trading.log / errors.log
    notify: tuple[NotifyTarget, ...] = ()
    notify_retries: int = Field(default=3, ge=0)
    log_max_bytes: int = Field(default=10_000_000, ge=10_000)  # trading.log, errors.log, trades.log rotate here
    log_backups: int = Field(default=5, ge=0)
    daily_summary: bool = True  # at 23:59 UTC, the day's summary to every sink


class HealthConfig(_Section):
    """``GET /health`` and ``GET /metrics`` for load balancers, systemd and Prometheus; port 0 is off."""

    port: int = Field(default=0, ge=0, le=65535)
    host: str = "127.0.0.1"


class ApiConfig(_Section):
    """The engine's service API. The local socket (``DATA_DIR/cockpit.sock``, owner-only) is always served; the
    remote HTTP + WebSocket API is off until ``port`` is set. Off loopback it needs ``tls_cert`` and ``tls_key``, or
    ``allow_plaintext = true`` said out loud (tokens would cross the network in clear)."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_plaintext: bool = False

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("[api] tls_cert and tls_key go together: set both (PEM files) or neither")
        return self


class RemoteEngine(_Section):
    """One more engine a cockpit watches (``[[remote]]``): its remote API (``url`` and ``token_file``, as ``--url``
    and ``--token-file``) or its data directory on this machine (``data_dir``: its socket). ``name`` is what the
    engine list calls it (default: the URL's host:port, or the directory's name)."""

    name: str | None = Field(default=None, min_length=1, max_length=40)
    url: str | None = None
    token_file: Path | None = None
    data_dir: Path | None = None

    @model_validator(mode="after")
    def _one_place(self) -> RemoteEngine:
        if (self.url is None) == (self.data_dir is None):
            raise ValueError("a [[remote]] entry names one engine: its url (with token_file) or its data_dir")
        if (self.url is None) != (self.token_file is None):
            raise ValueError("[[remote]] url and token_file go together (the engine's remote API, and your token)")
        if self.url is not None and not self.url.strip().startswith(("http://", "https://")):
            raise ValueError(f"[[remote]] url {self.url!r}: give the engine's remote API as http(s)://HOST:PORT")
        return self


class TelegramChatConfig(_Section):
    """A Telegram bot that takes the kill switch and status commands from the allowed chats and users (runbook 003
    "Emergency Procedures": /stop, /closeall, /resume, /status), by long polling: no inbound port. ``token`` comes
    from the environment only (``COCKPIT_CHAT__TELEGRAM__TOKEN``)."""

    enabled: bool = False
    token: SecretStr | None = None
    api_url: str = "https://api.telegram.org/bot"  # the Bot API's base; the token is appended (tests: a local fake)
    chat_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    poll_timeout_s: float = Field(default=10.0, ge=0, le=50)  # long polling: how long one getUpdates may wait
    rate_per_min: int = Field(default=20, ge=1, le=600)  # commands per user per minute (a burst of 5 at once)
    alerts: Literal["INFO", "WARN", "CRIT", "off"] = "CRIT"  # alerts posted to the allowed chats, with buttons

    @model_validator(mode="after")
    def _usable(self) -> TelegramChatConfig:
        if self.enabled and (not self.chat_ids or not self.user_ids):
            raise ValueError("[chat.telegram] needs chat_ids and user_ids (allow-lists) when enabled")
        if self.enabled and self.token is None:
            raise ValueError("[chat.telegram] is enabled: set COCKPIT_CHAT__TELEGRAM__TOKEN in the environment or .env")
        return self


class SlackChatConfig(_Section):
    """A Slack app that takes the same commands, as slash commands or messages, through Socket Mode: no inbound
    port (runbook 004 "Slack Commands": /status, /mode halt, /snapshot now). Both tokens come from the environment
    only: ``COCKPIT_CHAT__SLACK__BOT_TOKEN`` (xoxb-) and ``COCKPIT_CHAT__SLACK__APP_TOKEN`` (xapp-)."""

    enabled: bool = False
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"  # the Web API's base (tests: a local fake)
    channel_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    rate_per_min: int = Field(default=20, ge=1, le=600)
    alerts: Literal["INFO", "WARN", "CRIT", "off"] = "CRIT"

    @model_validator(mode="after")
    def _usable(self) -> SlackChatConfig:
        if self.enabled and (not self.channel_ids or not self.user_ids):
            raise ValueError("[chat.slack] needs channel_ids and user_ids (allow-lists) when enabled")
        if self.enabled and (self.bot_token is None or self.app_token is None):
            raise ValueError(
                "[chat.slack] is enabled: set COCKPIT_CHAT__SLACK__BOT_TOKEN and COCKPIT_CHAT__SLACK__APP_TOKEN in "
                "the environment or .env"
            )
        return self


class ChatConfig(_Section):
    """Chat bots: the kill switch and status from a phone. Off until a bot is enabled."""

    telegram: TelegramChatConfig = TelegramChatConfig()
    slack: SlackChatConfig = SlackChatConfig()

    def enabled(self) -> list[str]:
        """The names of the bots turned on, in this order: telegram, slack."""
        return [name for name, bot in (("telegram", self.telegram), ("slack", self.slack)) if bot.enabled]


class TuiConfig(_Section):
    """The cockpit's screen."""

    # When the terminal goes away (an SSH drop: SIGHUP), what the engine does before it exits; recorded like a key.
    on_hangup: Literal["halt", "cancel_all", "close_all", "nothing"] = "cancel_all"


class LadderConfig(_Section):
    """The demo ladder: one resting buy under the price, one resting sell over the entry while holding."""

    enabled: bool = True
    spacing_pct: Decimal = Field(default=Decimal("0.15"), gt=0, lt=50)
    order_quote: Decimal = Field(default=Decimal("100"), gt=0)
    # No new buy once the position plus that buy would be worth more than this (in the quote currency): under
    # [risk] max_position_pct of the paper account (3 % of 10,000), so a falling market is not refused every step.
    max_holding_quote: Decimal = Field(default=Decimal("200"), gt=0)
    stop_loss_pct: Decimal = Field(default=Decimal("2"), gt=0, lt=100)


class MaCrossConfig(_Section):
    """Moving-average crossover: enter long when the fast average crosses above the slow one, exit below."""

    enabled: bool = False
    fast: int = Field(default=10, ge=2)
    slow: int = Field(default=30, ge=3)
    order_quote: Decimal = Field(default=Decimal("100"), gt=0)
    stop_loss_pct: Decimal = Field(default=Decimal("1"), gt=0, lt=100)

    _slow_after_fast = field_validator("slow")(_not_below("fast", words="longer than"))


class MeanReversionConfig(_Section):
    """Mean reversion: buy when the price is ``entry_z`` deviations under its mean, exit near the mean."""

    enabled: bool = False
    window: int = Field(default=20, ge=5)
    entry_z: Decimal = Field(default=Decimal("2"), gt=0)
    exit_z: Decimal = Field(default=Decimal("0.5"), ge=0)
    order_quote: Decimal = Field(default=Decimal("100"), gt=0)
    stop_loss_pct: Decimal = Field(default=Decimal("1.5"), gt=0, lt=100)


class PreflightConfig(_Section):
    """The go/no-go checklist (runbook 000 §1, runbook 003 "Automated Pre-flight Checks")."""

    min_balance: Decimal = Field(default=Decimal("100"), ge=0)  # quote asset; runbook 003: "FAIL if < $100"
    # A GO paper-validation report older than this is no evidence (WARN; FAIL in live when the latest is NO-GO).
    validation_max_age_h: float = Field(default=168.0, gt=0)
    # Seconds each stream gets to deliver its first event.
    stream_timeout_s: float = Field(default=10.0, gt=0)
    # On a paper or testnet venue: a market order filled and a far limit order cancelled (000 §1 "Testnet Trading").
    smoke_trade: bool = True
    # Runbook 000 §1 "Dry-Run Stability": over the last 24 h of paper / dry-run, at most this many CRIT alerts,
    # a fill rate over min_fill_rate_pct, fewer than max_reconnects reconnects and at most max_rest_errors errors.
    stability_window_h: float = Field(default=24.0, gt=0)
    max_crit_alerts: int = Field(default=0, ge=0)
    min_fill_rate_pct: Decimal = Field(default=Decimal("90"), ge=0, le=100)
    max_reconnects: int = Field(default=4, ge=0)
    max_rest_errors: int = Field(default=0, ge=0)


class ValidationConfig(_Section):
    """The accelerated paper run (`cockpit validate`) and its GO / NO-GO criteria (runbook 003 defaults)."""

    duration_h: float = Field(default=48.0, gt=0)
    # Simulated seconds per real second, at most: the run never goes faster, and goes slower when the engine
    # cannot keep up. 2400 puts 48 h in 72 s.
    speed: float = Field(default=2400.0, gt=0)
    # Prices move every tick_s simulated seconds; engine loops due within a tick run once at its end.
    tick_s: float = Field(default=15.0, ge=0.5)
    # Where simulated time starts (a seeded run is only repeatable from a fixed start: days roll over alike).
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)
    starting_balance: Decimal = Field(default=Decimal("10000"), gt=0)  # in the quote asset
    min_trades: int = Field(default=10, ge=0)  # closed round trips
    min_win_rate_pct: Decimal = Field(default=Decimal("45"), ge=0, le=100)
    min_sharpe: Decimal = Decimal("0.5")
    max_drawdown_pct: Decimal = Field(default=Decimal("15"), gt=0, le=100)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrategyConfig(_Section):
    """Strategies: a master switch, the step interval, the guards, the built-ins, and the strategies users write
    (found under ``paths`` or through the ``cockpit.strategies`` entry points, run when named in ``run``, their
    parameters in ``params.NAME``; those are checked against each strategy's own model when it is loaded)."""

    enabled: bool = True
    interval_s: float = Field(default=3.0, gt=0)
    # Runbook 001 §5 / 000 §3: a strategy that keeps losing is stood down before it hurts the account.
    max_consecutive_losses: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=3600.0, ge=0)
    # Runbook 003 "Strategy Underperforming": a strategy disabled for raising or overrunning its step is looked at
    # again after this many hours, and runs again if its stats allow (its losing streak under the limit).
    re_enable_check_hours: float = Field(default=1.0, gt=0)
    # Directories of strategy files, relative to the config file (or the working directory without one).
    paths: tuple[Path, ...] = (Path("strategies"),)
    # User strategies to run, by name (`cockpit strategy list` shows what is found).
    run: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = {}
    ladder: LadderConfig = LadderConfig()
    ma_cross: MaCrossConfig = MaCrossConfig()
    mean_reversion: MeanReversionConfig = MeanReversionConfig()


class Settings(BaseSettings):
    """Everything cockpit is configured with; frozen once loaded."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="COCKPIT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
    )

    venue: VenueConfig = VenueConfig()
    engine: EngineConfig = EngineConfig()
    risk: RiskConfig = RiskConfig()
    monitors: MonitorsConfig = MonitorsConfig()
    alerts: AlertsConfig = AlertsConfig()
    health: HealthConfig = HealthConfig()
    api: ApiConfig = ApiConfig()
    chat: ChatConfig = ChatConfig()
    tui: TuiConfig = TuiConfig()
    strategy: StrategyConfig = StrategyConfig()
    preflight: PreflightConfig = PreflightConfig()
    validation: ValidationConfig = ValidationConfig()
    # Other engines one cockpit watches beside (or instead of) this data directory's (`[[remote]]` entries).
    remote: tuple[RemoteEngine, ...] = ()
    # The TUI's keys by binding id, e.g. halt = "f2" or close_all = "X" (ids: halt, cancel_all, close_all,
    # reconnect, resume, reduce_only, quit). Unknown ids are refused at start.
    keys: dict[str, str] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init_settings carries the TOML file's content (see load_settings): lowest after defaults.
        return (env_settings, dotenv_settings, init_settings)


# The runbooks' own toggles, accepted as they are written there (runbook 002 §1, runbook 004
# "Environment Toggles"), mapped onto cockpit's settings. DRY_RUN=0 never means live: that needs mode = "live"
# and an explicit confirmation.
ENV_ALIASES: dict[str, tuple[str, str, Any]] = {
    "RISK_KILL_SWITCH_ENABLED": ("risk", "kill_switch", True),
    "RISK_REDUCE_ONLY_MODE": ("risk", "reduce_only", True),
    "DRY_RUN": ("engine", "mode", "dry-run"),
}
TRUTHY = {"1", "true", "yes", "on"}
# Keys that moved between sections: a config written for an older cockpit gets told where they went.
MOVED = (("venue", "reconcile_s", "monitors"), ("risk", "stuck_order_s", "monitors"))


def _aliases(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (section, key, value) in ENV_ALIASES.items():
        if environ.get(name, "").strip().lower() in TRUTHY:
            out.setdefault(section, {})[key] = value
    return out


# COCKPIT_ variables that are not settings but are read by the program.
OTHER_ENV = frozenset({"COCKPIT_CONFIRM_LIVE", "COCKPIT_SIM_REST", "COCKPIT_SIM_TOKEN"})


def setting_env_names() -> list[str]:
    """Every COCKPIT_SECTION__KEY a setting can be given by, and the other COCKPIT_ variables cockpit reads."""
    names = [f"COCKPIT_{name.upper()}" for name in Settings.model_fields]
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [f"COCKPIT_{section.upper()}__{key.upper()}" for key in model.model_fields]
    return sorted(set(names) | OTHER_ENV)


def unknown_env(environ: dict[str, str]) -> str | None:
    """A sentence naming each COCKPIT_ variable that sets nothing (a misspelled section is silently ignored
    otherwise: ``COCKPIT_RISKS__KILL_SWITCH=1`` would leave the kill switch off), with the closest real name."""
    known = setting_env_names()
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("COCKPIT_") or upper in known:
            continue
        parts = upper.split("__")
        if len(parts) > 2 and "__".join(parts[:2]) in known:
            continue  # deeper keys (a strategy's parameters) are checked by the section's own model
        if len(parts) == 2 and parts[0] in known and not any(k.startswith(parts[0] + "__") for k in known):
            continue  # a table of free keys ([keys]): its entries are checked where they are used
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        problems.append(f"{name} is not a cockpit setting" + (f" (did you mean {close[0]}?)" if close else ""))
    if not problems:
        return None
    return "environment: " + "; ".join(problems) + "; remove or rename it (settings are COCKPIT_SECTION__KEY)"


def load_settings(config_file: Path | None = None, data_dir: Path | None = None) -> Settings:
    """Load settings from ``config_file`` (if given or ``./config.toml`` exists) plus env and ``.env``."""
    environ = dict(os.environ)
    if Path(".env").is_file():
        environ.update({k: v or "" for k, v in dotenv_values(".env").items()})
    problem = unknown_env(environ)
    if problem is not None:
        raise ConfigError(problem)
    path = config_file
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        engine = data.get("engine")
        if isinstance(engine, dict) and isinstance(engine.get("data_dir"), str):
            # A relative data_dir in a file is relative to that file, not to wherever cockpit is run from: the
            # same config finds the same store from any directory.
            where = Path(engine["data_dir"]).expanduser()
            engine["data_dir"] = str(where if where.is_absolute() else path.parent.resolve() / where)
        strategy = data.get("strategy")
        if isinstance(strategy, dict) and isinstance(strategy.get("paths"), list):
            strategy["paths"] = [  # like data_dir: relative to the config file
                str(where if (where := Path(p).expanduser()).is_absolute() else path.parent.resolve() / where)
                if isinstance(p, str)
                else p
                for p in strategy["paths"]
            ]
        api = data.get("api")
        for key in ("tls_cert", "tls_key"):
            if isinstance(api, dict) and isinstance(api.get(key), str):
                where = Path(api[key]).expanduser()  # like data_dir: relative to the config file
                api[key] = str(where if where.is_absolute() else path.parent.resolve() / where)
    if data_dir is not None:
        data.setdefault("engine", {})["data_dir"] = str(data_dir)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    except SettingsError as exc:
        # A list or table from the environment must be JSON, e.g. COCKPIT_VENUE__SYMBOLS='["BTC/USDT"]'.
        raise ConfigError(
            f"environment: {exc}; list and table values must be JSON, e.g. "
            "COCKPIT_VENUE__SYMBOLS='[\"BTC/USDT\"]' or COCKPIT_VENUE__RETRY_BACKOFF_S='[1, 2, 4, 8]'"
        ) from None
    for section, values in _aliases(dict(os.environ)).items():
        current = getattr(settings, section)
        settings = settings.model_copy(update={section: current.model_copy(update=values)})
    if data_dir is not None and settings.engine.data_dir != data_dir:
        # --data-dir on the command line beats every other source.
        settings = settings.model_copy(update={"engine": settings.engine.model_copy(update={"data_dir": data_dir})})
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; pass --config with an existing file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, key, now in MOVED:
        if isinstance(data.get(section), dict) and key in data[section]:
            raise ConfigError(f"{path}: [{section}] {key} has moved to [{now}] {key}; move the line there")
    chat = data.get("chat")
    for bot, keys in CHAT_SECRET_KEYS.items():
        table = chat.get(bot) if isinstance(chat, dict) else None
        for key in keys:
            if isinstance(table, dict) and key in table:
                raise ConfigError(
                    f"{path}: [chat.{bot}] {key} must not be in a config file; set "
                    f"COCKPIT_CHAT__{bot.upper()}__{key.upper()} in the environment or in .env instead"
                )
    venue = data.get("venue")
    if isinstance(venue, dict):
        for key in SECRET_KEYS:
            if key in venue:
                raise ConfigError(
                    f"{path}: [venue] {key} must not be in a config file; set "
                    f"COCKPIT_VENUE__{key.upper()} in the environment or in .env instead"
                )
    return data


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = str(path) if path else "configuration"
    lines = [f"{where}: {exc.error_count()} invalid setting(s):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key; check its spelling against config.toml's comments")
        else:
            # Never echo the input: it might be a secret from the environment.
            lines.append(f"  {key}: {err['msg']}")
    lines.append("  (environment variables COCKPIT_<SECTION>__<KEY> and .env override the file)")
    return "\n".join(lines)
