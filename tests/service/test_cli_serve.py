"""`hwnas serve` refuses a non-loopback address without auth unless --insecure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.cli.serve import is_loopback


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert not is_loopback("myhost.example")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records what uvicorn would have been asked to serve (no socket is bound)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: calls.append(kw))
    return calls


def test_refuses_public_bind_without_auth(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "h")]
    refused = runner.invoke(app, [*home, "serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--insecure" in refused.output and served == []

    warned = runner.invoke(app, [*home, "serve", "--host", "0.0.0.0", "--insecure"])
    assert warned.exit_code == 0 and "WITHOUT auth" in warned.output
    assert served[-1]["host"] == "0.0.0.0"

    local = runner.invoke(app, [*home, "serve"])
    assert local.exit_code == 0 and "WITHOUT" not in local.output
    assert served[-1]["host"] == "127.0.0.1"


def test_public_bind_with_auth(
    tmp_path: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWNAS_REQUIRE_AUTH", "true")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "WITHOUT" not in result.output
    assert served[-1]["host"] == "0.0.0.0"
