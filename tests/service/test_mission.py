"""The main job end to end at the smallest sizes: NAS-Bench-201 search, supernet
training (``--train``), this CPU registered from real measurements, accuracy
predictor, a supernet search with real evaluations, best-under-budget, export
and plots — then the exported files are checked, the same supernet is served
over HTTP, and a second run reuses what the first stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from fastapi.testclient import TestClient

from service.api import create_app
from service.orchestration.quickstart import QuickstartOptions, run_quickstart
from service.runtime import Runtime
from service.settings import load_settings

# The quickstart fixture trains a supernet and measures this CPU: the slow tier.
pytestmark = pytest.mark.slow

TINY = QuickstartOptions(
    train=True,
    # The six-phase OFA schedule: the longest path through the trainer.
    schedule="progressive-shrinking",
    # digits-hard with a small holdout split: each real evaluation stays cheap.
    dataset='{"kind": "digits-hard", "holdout_fraction": 0.05}',
    nb201_evaluations=15,
    epochs=6,
    max_steps_per_epoch=1,
    batch_size=16,
    latency_extra=2,
    latency_repeats=3,
    predictor_samples=10,
    search_evaluations=6,
    search_batch=3,
    bn_images=50,
    bars=False,
)
NAME = TINY.supernet_name


@pytest.fixture(scope="module")
def mission(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")
    lines: list[str] = []
    with Runtime.open(
        load_settings(home=home, database_url=f"sqlite:///{home / 'hwnas.db'}")
    ) as rt:
        out = run_quickstart(rt, TINY, lines.append)
        yield rt, out, lines, home


def test_every_step_reports_real_work(mission) -> None:
    _, out, lines, home = mission
    assert [line for line in lines if line.startswith("[")] == [
        f"[{i}/6]" + line.split("]", 1)[1]
        for i, line in enumerate((line for line in lines if line.startswith("[")), start=1)
    ]
    nb = out["nb201"]
    assert nb["best"]["latency_ms"] <= nb["budget_ms"]
    assert nb["best"]["accuracy"] <= nb["oracle_accuracy"] + 1e-9
    assert out["supernet"]["last_phase"]["name"] == "elastic-expand-2"
    assert out["supernet"]["dataset"]["kind"] == "digits-hard"
    # The plots of the search, as PNG files under the home.
    assert set(out["plots"]) >= {"pareto", "best_vs_evaluations"}
    for path in out["plots"].values():
        assert Path(path).parent == home / "plots"
        assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert out["device"]["version"] == 1 and out["device"]["quality"]["n_references"] == 10
    assert out["accuracy_predictor"]["n_train"] >= 10
    result = out["search"]["result"]
    assert result["n_evaluations"] == TINY.search_evaluations
    # The promising subnets were checked on this CPU for real.
    assert result["verified_latency"] and all(
        v["measured_ms"] > 0 for v in result["verified_latency"]
    )
    # Each interleaved with three of the registration's references, whose drift
    # since registration is divided out; the step reports the agreement.
    for v in result["verified_latency"]:
        assert len(v["anchor_ratios"]) == 3
        assert v["measured_ms"] == pytest.approx(v["raw_ms"] / v["drift"])
    predicted = [v for v in result["verified_latency"] if v["predicted_ms"] is not None]
    if predicted:
        assert out["search"]["latency_error"]["n"] == len(predicted)
        assert any("median error" in line for line in lines)


def test_exported_subnet_runs_the_same_in_onnxruntime_and_torchscript(mission) -> None:
    _, out, _, _ = mission
    files = {k: Path(v) for k, v in out["export"].items()}
    manifest = json.loads((files["onnx"].parent / "hwnas-export.json").read_text())
    shape = manifest["input_shape"]
    x = torch.randn(*shape)
    scripted = torch.jit.load(str(files["torchscript"])).eval()
    with torch.no_grad():
        expected = scripted(x).numpy()
    session = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - expected).max() <= 1e-4


def test_http_answers_and_export_for_the_trained_supernet(mission) -> None:
    rt, out, _, _ = mission
    client = TestClient(create_app(rt))
    device = out["device"]["device"]
    budget = out["search"]["budget_ms"]
    best = client.get(
        "/v1/query/best",
        params={"supernet": NAME, "device": device, "budget_ms": budget},
    ).json()
    if best["feasible"]:
        assert best["best"]["accuracy_source"] == "measured"
        response = client.post(
            f"/v1/supernets/{NAME}/export",
            json={"device": device, "budget_ms": budget, "formats": ["onnx"], "bn_images": 20},
        )
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        # Built once: the same request is served from the stored file.
        cached = list((rt.settings.artifacts_dir / "exports").glob(f"{NAME}-*.zip"))
        assert len(cached) == 1
        built_at = cached[0].stat().st_mtime_ns
        again = client.post(
            f"/v1/supernets/{NAME}/export",
            json={"device": device, "budget_ms": budget, "formats": ["onnx"], "bn_images": 20},
        )
        assert again.content == response.content
        assert cached[0].stat().st_mtime_ns == built_at
    models = client.get(f"/v1/devices/{device}/models").json()
    assert models[0]["version"] == 1
    refs = client.get(f"/v1/devices/{device}/references").json()["references"]
    assert len(refs) == 10
    bad = client.post(f"/v1/devices/{device}/latencies", json={"reference_ms": [1.0, 2.0]})
    assert (
        bad.status_code == 422
        and "wrong number of reference latencies" in bad.json()["error"]["message"]
    )
    predictors = client.get(f"/v1/supernets/{NAME}/predictors").json()
    assert predictors[0]["version"] == 1 and "metrics" in predictors[0]


def test_a_second_run_reuses_what_is_stored(mission) -> None:
    rt, first, _, _ = mission
    from service.db import Trial

    with rt.session() as s:
        n_trials = s.query(Trial).count()
    lines: list[str] = []
    second = run_quickstart(rt, TINY, lines.append)
    assert second["device"].get("reused") and second["search"]["result"].get("reused")
    assert second["search"]["result"]["id"] == first["search"]["result"]["id"]
    assert any("trained by an earlier run" in line for line in lines)
    assert any(
        f"{TINY.predictor_samples} of {TINY.predictor_samples} sampled" in line for line in lines
    )
    with rt.session() as s:
        assert s.query(Trial).count() == n_trials  # nothing evaluated twice
