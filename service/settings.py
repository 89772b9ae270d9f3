"""Settings: command-line flags override environment variables, which override
an optional TOML file, which overrides the defaults.

Environment variables are ``HWNAS_<FIELD>`` (``HWNAS_DATABASE_URL``,
``HWNAS_HOME``, ...). The TOML file is ``$HWNAS_CONFIG`` if set, else
``<home>/config.toml`` if it exists; its keys are the field names
(``database_url = "postgresql+psycopg://..."``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "SettingSource",
    "Settings",
    "SettingsError",
    "describe_settings",
    "load_settings",
    "unknown_environment",
]


class SettingsError(ValueError):
    """Configuration that cannot be used (bad file, bad value)."""


class Settings(BaseSettings):
    """Everything configurable about an hwnas installation."""

    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="forbid", frozen=True)

    home: Path = Field(
        default=Path("~/.hwnas"),
        description="Directory for the embedded database, checkpoints, exports and artefacts.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file <home>/hwnas.db.",
    )
    sqlite_busy_timeout_s: float = Field(
        default=30.0, gt=0, description="How long SQLite waits on a locked database before failing."
    )
    db_pool_size: int = Field(
        default=5, ge=1, description="Connections per process (server databases)."
    )
    api_host: str = Field(default="127.0.0.1", description="Address `hwnas serve` binds to.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port `hwnas serve` binds to.")
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest HTTP request body accepted (413 beyond).",
    )
    require_auth: bool = Field(
        default=False,
        description="Require an API token (Authorization: Bearer) for every HTTP request.",
    )
    worker_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A job whose worker misses heartbeats this long is re-queued.",
    )
    worker_heartbeat_s: float = Field(default=10.0, gt=0, description="Worker heartbeat interval.")
    worker_poll_s: float = Field(default=2.0, gt=0, description="Idle worker polling interval.")
    job_max_attempts: int = Field(
        default=3, ge=1, description="Times a job is tried before it fails."
    )
    torch_threads: int | None = Field(default=None, ge=1, description="torch intra-op threads.")
    package_cache_dir: Path | None = Field(
        default=None,
        description=(
            "Where built reference and active-round packages (ONNX files, named by their "
            "content: architectures, batch, exporter, torch) are kept; homes on one machine "
            "may share one. Default: <home>/artifacts/references."
        ),
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("package_cache_dir", mode="after")
    @classmethod
    def _expand_cache(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hwnas.db'}"

    @property
    def is_embedded(self) -> bool:
        """True for the embedded (SQLite) database."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def packages_dir(self) -> Path:
        """Built reference and round packages (see ``package_cache_dir``)."""
        return self.package_cache_dir or self.artifacts_dir / "references"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file is merged in load_settings() beneath the env, because
        # its location itself depends on the env (HWNAS_CONFIG / HWNAS_HOME).
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        known = ", ".join(sorted(Settings.model_fields))
        raise SettingsError(f"config file {path} has unknown key(s) {unknown}; known keys: {known}")
    return data


#: Variables read by hwnas besides ``HWNAS_<FIELD>``; ``HWNAS_TEST_*`` belong to
#: the test suite and are never reported as unknown.
_OTHER_VARIABLES = frozenset({"HWNAS_CONFIG"})


def unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """``HWNAS_*`` variables that no setting reads (a typo is otherwise silent)."""
    environ = os.environ if environ is None else environ
    known = {f"HWNAS_{name.upper()}" for name in Settings.model_fields} | _OTHER_VARIABLES
    return sorted(
        key
        for key in environ
        if key.startswith("HWNAS_") and key not in known and not key.startswith("HWNAS_TEST_")
    )


def _config_path(config_file: Path | str | None, flags: Mapping[str, Any]) -> Path:
    explicit = config_file or os.environ.get("HWNAS_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist")
        return path
    home = Path(flags.get("home") or os.environ.get("HWNAS_HOME") or "~/.hwnas").expanduser()
    return home / "config.toml"


@dataclass(frozen=True)
class SettingSource:
    """One effective setting and where its value came from."""

    name: str
    value: Any
    #: "flag", "env HWNAS_<NAME>", "file <path>" or "default".
    source: str
    description: str


def describe_settings(
    config_file: Path | str | None = None, **overrides: Any
) -> list[SettingSource]:
    """Every setting's effective value and its origin (what ``hwnas config show`` prints)."""
    settings = load_settings(config_file, **overrides)
    flags = {k for k, v in overrides.items() if v is not None}
    path = _config_path(config_file, {k: v for k, v in overrides.items() if v is not None})
    in_file = set(_read_toml(path)) if path.is_file() else set()
    out = []
    for name, field in Settings.model_fields.items():
        env = f"HWNAS_{name.upper()}"
        if name in flags:
            source = "flag"
        elif env in os.environ:
            source = f"env {env}"
        elif name in in_file:
            source = f"file {path}"
        else:
            source = "default"
        value: Any = getattr(settings, name)
        if name == "database_url" and value is None:
            value, source = settings.resolved_database_url, f"{source} (<home>/hwnas.db)"
        if name == "package_cache_dir" and value is None:
            value, source = settings.packages_dir, f"{source} (<home>/artifacts/references)"
        out.append(SettingSource(name, value, source, field.description or ""))
    return out


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings: ``overrides`` (flags) > environment > TOML file > defaults.

    ``None`` values in ``overrides`` mean "flag not given" and are dropped.
    """
    flags = {k: v for k, v in overrides.items() if v is not None}
    path = _config_path(config_file, flags)
    file_values = _read_toml(path) if path.is_file() else {}
    try:
        env_and_flags = Settings(**flags)
        # Keep only what env or flags really set, then lay it over the file.
        given = env_and_flags.model_dump(exclude_unset=True)
        return Settings(**{**file_values, **given})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
