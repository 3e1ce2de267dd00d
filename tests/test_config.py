"""Settings: file + environment, precise errors, secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from defai.config import load_settings
from defai.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "defai.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.network.kind == "local"
    assert settings.exchange.api_key is None


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[exchange]\nname = "kraken"\nsandbox = false\n')
    settings = load_settings(
        path, {"DEFAI_EXCHANGE__SANDBOX": "true", "DEFAI_ALLORA__CHAIN": "mainnet"}
    )
    assert settings.exchange.name == "kraken"
    assert settings.exchange.sandbox is True
    assert settings.allora.chain == "mainnet"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[network]\nkind = 'allora'\n")
    assert load_settings(environ={"DEFAI_CONFIG": str(path)}).network.kind == "allora"


def test_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    path = write(tmp_path, '[allora]\napi_key = "UP-abc123"\n')
    settings = load_settings(path, {"DEFAI_EXCHANGE__SECRET": "s3cr3t"})
    assert settings.allora.api_key is not None
    assert settings.allora.api_key.get_secret_value() == "UP-abc123"
    for text in (
        repr(settings),
        str(settings),
        str(settings.redacted()),
        settings.model_dump_json(),
    ):
        assert "UP-abc123" not in text and "s3cr3t" not in text


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[exchange]\nnmae = 'x'\n", {}, r"defai.toml: exchange.nmae: unknown key"),
        ("[exchnage]\nname = 'x'\n", {}, r"defai.toml: exchnage: unknown key"),
        (
            "[allora]\ntimeout_s = -1\n",
            {},
            r"defai.toml: allora.timeout_s: Input should be greater than 0",
        ),
        (
            "",
            {"DEFAI_NETWORK__KIND": "remote"},
            r"environment variable DEFAI_NETWORK__KIND: network.kind",
        ),
        (
            "",
            {"DEFAI_EXCHANGE__APIKEY": "x"},
            r"environment variable DEFAI_EXCHANGE__APIKEY: exchange.apikey: unknown key",
        ),
        ("", {"DEFAI___X": "x"}, r"expected DEFAI_<SECTION>__<KEY>"),
        ("[exchange\n", {}, r"defai.toml: not valid TOML"),
    ],
)
def test_bad_config_names_key_and_source(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), env)


def test_bad_value_error_does_not_echo_the_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[exchange]\napi_key = "topsecret"\nsandbox = "perhaps"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert "exchange.sandbox" in str(info.value)
    assert "topsecret" not in str(info.value) and "perhaps" not in str(info.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", {})


def test_risk_limits_from_the_file_win_over_the_capital_scaling(tmp_path: Path) -> None:
    from defai.agent.paper import capital_limits

    path = write(tmp_path, '[risk]\nmax_drawdown = 0.1\nallowed_symbols = ["ETH/USDT"]\n')
    settings = load_settings(path, environ={"DEFAI_RISK__MAX_NOTIONAL_PER_DAY": "1234"})
    limits = capital_limits(500.0, settings.risk)
    assert limits.max_drawdown == 0.1 and limits.allowed_symbols == frozenset({"ETH/USDT"})
    assert limits.max_notional_per_day == 1234.0  # set: wins over 5 x capital
    assert limits.max_notional_per_order == 500.0  # unset: scaled to the capital
    assert limits.min_health_factor == 1.5  # unset: the guard's default
    assert settings.redacted()["risk"]["allowed_symbols"] == ["ETH/USDT"]


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[risk]\nmax_drawdwn = 0.5\n", {}, "risk.max_drawdwn: unknown key"),
        ("", {"DEFAI_RISK__MAX_DRAWDOWN": "2"}, "DEFAI_RISK__MAX_DRAWDOWN: risk.max_drawdown"),
        ("[risk]\nmax_slippage = -1\n", {}, "risk.max_slippage"),
    ],
)
def test_a_bad_risk_limit_is_named_with_its_source(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), environ=environ)
