"""Settings from a TOML file (`defai.toml`) and `DEFAI_*` environment variables.

The environment wins over the file (`DEFAI_EXCHANGE__API_KEY` sets `[exchange] api_key`). An
unknown or mistyped key is an error naming the key and where it came from: a typo in a risk
limit must never be silently ignored. Secrets are `SecretStr`: redacted in every dump and repr.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from defai.agent.guard import RiskLimits
from defai.errors import ConfigError

ENV_PREFIX = "DEFAI_"
ENV_CONFIG_PATH = "DEFAI_CONFIG"
DEFAULT_CONFIG_FILE = "defai.toml"
REDACTED = "**********"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(Section):
    """Where downloaded candles are cached."""

    dir: Path = Path("defai-data")


class ExchangeSettings(Section):
    """A ccxt exchange for downloads and live trading; credentials only needed for trading."""

    name: str = "binance"
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    sandbox: bool = False


class AlloraSettings(Section):
    """The real Allora network's consumer API."""

    api_key: SecretStr | None = None
    base_url: str = "https://api.allora.network/v2"
    chain: Literal["mainnet", "testnet"] = "testnet"
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    max_age_s: float | None = Field(default=None, gt=0)


class NetworkSettings(Section):
    """Which inference network the agent queries: the embedded one (offline) or Allora's."""

    kind: Literal["local", "allora"] = "local"
    db: Path | None = None


class AgentSettings(Section):
    """How `defai run` behaves. `live_confirmed`: the standing consent to trade real funds that
    `defai run --live` otherwise asks for with --confirm-live."""

    state_dir: Path | None = None
    live_confirmed: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data: DataSettings = DataSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    allora: AlloraSettings = AlloraSettings()
    network: NetworkSettings = NetworkSettings()
    agent: AgentSettings = AgentSettings()
    risk: RiskLimits = RiskLimits()
    """The RiskGuard's limits ([risk] max_drawdown = 0.15, ...). Runs and backtests scale the
    per-order and per-day notional to their capital unless these set them."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file and environment are merged by load_settings, which can then say which of the
        # two an invalid key came from; pydantic-settings only validates the merged result.
        return (init_settings,)

    def redacted(self) -> dict[str, Any]:
        """A plain dict for display, with every secret replaced by asterisks (or None)."""
        redacted: dict[str, Any] = _redact(self.model_dump(mode="python"))
        return redacted


def _redact(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, frozenset | set):  # allow-lists: shown sorted, as written in TOML
        return sorted(value)
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None


def _environment_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested dict from DEFAI_SECTION__KEY variables, and the variable behind each dotted key."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_PATH:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if any(not part for part in path):
            raise ConfigError(
                f"environment variable {name}: expected DEFAI_<SECTION>__<KEY>, "
                "e.g. DEFAI_EXCHANGE__API_KEY"
            )
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name} conflicts with another DEFAI_ key")
            node = child
        node[path[-1]] = raw
        origin[".".join(path)] = name
    return tree, origin


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError, path: Path | None, env_origin: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in err["loc"])
        if key in env_origin:
            where = f"environment variable {env_origin[key]}"
        elif path is not None:
            where = str(path)
        else:
            where = "defaults"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def resolve_config_path(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: the argument, else $DEFAI_CONFIG, else ./defai.toml if present."""
    if path is not None:
        return Path(path)
    if environ.get(ENV_CONFIG_PATH):
        return Path(environ[ENV_CONFIG_PATH])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate settings; every problem is a ConfigError naming key and source."""
    environ = os.environ if environ is None else environ
    config_path = resolve_config_path(path, environ)
    if config_path is not None and not config_path.exists():
        raise ConfigError(f"{config_path}: config file not found")
    file_data = _read_toml(config_path) if config_path is not None else {}
    env_data, env_origin = _environment_overrides(environ)
    try:
        return Settings(**_merge(file_data, env_data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_path, env_origin)) from None
