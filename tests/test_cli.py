"""The `defai` command as a user runs it: exit codes, redaction, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from defai import __version__
from defai.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"defai {__version__}"


def test_config_show_redacts_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "defai.toml"
    config.write_text('[exchange]\nname = "kraken"\napi_key = "key-from-file"\n')
    monkeypatch.setenv("DEFAI_EXCHANGE__SECRET", "secret-from-env")
    result = runner.invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert '"name": "kraken"' in result.output
    assert result.output.count("**********") == 2
    assert "key-from-file" not in result.output and "secret-from-env" not in result.output


def test_config_typo_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "defai.toml"
    config.write_text('[exchange]\nnmae = "kraken"\n')
    result = runner.invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}: exchange.nmae: unknown key" in result.output
    assert "Traceback" not in result.output


def test_data_show_csv_reports_gaps(eth_1h_csv: Path) -> None:
    result = runner.invoke(app, ["data", "show", "--csv", str(eth_1h_csv)], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "ETH/USDT" in result.output
    assert "33,413" in result.output
    assert "8 (16)" in result.output


def test_data_show_synthetic_daily() -> None:
    result = runner.invoke(app, ["data", "show", "--days", "30", "--timeframe", "1d"])
    assert result.exit_code == 0, result.output
    assert "ETH/USDT" in result.output and "BTC/USDT" in result.output
    assert "│ rows" in result.output and "30 │" in result.output


def test_data_show_bad_csv_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x_ETHUSDT_1h.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n0,1,1,1,1,1\n0,1,1,1,1,1\n")
    result = runner.invoke(app, ["data", "show", "--csv", str(bad)])
    assert result.exit_code == 2
    assert "line 3: duplicate timestamp" in result.output


def test_data_download_then_show_from_cache(tmp_path, binance, make_binance, monkeypatch) -> None:
    state, url = binance
    now = 1_704_067_200_000 + 200 * 3_600_000
    for module in ("defai.cli.common", "defai.cli.data"):
        monkeypatch.setattr(f"{module}.make_exchange", lambda name: make_binance(url, now))
    monkeypatch.setenv("DEFAI_DATA__DIR", str(tmp_path))
    args = ["--exchange", "binance", "--symbol", "ETH/USDT", "--since", "2024-01-01"]
    result = runner.invoke(app, ["data", "download", *args, "--timeframe", "1h"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "binance" / "ETH_USDT-1h.csv").exists()
    requests = len(state.kline_requests)
    result = runner.invoke(app, ["data", "show", *args])
    assert result.exit_code == 0, result.output
    assert "200" in result.output
    assert len(state.kline_requests) == requests  # served from the cache


def test_demo_backtests_the_builtin_strategies_offline(tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["demo", "--days", "30", "--report", str(report)], terminal_width=160
    )
    assert result.exit_code == 0, result.output
    for name in ("directional", "lp_rebalance", "leverage_loop", "Sharpe", "Trade hash"):
        assert name in result.output
    assert (report / "index.html").exists()


def test_backtest_prints_metrics_and_checks_look_ahead(tmp_path: Path) -> None:
    args = ["backtest", "--strategy", "directional", "--days", "25", "--check-lookahead"]
    result = runner.invoke(app, [*args, "--checkpoints", "2"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert (
        "Max drawdown" in result.output and "look-ahead check directional: clean" in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--network", "allora"], "--network must be local or none"),
        (["--strategy", "nope"], "no defai.strategies plugin named 'nope'"),
        (["--start", "2031-01-01"], "nothing to run"),
        (["--capital", "-5"], "capital must be a positive number"),
        (["--check-lookahead", "--checkpoints", "0"], "at least one checkpoint"),
        (["--sweep", "nope=1,2"], "has no parameter(s) ['nope']"),
    ],
)
def test_backtest_refuses_bad_options_clearly(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["backtest", "--days", "20", *args], terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_stopped_paper_run_resumes_and_another_strategy_is_refused(tmp_path: Path) -> None:
    args = ["run", "--days", "20", "--max-ticks", "2", "--state-dir", str(tmp_path)]
    first = runner.invoke(app, args, terminal_width=200)
    again = runner.invoke(app, args, terminal_width=200)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "12:00 ->" in first.output and "14:00 ->" in again.output  # after the last tick
    other = runner.invoke(app, [*args, "--strategy", "lp_rebalance"], terminal_width=200)
    assert other.exit_code == 2
    assert "use another --state-dir" in " ".join(other.output.split())


def test_network_run_then_show_continues_from_the_saved_state(tmp_path: Path) -> None:
    db = tmp_path / "net.sqlite"
    first = runner.invoke(
        app, ["network", "run", "--days", "20", "--until", "2024-01-16", "--db", str(db)]
    )
    assert first.exit_code == 0, first.output
    assert "ETH/USDT log_return 1h at 2024-01-16 00:00 UTC" in first.output
    second = runner.invoke(app, ["network", "run", "--days", "20", "--db", str(db)])
    assert "ETH/USDT volatility 24h at 2024-01-21 00:00 UTC" in second.output
    shown = runner.invoke(app, ["network", "show", "ETH/USDT log_return 1h", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "kalman-trend" in shown.output and "reputer-4" in shown.output


def test_network_show_without_state_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["network", "show", "ETH/USDT log_return 1h", "--db", str(tmp_path / "none.sqlite")]
    )
    assert result.exit_code == 2
    assert "no network state; run `defai network run` first" in result.output


def test_tools_list_shows_builtins_and_a_plugin_folder() -> None:
    result = runner.invoke(app, ["tools", "list", "--tools-dir", "examples"], terminal_width=150)
    assert result.exit_code == 0, result.output
    for name in (
        "price_forecast",
        "volatility_forecast",
        "lp_range",
        "liquidation_risk",
        "mev_check",
        "leverage_advisor",
    ):
        assert name in result.output
    assert "realized_volatility" in result.output or "realised" in result.output


def test_tools_call_answers_offline_as_json() -> None:
    args = '{"symbol": "ETH/USDT", "horizon": "24h"}'
    result = runner.invoke(
        app, ["tools", "call", "volatility_forecast", "--args", args, "--days", "20"]
    )
    assert result.exit_code == 0, result.output
    assert '"topic": "ETH/USDT volatility 24h"' in result.output
    assert '"stale": false' in result.output


def test_tools_call_with_bad_arguments_is_a_tool_error() -> None:
    args = '{"symbol": "ETH/USDT", "horizon": "soon"}'
    result = runner.invoke(app, ["tools", "call", "price_forecast", "--args", args, "--days", "20"])
    assert result.exit_code == 1
    assert "invalid arguments: horizon" in result.output
    bad_json = runner.invoke(app, ["tools", "call", "price_forecast", "--args", "{symbol"])
    assert bad_json.exit_code == 2 and "--args is not valid JSON" in bad_json.output


def test_backtest_sweeps_a_grid_and_walks_forward() -> None:
    base = ["backtest", "--days", "30", "--sweep", "kelly_fraction=0.25,0.5"]
    swept = runner.invoke(app, base, terminal_width=200)
    assert swept.exit_code == 0, swept.output
    assert "2 parameter sets" in swept.output and "0.25" in swept.output
    walked = runner.invoke(app, [*base, "--walk-forward", "5d:5d"], terminal_width=200)
    assert walked.exit_code == 0, walked.output
    assert "out-of-sample" in walked.output
    bad = runner.invoke(app, ["backtest", "--days", "20", "--sweep", "kelly_fraction"])
    assert bad.exit_code == 2 and "name=value1,value2" in bad.output
