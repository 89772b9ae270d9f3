"""references.zip is built once per space and batch and then served as a file."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app
from service.runtime import Runtime
from service.settings import load_settings
from supernets.export import ONNX_EXPORTER


@pytest.mark.slow
def test_reference_package_is_built_once_and_served_as_a_file(tmp_path: Path) -> None:
    with Runtime.open(load_settings(home=tmp_path / "home")) as rt:
        client = TestClient(create_app(rt))
        for name in ("phone", "tablet"):
            assert client.post("/v1/devices", json={"name": name}).status_code == 201
        first = client.get("/v1/devices/phone/references.zip")
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(first.content)).namelist()
        assert {"manifest.json", "measure.py", "ref_00.onnx"} <= set(names)
        # The package cache is shared by the run's tests (tests/conftest.py):
        # this package may have been built by an earlier test, never twice.
        cached = list(rt.settings.packages_dir.glob("ofa-mbv3-tiny-b1-*.zip"))
        assert len(cached) == 1
        built_at = cached[0].stat().st_mtime_ns
        start = time.perf_counter()
        second = client.get("/v1/devices/tablet/references.zip")  # same space and batch
        assert time.perf_counter() - start < 2.0
        assert second.content == first.content
        assert cached[0].stat().st_mtime_ns == built_at
        assert "tablet-ofa-mbv3-tiny-references.zip" in second.headers["content-disposition"]
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(first.content)).read("manifest.json"))
        assert manifest["exporter"] == ONNX_EXPORTER  # the exporter of deployed subnets

    # The CLI copies the same cached package, saying so on stderr; stdout stays JSON.
    out = tmp_path / "refs"
    result = CliRunner().invoke(
        app,
        [
            "--home",
            str(tmp_path / "home"),
            "device",
            "references",
            "phone",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == [f"ref_{i:02d}.onnx" for i in range(10)]
    assert "reference package: 1/1 (100%) reference package cached at" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_concurrent_requests_build_a_package_once(tmp_path: Path) -> None:
    """Requests (or processes sharing the cache) asking for the same package
    at once: one builds it, the others wait and serve its file."""
    from concurrent.futures import ThreadPoolExecutor

    from service.orchestration.registration import _zip_once

    builds: list[int] = []

    def build(folder: Path) -> None:
        builds.append(1)
        time.sleep(0.3)  # long enough for every other caller to arrive
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"onnx")

    target = tmp_path / "cache" / "pkg-b1-0123456789ab.zip"
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: _zip_once(target, build, lambda *a: None, "pkg"), range(4)))
    assert builds == [1] and set(paths) == {target}
    assert zipfile.ZipFile(target).namelist() == ["model.onnx"]
