"""Edge values and limits: every one is a 4xx with a JSON error body, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app as cli
from service.orchestration.benchmarks import register_benchmark
from service.runtime import Runtime
from service.settings import load_settings


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    from service.db import upgrade

    settings = load_settings(database_url=db_url)
    with Runtime.open(settings, check_schema=False) as rt:
        upgrade(rt.engine)
        with rt.session() as s:
            register_benchmark(s)
        yield TestClient(create_app(rt), raise_server_exceptions=False)


def _refused(response, status: int = 422, says: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert says in error["message"] and len(error["message"]) <= 2000


def test_request_bodies_are_limited(client: TestClient) -> None:
    big = b'{"name": "x", "description": "' + b"a" * (1024 * 1024) + b'"}'
    _refused(client.post("/v1/devices", content=big), 413, "larger than 1048576 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "x", "description": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}'

    _refused(client.post("/v1/devices", content=chunks()), 413)
    assert client.get("/v1/devices/x").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v1/searches/2147483648",
        "/v1/searches/9223372036854775808",
        "/v1/searches/0/trials",
        "/v1/searches?before_id=9223372036854775808",
        "/v1/searches/1/trials?after_id=2147483648",
        "/v1/devices/a%00b",
        "/v1/devices/" + "d" * 129,
        "/v1/supernets/nb201%00",
        "/v1/query/best?supernet=nb201&device=nb201-pixel3&budget_ms=inf",
        "/v1/query/best?supernet=nb201&device=nb201-pixel3&budget_ms=nan",
        "/v1/query/best?supernet=nb201&device=nb201-pixel3&budget_ms=1e309",
        "/v1/query/pareto?supernet=nb%00&device=nb201-pixel3",
        "/v1/devices/nb201-pixel3/measurements?space=x%00",
        "/v1/searches?state=bogus",
    ],
)
def test_edge_values_in_paths_and_queries(client: TestClient, path: str) -> None:
    _refused(client.get(path))


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            '{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": Infinity}',
            "latency_budget_ms",
        ),
        ('{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": NaN}', "finite"),
        (
            '{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 5,'
            ' "time_budget_s": 1e400}',
            "time_budget_s",
        ),
        ('{"supernet": "nb\\u0000201", "device": "nb201-pixel3", "latency_budget_ms": 5}', "name"),
        (
            '{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": {"a": 1}}',
            "number",
        ),
        (
            '{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 5,'
            ' "seed": 9223372036854775808}',
            "seed",
        ),
        (
            '{"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 5,'
            ' "extra_devices": [' + ",".join(f'"d{i}"' for i in range(17)) + "]}",
            "extra_devices",
        ),
        ("[1, 2]", "body"),
    ],
)
def test_edge_values_in_a_search_spec(client: TestClient, body: str, says: str) -> None:
    headers = {"content-type": "application/json"}
    _refused(client.post("/v1/searches", content=body, headers=headers), 422, says)
    assert client.get("/v1/searches").json() == []


def test_edge_values_in_other_bodies(client: TestClient) -> None:
    _refused(client.post("/v1/devices", json={"name": "n" * 129}), 422, "at most 128")
    _refused(client.post("/v1/devices", json={"name": "ok", "batch_size": 10**12}))
    _refused(client.post("/v1/devices", json={"name": "ok", "description": "a\x00b"}))
    client.post("/v1/devices", json={"name": "phone"})
    refs = [1.0] * 10
    _refused(
        client.post(
            "/v1/devices/phone/latencies",
            json={"reference_ms": refs, "extra": [{"arch": {}, "ms": {"value": 1}}]},
        ),
        422,
        "extra.0.ms",
    )
    _refused(client.post("/v1/devices/phone/latencies", json={"reference_ms": [1e308] * 10}))
    _refused(client.post("/v1/devices/phone/latencies", json={"reference_ms": [1.0] * 101}))
    _refused(client.post("/v1/devices/local/measure", json={"threads": 10**6}))
    _refused(client.post("/v1/devices/local/measure", json={"batch": 10**6}))
    _refused(client.post("/v1/supernets/nb201/export", json={"trial_id": 2**31}))
    _refused(client.post("/v1/supernets/nb201/export", json={"formats": ["exe"]}))


def test_unexpected_errors_are_short_json_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("secret detail /srv/path")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    response = client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal" and "RuntimeError" in error["message"]
    assert "secret detail" not in error["message"]
    assert "secret detail" in caplog.text


def test_cli_refuses_non_finite_numbers_naming_the_flag(tmp_path) -> None:
    home = ["--home", str(tmp_path / "h")]
    for flag in ("--budget-ms", "--time-budget-s"):
        args = ["search", "submit", "-s", "nb201", "-d", "nb201-pixel3", "-b", "5", flag, "inf"]
        result = CliRunner().invoke(cli, [*home, *args])
        assert result.exit_code != 0 and f"{flag} must be a finite number" in result.output
