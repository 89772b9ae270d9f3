"""The command line as users meet it: hints that work as written, --json anywhere
(errors included), --version, config show, warnings, tables, unreachable databases."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()
SERVICE = Path(__file__).resolve().parents[2] / "service"
HINT = re.compile(r"`(hwnas [^`]+)`")


def _hints() -> list[str]:
    """Every backticked ``hwnas ...`` command in the service's messages and docs,
    with f-string placeholders filled by a sample value."""
    found: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        for raw in HINT.findall(path.read_text()):
            found.add(re.sub(r"\{[^}]*\}", "x", raw).replace("...", "").strip())
    return sorted(found)


def test_there_are_hints_to_check() -> None:
    assert len(_hints()) >= 10


@pytest.mark.parametrize("hint", _hints())
def test_every_hint_names_a_command_that_parses(hint: str) -> None:
    args = shlex.split(hint)[1:]
    # With --help appended, click resolves the whole command path and rejects any
    # unknown option before the help is printed, without running anything.
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"`{hint}` does not parse: {result.output}"


def test_json_is_accepted_anywhere_and_errors_are_json(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    before = runner.invoke(app, [*home, "--json", "device", "list"])
    after = runner.invoke(app, [*home, "device", "list", "--json"])
    assert before.exit_code == after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout) == []
    missing = runner.invoke(app, [*home, "device", "show", "nope", "--json"])
    assert missing.exit_code == 1
    assert json.loads(missing.stdout) == {
        "error": {
            "type": "not_found",
            "message": "device 'nope' does not exist; `hwnas device list` shows the known ones",
        }
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["device", "show"], "Missing argument 'name'."),
        (["serach", "list"], "No such command 'serach'. Did you mean 'search'?"),
        (["device", "measure", "--threds", "2"], "No such option: --threds"),
        (
            ["search", "submit", "-s", "x", "-d", "y", "-b", "fast"],
            "Invalid value for '--budget-ms'",
        ),
    ],
)
def test_command_lines_that_do_not_parse_are_json_errors_under_json(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path), *argv, "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "usage" and error["message"].startswith(message)
    # without --json: click's usage message for people, nothing on stdout
    plain = runner.invoke(app, ["--home", str(tmp_path), *argv])
    assert plain.exit_code == 2 and plain.stdout == "" and "Usage:" in plain.stderr


def test_did_you_mean_for_a_near_miss(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, [*home, "device", "add", "pixel-phone"]).exit_code == 0
    result = runner.invoke(app, [*home, "device", "show", "pixel-phnoe"])
    assert result.exit_code == 1
    assert "did you mean 'pixel-phone'?" in result.stderr


def test_tables_for_people(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    runner.invoke(app, [*home, "device", "add", "phone", "-d", "my phone"])
    out = runner.invoke(app, [*home, "device", "list"]).stdout
    header = next(line for line in out.splitlines() if "device" in line and "kind" in line)
    assert "description" in header
    assert "phone" in out and "my phone" in out


def test_supernet_train_help_states_every_default_and_minimum() -> None:
    from supernets.schedules import DEFAULT_SCHEDULE, available_schedules, schedule_info

    result = runner.invoke(app, ["supernet", "train", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for name in available_schedules():
        info = schedule_info(name)
        assert f"{name}" in text
        assert f"at least {info.min_epochs} epochs, default {info.default_epochs} epochs" in text
    assert f"{DEFAULT_SCHEDULE} (the default:" in text
    assert f"[default: {DEFAULT_SCHEDULE}]" in text
    # Every option says its default, shown by typer or stated in its help.
    for option in ("--epochs", "--lr", "--max-steps-per-epoch", "--threads", "--amp", "--out"):
        line = next(ln for ln in result.stdout.splitlines() if f" {option} " in ln)
        start = result.stdout.index(line)
        block = result.stdout[start : start + 600]
        assert "default" in block, option


def test_version_and_completion() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("hwnas ")
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


def test_config_show_says_where_each_setting_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text("worker_lease_s = 90\n")
    monkeypatch.setenv("HWNAS_API_PORT", "9000")
    monkeypatch.delenv("HWNAS_PACKAGE_CACHE_DIR")  # the suite's shared cache
    result = runner.invoke(app, ["--home", str(tmp_path), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["home"]["source"] == "flag"
    assert shown["api_port"] == {"value": 9000, "source": "env HWNAS_API_PORT"}
    assert shown["worker_lease_s"] == {
        "value": 90.0,
        "source": f"file {tmp_path / 'config.toml'}",
    }
    assert shown["job_max_attempts"]["source"] == "default"
    assert shown["package_cache_dir"] == {
        "value": str(tmp_path / "artifacts" / "references"),
        "source": "default (<home>/artifacts/references)",
    }


def test_unknown_hwnas_variables_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWNAS_DATABSE_URL", "sqlite://")  # a typo
    monkeypatch.setenv("HWNAS_TEST_SOMETHING", "1")  # the test suite's own
    result = runner.invoke(app, ["--home", str(tmp_path), "device", "list"])
    assert result.exit_code == 0
    assert "HWNAS_DATABSE_URL is set but hwnas has no such setting" in result.stderr
    assert "HWNAS_TEST_SOMETHING" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    result = runner.invoke(app, ["--database-url", url, "device", "list"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the database")
    assert "secret" not in result.stderr
    assert "Traceback" not in result.output


def test_a_read_only_admin_token_sees_all_and_changes_nothing(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.runtime import Runtime
    from service.settings import load_settings

    home = ["--home", str(tmp_path)]
    made = runner.invoke(
        app, [*home, "--json", "token", "create", "audit", "--read-only", "--admin"]
    )
    token = json.loads(made.stdout)
    assert token["scopes"] == ["read", "admin"]
    assert runner.invoke(app, [*home, "device", "add", "phone"]).exit_code == 0  # owner: local
    settings = load_settings(home=tmp_path, require_auth=True)
    with Runtime.open(settings) as rt, TestClient(create_app(rt)) as client:
        auth = {"Authorization": f"Bearer {token['token']}"}
        assert client.get("/v1/devices/phone", headers=auth).status_code == 200
        refused = client.post("/v1/devices", json={"name": "other"}, headers=auth)
        assert refused.status_code == 403


def _backticked(message: str) -> list[list[str]]:
    return [shlex.split(hint)[1:] for hint in HINT.findall(message)]


def test_the_no_latency_model_hint_runs_as_written_for_a_tabular_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote device searched in nb201 (no network builder, so no ONNX and no
    local measurement): the hint's commands, run as printed, register it."""
    monkeypatch.chdir(tmp_path)
    home = ["--home", str(tmp_path / "home")]
    assert runner.invoke(app, [*home, "device", "add", "phone"]).exit_code == 0
    assert runner.invoke(app, [*home, "supernet", "register-benchmark", "nb201"]).exit_code == 0
    search = [*home, "search", "submit", "-s", "nb201", "-d", "phone", "-b", "30"]
    refused = runner.invoke(app, search)
    assert refused.exit_code == 1
    references, submit = _backticked(refused.stderr)
    assert references[:2] == ["device", "references"] and "measure" not in refused.stderr
    made = runner.invoke(app, [*home, *references])
    assert made.exit_code == 0, made.output
    manifest = json.loads((tmp_path / "refs" / "manifest.json").read_text())
    assert len(manifest["references"]) == 10 and not list((tmp_path / "refs").glob("*.onnx"))
    # "on the device": one latency per reference architecture, in order
    latencies = [5.0 + i for i, _ in enumerate(manifest["references"])]
    Path("latencies.json").write_text(json.dumps({"reference_ms": latencies}))
    stored = runner.invoke(app, [*home, *submit])
    assert stored.exit_code == 0, stored.output
    assert runner.invoke(app, search).exit_code == 0


def test_measuring_under_a_remote_device_name_says_what_to_do(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, [*home, "device", "add", "phone"]).exit_code == 0
    result = runner.invoke(app, [*home, "device", "measure", "--name", "phone"])
    assert result.exit_code == 1
    assert "is a remote device" in result.stderr and "None" not in result.stderr
    assert "give it another name (--name)" in result.stderr
