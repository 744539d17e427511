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


def test_missing_selected_profile_is_an_error_with_did_you_mean():
    assert runner.invoke(app, ["profile", "init", "research"]).exit_code == 0
    r = runner.invoke(app, ["--profile", "reserch", "data", "list"])
    assert r.exit_code == 1
    assert "profile 'reserch' not found" in r.stderr and "did you mean 'research'?" in r.stderr
    assert runner.invoke(app, ["data", "list"], env={"MQC_PROFILE": "nope"}).exit_code == 1
    # The profile group itself may name a missing profile: path/list/init work, init creates it.
    assert runner.invoke(app, ["--profile", "reserch", "profile", "list"]).exit_code == 0
    assert runner.invoke(app, ["--profile", "reserch", "profile", "path", "reserch"]).exit_code == 0
    assert runner.invoke(app, ["--profile", "research", "data", "list"]).exit_code == 0


def test_set_on_a_new_profile_says_it_created_it_and_json_works():
    r = runner.invoke(app, ["--json", "profile", "set", "train.steps", "10", "-n", "nope"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"profile": "nope", "key": "train.steps", "value": 10, "created": True}
    assert "created profile nope" in r.stderr
    r = runner.invoke(app, ["profile", "set", "train.steps", "11", "-n", "nope"])
    assert r.exit_code == 0 and "created" not in r.stderr


def test_path_json():
    r = runner.invoke(app, ["--json", "profile", "path", "abc"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["path"] == str(paths.profiles_dir() / "abc.toml") and data["exists"] is False


def test_set_rejects_a_bad_date_and_writes_nothing():
    r = runner.invoke(app, ["profile", "set", "data.start", "notadate", "-n", "p"])
    assert r.exit_code == 1 and "data.start: invalid date/time 'notadate'" in r.stderr
    assert not (paths.profiles_dir() / "p.toml").exists()
    assert runner.invoke(app, ["profile", "set", "data.end", "2010-01-01", "-n", "p"]).exit_code == 0
    r = runner.invoke(app, ["profile", "set", "data.start", "2011-01-01", "-n", "p"])
    assert r.exit_code == 1 and "after end" in r.stderr
    assert "start" not in tomllib.loads((paths.profiles_dir() / "p.toml").read_text())["data"]


def test_verbose_shows_what_a_domain_error_was_caused_by():
    d = paths.profiles_dir()
    d.mkdir(parents=True)
    (d / "broken.toml").write_text("[market\n")
    quiet = runner.invoke(app, ["--profile", "broken", "profile", "show"])
    loud = runner.invoke(app, ["--verbose", "--profile", "broken", "profile", "show"])
    assert quiet.exit_code == loud.exit_code == 1
    assert "caused by TOMLDecodeError" not in quiet.output
    assert "caused by TOMLDecodeError" in loud.output
