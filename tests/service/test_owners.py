"""Owner isolation through the API: a token sees and changes only its own jobs,
devices and supernets (others' are 404), an admin token sees all, bundled
devices and spaces are read-only, and with auth off everything is `local`'s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.domain import tokens
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.worker import Worker
from service.runtime import Runtime
from service.settings import load_settings

SPEC = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 15, "n_evaluations": 5}


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    from service.db import upgrade

    with Runtime.open(
        load_settings(database_url=db_url, require_auth=True), check_schema=False
    ) as h:
        upgrade(h.engine)
        with h.session() as s:
            register_benchmark(s)
        yield h


def _client(rt: Runtime, name: str, scopes: tuple[str, ...]) -> TestClient:
    with rt.session() as s:
        _, secret = tokens.create_token(s, name, scopes)
    client = TestClient(create_app(rt))
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def test_tokens_see_and_change_only_their_own(rt: Runtime) -> None:
    alice = _client(rt, "alice", ("read", "write"))
    bob = _client(rt, "bob", ("read", "write"))
    root = _client(rt, "root", ("read", "write", "admin"))

    assert alice.post("/v1/devices", json={"name": "alice-phone"}).json()["owner"] == "alice"
    job = alice.post("/v1/searches", json=SPEC).json()
    assert job["owner"] == "alice"

    # Bob: alice's rows do not exist for him.
    assert bob.get("/v1/devices/alice-phone").status_code == 404
    assert bob.delete("/v1/devices/alice-phone").status_code == 404
    assert bob.get("/v1/devices/alice-phone/measurements").status_code == 404
    assert "alice-phone" not in {d["name"] for d in bob.get("/v1/devices").json()}
    assert bob.get(f"/v1/searches/{job['id']}").status_code == 404
    assert bob.get(f"/v1/searches/{job['id']}/trials").status_code == 404
    assert bob.post(f"/v1/searches/{job['id']}/cancel").status_code == 404
    assert bob.get("/v1/searches").json() == []
    refused = bob.post("/v1/searches", json={**SPEC, "device": "alice-phone"})
    assert refused.status_code == 404 and "alice-phone" in refused.json()["error"]["message"]

    # Bundled rows: everyone sees them, no one changes them.
    names = {d["name"] for d in bob.get("/v1/devices").json()}
    assert "nb201-pixel3" in names
    assert bob.get("/v1/supernets/nb201").json()["bundled"] is True
    for client in (bob, root):
        gone = client.delete("/v1/devices/nb201-pixel3")
        assert gone.status_code == 403 and "read-only" in gone.json()["error"]["message"]
        assert client.delete("/v1/supernets/nb201").status_code == 403
    assert bob.post("/v1/devices", json={"name": "fake", "kind": "table"}).status_code == 403

    # Admin: sees and changes everyone's.
    assert {d["name"] for d in root.get("/v1/devices").json()} >= {"alice-phone", "nb201-pixel3"}
    assert [j["id"] for j in root.get("/v1/searches").json()] == [job["id"]]
    assert root.post(f"/v1/searches/{job['id']}/cancel").json()["state"] == "cancelled"
    assert root.delete("/v1/devices/alice-phone").status_code == 204
    assert alice.get("/v1/devices/alice-phone").status_code == 404


def test_query_answers_from_the_callers_trials_only(rt: Runtime) -> None:
    alice = _client(rt, "alice", ("read", "write"))
    bob = _client(rt, "bob", ("read", "write"))
    alice.post("/v1/searches", json=SPEC)
    Worker(rt).run(exit_when_idle=True)
    params: dict[str, str | int] = {"supernet": "nb201", "device": "nb201-pixel3", "budget_ms": 15}
    assert alice.get("/v1/query/best", params=params).json()["best"] is not None
    theirs = bob.get("/v1/query/best", params=params).json()
    assert theirs["best"] is None and theirs["closest"] == []
    assert bob.get("/v1/query/pareto", params=params).json()["front"] == []


def test_readers_see_a_short_error_and_admins_the_traceback(rt: Runtime) -> None:
    from service.db import SearchJob

    alice = _client(rt, "alice", ("read", "write"))
    root = _client(rt, "root", ("read", "write", "admin"))
    job = alice.post("/v1/searches", json=SPEC).json()
    with rt.session() as s:
        row = s.get(SearchJob, job["id"])
        assert row is not None
        row.state = "failed"
        row.error = 'RuntimeError: boom\nTraceback (most recent call last):\n  File "/srv/x.py"'
    assert alice.get(f"/v1/searches/{job['id']}").json()["error"] == "RuntimeError: boom"
    assert "Traceback" in root.get(f"/v1/searches/{job['id']}").json()["error"]


def test_read_only_tokens_cannot_start_heavy_work(rt: Runtime) -> None:
    viewer = _client(rt, "viewer", ("read",))
    assert viewer.get("/v1/devices/nb201-pixel3/references.zip").status_code == 403
    assert viewer.post("/v1/supernets/nb201/export", json={"arch": {}}).status_code == 403
    assert viewer.post("/v1/devices/local/measure", json={}).status_code == 403


def test_with_auth_off_everything_is_local(sqlite_url: str) -> None:
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        with rt.session() as s:
            register_benchmark(s)
        client = TestClient(create_app(rt))
        assert client.post("/v1/devices", json={"name": "d"}).json()["owner"] == "local"
        assert client.post("/v1/searches", json=SPEC).json()["owner"] == "local"
        assert client.delete("/v1/devices/nb201-pixel3").status_code == 403


def test_cli_creates_admin_tokens(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from service.cli import app

    home = ["--home", str(tmp_path / "h"), "--json"]
    made = CliRunner().invoke(app, [*home, "token", "create", "root", "--admin"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["scopes"] == ["read", "write", "admin"]
    # Read-only and admin: an auditor's token, seeing all and changing nothing.
    both = CliRunner().invoke(app, [*home, "token", "create", "x", "--admin", "--read-only"])
    assert both.exit_code == 0 and json.loads(both.output)["scopes"] == ["read", "admin"]
