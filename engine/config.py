"""The one frozen configuration model: defaults, then ``config.toml``, then ``.env``, then the environment.

Precedence (highest first): environment variables (``COCKPIT_`` prefix, ``__`` for nesting, e.g.
``COCKPIT_VENUE__EXCHANGE=binance``), then ``.env`` in the working directory, then the TOML file, then the
defaults here. The environment wins so that the runbooks' emergency toggles work without editing files.
Secrets (API key and secret) are read only from the environment or ``.env``: a TOML file that holds one is
refused, so a key never lands in a file that gets copied, committed or pasted into a ticket.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECRET_KEYS = ("api_key", "api_secret")


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the key and what to do."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VenueConfig(_Section):
    """Where orders go: ``sim`` starts the built-in simulator; any other value is a ccxt exchange id."""

    exchange: str = "sim"
    rest_url: str | None = None
    ws_url: str | None = None
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeout_ms: int = Field(default=10_000, ge=500, le=120_000)
    sim_seed: int = 1
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None

    @field_validator("symbols")
    @classmethod
    def _symbols_are_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for sym in value:
            if sym.count("/") != 1:
                raise ValueError(f"symbol {sym!r} must look like 'BTC/USDT'")
        if not value:
            raise ValueError("at least one symbol is needed")
        return value


class EngineConfig(_Section):
    """Trading mode and where state lives."""

    mode: Literal["paper", "dry-run", "live"] = "paper"
    data_dir: Path = Path("data")
    quote_asset: str = "USDT"


class StrategyConfig(_Section):
    """The built-in ladder: one resting buy under the price, one resting sell over the entry when holding."""

    enabled: bool = True
    interval_s: float = Field(default=3.0, gt=0)
    spacing_pct: Decimal = Field(default=Decimal("0.15"), gt=0, lt=50)
    order_quote: Decimal = Field(default=Decimal("100"), gt=0)


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
    strategy: StrategyConfig = StrategyConfig()

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


def load_settings(config_file: Path | None = None, data_dir: Path | None = None) -> Settings:
    """Load settings from ``config_file`` (if given or ``./config.toml`` exists) plus env and ``.env``."""
    path = config_file
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
    if data_dir is not None:
        data.setdefault("engine", {})["data_dir"] = str(data_dir)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    if data_dir is not None and settings.engine.data_dir != data_dir:
        # --data-dir on the command line beats every other source.
        settings = settings.model_copy(
            update={"engine": settings.engine.model_copy(update={"data_dir": data_dir})}
        )
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
