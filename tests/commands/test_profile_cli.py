"""``mqc profile`` and the precedence order seen through the CLI."""

from __future__ import annotations

import json
import os
import tomllib

from typer.testing import CliRunner

from mqc.cli import app
from mqc.core import paths

runner = CliRunner()


def _show(*args: str, env: dict[str, str] | None = None) -> dict:
    result = runner.invoke(app, [*args, "profile", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["tables"]


def test_init_documents_every_key_without_pinning_defaults():
    result = runner.invoke(app, ["profile", "init", "research"])
    assert result.exit_code == 0, result.output
    path = paths.profiles_dir() / "research.toml"
    text = path.read_text()
    assert "# equity_fee_bps = 1.0" in text and "[market]" in text
    assert tomllib.loads(text)["market"] == {}  # everything commented out
    tables = _show("--profile", "research")
    assert tables["market"]["equity_fee_bps"] == {"value": 1.0, "source": "default"}


def test_set_then_show_reports_the_layer_each_value_came_from():
    assert runner.invoke(app, ["profile", "init", "p"]).exit_code == 0
    assert runner.invoke(app, ["profile", "set", "market.equity_fee_bps", "5", "-n", "p"]).exit_code == 0
    assert runner.invoke(app, ["profile", "set", "data.symbols", "spy,QQQ", "-n", "p"]).exit_code == 0
    doc = tomllib.loads((paths.profiles_dir() / "p.toml").read_text())
    assert doc["market"] == {"equity_fee_bps": 5.0}
    assert doc["data"] == {"symbols": ["spy", "QQQ"]}
    env = {**os.environ, "MQC_MARKET_SLIPPAGE_BPS": "7", "MQC_MARKET_EQUITY_FEE_BPS": "6"}
    tables = _show("--profile", "p", env=env)
    assert tables["market"]["equity_fee_bps"] == {"value": 6.0, "source": "env:MQC_MARKET_EQUITY_FEE_BPS"}
    assert tables["market"]["slippage_bps"] == {"value": 7.0, "source": "env:MQC_MARKET_SLIPPAGE_BPS"}
    assert tables["data"]["symbols"] == {"value": ["spy", "QQQ"], "source": "profile:p"}
    assert tables["market"]["crypto_fee_bps"]["source"] == "default"


def test_bad_key_and_bad_value_are_one_line_errors():
    assert runner.invoke(app, ["profile", "init", "p"]).exit_code == 0
    before = (paths.profiles_dir() / "p.toml").read_bytes()
    bad_key = runner.invoke(app, ["profile", "set", "market.equity_fee_bz", "5", "-n", "p"])
    assert bad_key.exit_code == 1
    assert "did you mean 'equity_fee_bps'" in " ".join(bad_key.output.split())
    bad_value = runner.invoke(app, ["profile", "set", "market.allow_short", "maybe", "-n", "p"])
    assert bad_value.exit_code == 1
    assert "expected true/false" in bad_value.output
    assert (paths.profiles_dir() / "p.toml").read_bytes() == before


def test_unknown_table_in_a_hand_edited_profile_names_it():
    d = paths.profiles_dir()
    d.mkdir(parents=True)
    (d / "h.toml").write_text("[markt]\nequity_fee_bps = 3\n")
    result = runner.invoke(app, ["--profile", "h", "profile", "show"])
    assert result.exit_code == 1
    assert "unknown table [markt]" in result.output and "did you mean 'market'" in " ".join(result.output.split())


def test_missing_profile_points_at_init():
    result = runner.invoke(app, ["--profile", "nope", "profile", "show"])
    assert result.exit_code == 1
    assert "mqc profile init nope" in result.output
