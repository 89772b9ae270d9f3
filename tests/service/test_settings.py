"""Settings precedence: flags > environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import SettingsError, load_settings


def test_defaults_put_sqlite_under_home(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == tmp_path / "home"  # from the autouse fixture's HWNAS_HOME
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}"
    assert settings.is_embedded


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'database_url = "sqlite:///from-file.db"\napi_port = 9001\nworker_lease_s = 5\n'
    )
    monkeypatch.setenv("HWNAS_CONFIG", str(config))
    s = load_settings()
    assert (s.database_url, s.api_port, s.worker_lease_s) == ("sqlite:///from-file.db", 9001, 5.0)
    monkeypatch.setenv("HWNAS_API_PORT", "9002")
    monkeypatch.setenv("HWNAS_DATABASE_URL", "sqlite:///from-env.db")
    s = load_settings()
    assert (s.database_url, s.api_port, s.worker_lease_s) == ("sqlite:///from-env.db", 9002, 5.0)
    s = load_settings(database_url="sqlite:///from-flag.db", api_port=None)
    assert (s.database_url, s.api_port) == ("sqlite:///from-flag.db", 9002)


def test_config_file_found_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "other"
    home.mkdir()
    (home / "config.toml").write_text("api_port = 8123\n")
    assert load_settings(home=home).api_port == 8123
    monkeypatch.setenv("HWNAS_HOME", str(home))
    assert load_settings().api_port == 8123


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("api_port = [", "not valid TOML"),
        ("databse_url = 'x'", "unknown key"),
        ("api_port = 0", "api_port"),
    ],
)
def test_bad_config_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(config)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_WORKER_LEASE_S", "-1")
    with pytest.raises(SettingsError, match="worker_lease_s"):
        load_settings()
