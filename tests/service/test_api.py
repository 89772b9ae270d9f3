"""The HTTP API: JSON errors, auth, devices, searches, queries."""

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


@pytest.fixture
def rt(sqlite_url: str) -> Iterator[Runtime]:
    with Runtime.open(load_settings(database_url=sqlite_url, require_auth=False)) as handle:
        yield handle


@pytest.fixture
def client(rt: Runtime) -> TestClient:
    return TestClient(create_app(rt))


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "schema": "current"}


def test_device_crud_and_errors(client: TestClient) -> None:
    created = client.post(
        "/v1/devices", json={"name": "pixel9", "kind": "remote", "description": "phone"}
    )
    assert created.status_code == 201 and created.json()["name"] == "pixel9"
    dup = client.post("/v1/devices", json={"name": "pixel9"})
    assert dup.status_code == 409 and dup.json()["error"]["type"] == "conflict"
    bad = client.post("/v1/devices", json={"name": "bad name!"})
    assert bad.status_code == 422 and "invalid" in bad.json()["error"]["message"]
    extra = client.post("/v1/devices", json={"name": "x", "colour": "red"})
    assert extra.status_code == 422 and "colour" in extra.json()["error"]["message"]
    kind = client.post("/v1/devices", json={"name": "x", "kind": "toaster"})
    assert kind.status_code == 422 and "kind" in kind.json()["error"]["message"]
    assert [d["name"] for d in client.get("/v1/devices").json()] == ["pixel9"]
    assert client.get("/v1/devices/nope").status_code == 404
    assert client.delete("/v1/devices/pixel9").status_code == 204
    assert client.get("/v1/devices/pixel9").status_code == 404


def test_search_submit_validation_keeps_queue_clean(client: TestClient, rt: Runtime) -> None:
    with rt.session() as s:
        register_benchmark(s)
    cases = [
        ({"supernet": "nb201", "device": "nb201-pixel3"}, "latency_budget_ms"),
        ({"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 0}, "greater than 0"),
        ({"supernet": "nope", "device": "nb201-pixel3", "latency_budget_ms": 5}, "supernet 'nope'"),
        ({"supernet": "nb201", "device": "nope", "latency_budget_ms": 5}, "device 'nope'"),
        (
            {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 5, "colour": 1},
            "colour",
        ),
    ]
    for body, message in cases:
        response = client.post("/v1/searches", json=body)
        assert 400 <= response.status_code < 500, body
        assert message in response.json()["error"]["message"]
    # A device with no latency source for the space is refused with advice.
    client.post("/v1/devices", json={"name": "phone"})
    response = client.post(
        "/v1/searches", json={"supernet": "nb201", "device": "phone", "latency_budget_ms": 5}
    )
    assert response.status_code == 422 and "hwnas device" in response.json()["error"]["message"]
    assert client.get("/v1/searches").json() == []


def test_search_flow_and_queries(client: TestClient, rt: Runtime) -> None:
    with rt.session() as s:
        register_benchmark(s)
    body = {
        "supernet": "nb201",
        "device": "nb201-pixel3",
        "latency_budget_ms": 15,
        "n_evaluations": 15,
    }
    job = client.post("/v1/searches", json=body, params={"name": "first"}).json()
    assert job["state"] == "queued" and job["name"] == "first"
    Worker(rt).run(exit_when_idle=True)
    done = client.get(f"/v1/searches/{job['id']}").json()
    assert done["state"] == "succeeded" and done["n_evaluations"] == 15
    trials = client.get(f"/v1/searches/{job['id']}/trials", params={"limit": 10}).json()
    rest = client.get(
        f"/v1/searches/{job['id']}/trials", params={"after_id": trials[-1]["id"]}
    ).json()
    assert len(trials) == 10 and len(rest) == 5
    best = client.get(
        "/v1/query/best", params={"supernet": "nb201", "device": "nb201-pixel3", "budget_ms": 15}
    ).json()
    assert best["feasible"] and best["best"]["latency_ms"] <= 15
    assert (
        best["best"]["accuracy_source"] == "measured"
        and best["best"]["latency_source"] == "measured"
    )
    measured = [t for t in trials + rest if t["latency_ms"] <= 15]
    assert best["best"]["accuracy"] == max(t["accuracy"] for t in measured)
    impossible = client.get(
        "/v1/query/best", params={"supernet": "nb201", "device": "nb201-pixel3", "budget_ms": 0.01}
    ).json()
    assert impossible["feasible"] is False and impossible["best"] is None
    assert impossible["closest"] and impossible["closest"][0]["latency_ms"] > 0.01
    front = client.get(
        "/v1/query/pareto", params={"supernet": "nb201", "device": "nb201-pixel3"}
    ).json()["front"]
    lat = [p["latency_ms"] for p in front]
    acc = [p["accuracy"] for p in front]
    assert lat == sorted(lat) and acc == sorted(acc)
    assert client.post(f"/v1/searches/{job['id']}/cancel").status_code == 409
    assert (
        client.get(
            "/v1/query/best", params={"supernet": "nb201", "device": "nb201-pixel3"}
        ).status_code
        == 422
    )


def test_auth(sqlite_url: str) -> None:
    with Runtime.open(load_settings(database_url=sqlite_url, require_auth=True)) as rt:
        with rt.session() as s:
            _, rw = tokens.create_token(s, "rw")
            _, ro = tokens.create_token(s, "ro", ("read",))
        client = TestClient(create_app(rt))
        assert client.get("/v1/devices").status_code == 401
        assert (
            client.get("/v1/devices", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert (
            client.get("/v1/devices", headers={"Authorization": f"Bearer {ro}"}).status_code == 200
        )
        denied = client.post(
            "/v1/devices", json={"name": "d"}, headers={"Authorization": f"Bearer {ro}"}
        )
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "forbidden"
        ok = client.post(
            "/v1/devices", json={"name": "d"}, headers={"Authorization": f"Bearer {rw}"}
        )
        assert ok.status_code == 201
        with rt.session() as s:
            tokens.revoke_token(s, "rw")
        assert (
            client.get("/v1/devices", headers={"Authorization": f"Bearer {rw}"}).status_code == 401
        )


def test_hwnas_serve_answers_over_a_real_socket(sqlite_url: str) -> None:
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            base + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "--database-url",
            sqlite_url,
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = call("/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert status == 200 and health["status"] == "ok"
        assert call("/v1/devices", {"name": "remote-1"})[0] == 201
        assert call("/v1/devices/remote-1")[1]["kind"] == "remote"
        try:
            call("/v1/devices/none-such")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404 and json.loads(exc.read())["error"]["type"] == "not_found"
        else:
            raise AssertionError("a missing device must be a 404")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
