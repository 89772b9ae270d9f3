"""The `hwnas` command line: groups, help, database commands, errors."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from service.cli import app
from service.db import VERSION_TABLE, head_revision, make_engine

runner = CliRunner()

GROUPS = ["db", "supernet", "device", "search", "query", "export", "serve", "worker"]


def test_help_lists_every_group_with_help_text() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in GROUPS:
        lines = [line for line in result.output.splitlines() if f" {group} " in line]
        assert lines, f"group {group} missing from --help"
        sub = runner.invoke(app, [group, "--help"])
        assert sub.exit_code == 0, sub.output
        assert "Commands" in sub.output or "Usage" in sub.output


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = runner.invoke(app, ["--json", "--database-url", url, "db", "current"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "fresh"
    result = runner.invoke(app, ["--database-url", url, "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"-> {head_revision()}" in result.output
    result = runner.invoke(app, ["--json", "--database-url", url, "db", "current"])
    assert json.loads(result.output)["state"] == "current"
    result = runner.invoke(app, ["--database-url", url, "db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["--json", "--database-url", url, "db", "current"])
    assert json.loads(result.output)["state"] == "fresh"


def test_database_ahead_gives_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert runner.invoke(app, ["--database-url", url, "db", "upgrade"]).exit_code == 0
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'abcdef12'"))
    engine.dispose()
    result = runner.invoke(app, ["--database-url", url, "token", "list"])
    assert result.exit_code == 1
    assert "abcdef12" in result.output and "upgrade hwnas" in result.output


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    result = runner.invoke(app, ["--config", str(bad), "db", "current"])
    assert result.exit_code == 2
    assert "unknown key" in result.output


def test_tokens_round_trip() -> None:
    result = runner.invoke(app, ["--json", "token", "create", "ci-bot"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["token"].startswith("hwnas_")
    dup = runner.invoke(app, ["token", "create", "ci-bot"])
    assert dup.exit_code == 1 and "already exists" in dup.output
    assert runner.invoke(app, ["token", "revoke", "ci-bot"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["--json", "token", "list"]).output)
    assert listed[0]["revoked"] is True
    bad = runner.invoke(app, ["token", "create", "no spaces allowed"])
    assert bad.exit_code == 1 and "invalid" in bad.output
