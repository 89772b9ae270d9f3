"""SQLite locking under the API: a request authenticated by a bearer token must
not hold the database's write lock while its handler opens its own session,
and reads never take the write lock at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.db import ApiToken, utcnow
from service.domain import devices, tokens
from service.runtime import Runtime
from service.settings import load_settings


@pytest.fixture(params=[True, False], ids=["auth-on", "auth-off"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'hwnas.db'}",
        require_auth=request.param,
        sqlite_busy_timeout_s=1.0,
    )
    with Runtime.open(settings) as handle:
        yield handle


def _token(rt: Runtime) -> dict[str, str]:
    with rt.session() as s:
        _, secret = tokens.create_token(s, "alice")
        devices.create_device(s, "phone", kind="remote", owner="alice")
    return {"Authorization": f"Bearer {secret}"}


def test_a_handler_opening_its_own_session_is_not_locked_out(rt: Runtime) -> None:
    """Before the fix: 500 "database is locked" after the busy timeout, because
    the auth dependency's session held BEGIN IMMEDIATE while the handler waited."""
    headers = _token(rt)
    client = TestClient(create_app(rt), raise_server_exceptions=False)
    # Ten reference latencies for ofa-mbv3-tiny: the handler adapts and stores
    # the device model in a session of its own.
    response = client.post(
        "/v1/devices/phone/latencies",
        json={"space": "ofa-mbv3-tiny", "reference_ms": [1.0 + i / 10 for i in range(10)]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["device"] == "phone"


def test_reads_do_not_take_the_write_lock(rt: Runtime, tmp_path: Path) -> None:
    headers = _token(rt)
    client = TestClient(create_app(rt), raise_server_exceptions=False)
    assert client.get("/v1/devices", headers=headers).status_code == 200  # records last use
    writer = sqlite3.connect(tmp_path / "hwnas.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process is writing
        for path in ("/v1/devices", "/v1/devices/phone", "/v1/searches", "/v1/supernets"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_last_use_is_recorded_at_most_once_a_minute(rt: Runtime) -> None:
    if not rt.settings.require_auth:
        pytest.skip("with auth off, tokens are not consulted")
    headers = _token(rt)
    client = TestClient(create_app(rt))

    def last_used() -> datetime | None:
        with rt.read_session() as s:
            row = s.query(ApiToken).filter(ApiToken.name == "alice").one()
            return row.last_used_at

    assert client.get("/v1/devices", headers=headers).status_code == 200
    first = last_used()
    assert first is not None
    assert client.get("/v1/devices", headers=headers).status_code == 200
    assert last_used() == first  # within the minute: no write
    with rt.session() as s:
        row = s.query(ApiToken).filter(ApiToken.name == "alice").one()
        row.last_used_at = utcnow() - timedelta(minutes=2)
    assert client.get("/v1/devices", headers=headers).status_code == 200
    later = last_used()
    assert later is not None and later > utcnow() - timedelta(seconds=30)
