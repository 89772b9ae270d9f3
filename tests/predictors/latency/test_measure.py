from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from predictors.latency import (
    BACKENDS,
    DeviceSpec,
    available_backends,
    measure_latency,
    measure_onnx,
)
from predictors.latency.measure import main
from predictors.latency.records import read_records
from supernets.export import onnx_from_module


def small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_device_spec_names_the_device() -> None:
    spec = DeviceSpec(backend="onnxruntime-cpu", threads=2, batch=8, host="lab")
    assert spec.name == "lab/onnxruntime-cpu/t2/b8"
    assert DeviceSpec.parse(spec.name) == spec
    assert spec.to_dict()["name"] == spec.name
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        DeviceSpec(backend="tpu")
    with pytest.raises(ValueError, match="threads"):
        DeviceSpec(threads=0)
    with pytest.raises(ValueError, match="batch"):
        DeviceSpec(batch=0)
    with pytest.raises(ValueError, match="host/backend"):
        DeviceSpec.parse("just-a-name")


def test_torch_cpu_measurement_records_how_it_was_taken() -> None:
    threads_before = torch.get_num_threads()
    m = measure_latency(
        small_net(), (3, 16, 16), DeviceSpec(threads=1, batch=2), warmup=2, repeats=7
    )
    assert torch.get_num_threads() == threads_before
    assert m.backend == "torch-cpu" and m.threads == 1 and m.batch == 2
    assert m.input_shape == (2, 3, 16, 16)
    assert m.repeats == 7 and m.warmup == 2 and len(m.samples_ms) == 7
    assert 0 < m.min_ms <= m.p10_ms <= m.median_ms <= m.p90_ms <= m.max_ms
    assert m.iqr_ms >= 0 and m.relative_spread >= 0
    assert m.torch_version == torch.__version__ and m.cpu
    record = m.to_dict()
    assert record["device"] == m.device and record["iqr_ms"] == m.iqr_ms
    assert type(m).from_dict(json.loads(json.dumps(record))) == m


def test_onnxruntime_backend_and_onnx_files(tmp_path: Path) -> None:
    m = measure_latency(small_net(), (3, 16, 16), DeviceSpec(backend="onnxruntime-cpu"), repeats=5)
    assert m.backend == "onnxruntime-cpu" and m.onnxruntime_version
    path = onnx_from_module(small_net(), tmp_path / "net.onnx", (3, 16, 16))
    m2 = measure_onnx(path, DeviceSpec(backend="onnxruntime-cpu", threads=1, batch=1), repeats=5)
    assert m2.input_shape == (1, 3, 16, 16) and m2.median_ms > 0
    # the exported batch is dynamic: the device's batch is fed
    m4 = measure_onnx(path, DeviceSpec(backend="onnxruntime-cpu", batch=4), repeats=5)
    assert m4.input_shape == (4, 3, 16, 16)
    static = onnx.load(str(path))
    for value in (*static.graph.input, *static.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(static, str(tmp_path / "static.onnx"))
    with pytest.raises(ValueError, match="fixed batch size 1"):
        measure_onnx(tmp_path / "static.onnx", DeviceSpec(backend="onnxruntime-cpu", batch=4))
    with pytest.raises(ValueError, match="runs on backend 'onnxruntime-cpu'"):
        measure_onnx(path, DeviceSpec(backend="torch-cpu"))
    with pytest.raises(ValueError, match="no ONNX file"):
        measure_onnx(tmp_path / "missing.onnx")


def test_interleaved_rounds_measure_every_network() -> None:
    from predictors.latency import measure_many

    nets = [(small_net(), (3, 8, 8)), (nn.Sequential(small_net()), (3, 16, 16))]
    records = measure_many(nets, DeviceSpec(), warmup=1, repeats=6, rounds=3)
    assert [r.input_shape for r in records] == [(1, 3, 8, 8), (1, 3, 16, 16)]
    assert all(len(r.samples_ms) == 6 for r in records)
    with pytest.raises(ValueError, match="rounds"):
        measure_many(nets, repeats=3, rounds=4)


@pytest.mark.parametrize("backend", ["torch-cpu", "onnxruntime-cpu"])
def test_measurement_reports_progress_per_network_and_round(backend: str) -> None:
    from predictors.latency import measure_many

    calls: list[tuple[int, int, str]] = []
    nets = [(small_net(), (3, 8, 8)), (small_net(), (3, 8, 8)), (small_net(), (3, 8, 8))]
    measure_many(
        nets,
        DeviceSpec(backend=backend),
        warmup=1,
        repeats=4,
        rounds=2,
        on_progress=lambda *c: calls.append(c),
    )
    # 3 networks prepared + 3 networks x 2 rounds timed, counted one by one
    assert {total for _, total, _ in calls} == {9}
    assert [done for done, _, _ in calls] == list(range(10))
    assert calls[0][2].startswith("preparing network 1/3")
    assert calls[3][2] == "timing network 1/3, round 1/2"


def test_cli_prints_one_measurement_record_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = onnx_from_module(small_net(), tmp_path / "a.onnx", (3, 8, 8))
    args = [str(path), "--repeats", "3", "--warmup", "1", "--host", "phone"]
    # without a reference package's manifest there is no space to name: refused
    assert main(args) == 2
    assert "no manifest" in capsys.readouterr().err
    manifest = {
        "space": "ofa-mbv3-tiny",
        "reference_set": "abc123",
        "references": [{"index": 3, "file": "a.onnx", "arch": {}}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert main([*args, "--job", "7"]) == 0
    printed = capsys.readouterr()
    (record,) = read_records(printed.out, space="ofa-mbv3-tiny", reference_set="abc123")
    assert "measured a.onnx (1/1)" in printed.err  # progress on stderr, records alone on stdout
    assert record.ref == 3 and record.job == "7" and record.latency_ms > 0
    assert record.details["file"] == "a.onnx"
    assert record.details["device"] == "phone/onnxruntime-cpu/t1/b1"
    # the package's batch is what the dynamic batch dimension is fed by default
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "batch": 2}))
    assert main(args) == 0
    (record,) = read_records(capsys.readouterr().out, space="ofa-mbv3-tiny", reference_set="abc123")
    assert record.details["device"] == "phone/onnxruntime-cpu/t1/b2"
    assert record.details["input_shape"] == [2, 3, 8, 8]
    assert main([str(tmp_path / "nope.onnx")]) == 2


def test_bad_measurement_requests() -> None:
    with pytest.raises(ValueError, match="repeats must be >= 3"):
        measure_latency(small_net(), (3, 8, 8), repeats=2)
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(small_net(), ())
    with pytest.raises(ValueError, match=r"torch\.nn\.Module"):
        measure_latency("not a model", (3, 8, 8))


def test_backends() -> None:
    found = available_backends()
    assert {"torch-cpu", "onnxruntime-cpu"} <= set(found) <= set(BACKENDS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_backend_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs a CUDA device"):
        measure_latency(small_net(), (3, 8, 8), DeviceSpec(backend="torch-cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_backend() -> None:
    m = measure_latency(small_net(), (3, 16, 16), DeviceSpec(backend="torch-cuda"), repeats=5)
    assert m.gpu and m.median_ms > 0
