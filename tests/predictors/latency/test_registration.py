from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from predictors.latency import (
    DeviceSpec,
    MetaLatencyPredictor,
    MetaParams,
    adapt_device,
    export_reference_onnx,
    export_round_onnx,
    load_pretrained,
    measure_archs,
    pretrained_spaces,
    propose_measurements,
    read_records,
    readapt_device,
    reference_archs,
    reference_set,
    split_records,
    uncertainty_level,
)
from supernets import tables
from supernets.spaces import NB201Space, OFAMobileNetV3Space, get_space


@pytest.mark.parametrize("name", ["nb201", "ofa-mbv3", "ofa-mbv3-tiny"])
def test_shipped_predictors_match_their_space(name: str) -> None:
    assert name in pretrained_spaces()
    meta = load_pretrained(name)
    space = get_space(name)
    assert meta.feature_dim == space.feature_dim
    assert meta.metadata["space"] == name and meta.metadata["space_config"] == space.config()
    configs = reference_archs(name)
    assert 1 <= len(configs) <= 10
    X_ref = space.encode_many([space.validate(c) for c in configs])
    np.testing.assert_array_equal(X_ref, meta.reference_features)
    assert set(meta.source_devices) == set(
        (tables.nb201_split() if name == "nb201" else tables.ofa_mbv3_split()).train
    )


def test_unknown_space_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown search space 'x'"):
        load_pretrained("x")


def test_adapt_device_from_table_measurements() -> None:
    space = NB201Space()
    latency = tables.nb201_latency().latency["gold_6226"]  # a meta-test device
    refs = [space.index(space.validate(c)) for c in reference_archs("nb201")]
    rng = np.random.default_rng(0)
    extra_idx = rng.choice(15625, 200, replace=False)
    extra = [(space.from_index(i).to_dict(), float(latency[i])) for i in extra_idx]
    result = adapt_device("nb201", latency[refs], extra=extra, device="gold")
    q = result.quality
    assert q["n_references"] == len(refs) and q["n_extra"] == 200
    assert q["spearman_rho"] > 0.95 and q["within_10pct"] > 0.7 and q["reference_mape"] < 0.2
    assert result.model.device == "gold" and result.model.metadata["quality"] == q
    refit = adapt_device("nb201", latency[refs], extra=extra, refit_with_extra=True)
    assert refit.quality == {**q, "refit_with_extra": 1.0}
    assert refit.model.n_measurements == len(refs) + 200
    one = adapt_device("nb201", latency[refs], extra=extra[:1])
    assert set(one.quality) >= {"within_10pct", "mape"} and "spearman_rho" not in one.quality
    assert json.loads(json.dumps(result.to_dict()))["space"] == "nb201"


def test_active_registration_measures_where_the_model_is_least_sure() -> None:
    space = NB201Space()
    latency = tables.nb201_latency().latency["eyeriss"]  # a meta-test device
    refs = [space.index(space.validate(c)) for c in reference_archs("nb201")]
    asked: list[int] = []

    def measure(config: dict[str, object]) -> float:
        i = space.index(space.validate(config))
        asked.append(i)
        return float(latency[i])

    rng = np.random.default_rng(1)
    held_out = rng.choice(15625, 300, replace=False)
    extra = [(space.from_index(i).to_dict(), float(latency[i])) for i in held_out]
    plain = adapt_device("nb201", latency[refs], extra=extra)
    active = adapt_device(
        "nb201", latency[refs], extra=extra, measure=measure, max_extra=8, patience=8
    )
    assert len(active.active) == 8 == len(asked) and active.stopped == "max_extra reached"
    assert not set(asked) & (set(refs) | set(held_out.tolist()))  # extras stay held out
    assert len(set(asked)) == 8
    trace = active.uncertainty
    assert len(trace) == 9 and trace[-1] < trace[0]
    assert active.model.n_measurements == len(refs) + 8
    assert active.quality["n_active"] == 8 and active.quality["n_extra"] == 300
    assert active.quality["spearman_rho"] >= plain.quality["spearman_rho"] - 0.01
    assert active.model.metadata["active_archs"] == [a for a, _ in active.active]
    assert active.to_dict()["stopped"] == "max_extra reached"
    # a high bar for progress stops as soon as patience allows
    early = adapt_device(
        "nb201", latency[refs], measure=measure, max_extra=8, min_gain=0.9, patience=1
    )
    assert early.stopped == "uncertainty stopped falling" and len(early.active) == 1
    with pytest.raises(ValueError, match="needs measure"):
        adapt_device("nb201", latency[refs], max_extra=3)
    with pytest.raises(ValueError, match="max_extra must be >= 0"):
        adapt_device("nb201", latency[refs], measure=measure, max_extra=-1)
    with pytest.raises(ValueError, match="positive"):
        adapt_device("nb201", latency[refs], measure=lambda c: -1.0, max_extra=2)


def test_propose_measurements_for_a_remote_device() -> None:
    space = NB201Space()
    latency = tables.nb201_latency().latency["raspi4"]
    refs = reference_archs("nb201")
    ms = [float(latency[space.index(space.validate(c))]) for c in refs]
    model = adapt_device("nb201", ms).model
    batch = propose_measurements(model, "nb201", 5, measured=refs)
    hashes = {space.arch_hash(space.validate(a)) for a in batch}
    assert len(hashes) == 5
    assert not hashes & {space.arch_hash(space.validate(c)) for c in refs}
    with pytest.raises(ValueError, match="k must be >= 1"):
        propose_measurements(model, "nb201", 0)


def test_readapt_from_measurements_of_any_architectures() -> None:
    """A stored device re-adapts from whatever it measured: references of an
    older reference set, extras, repeats; more measurements, less uncertainty."""
    space = NB201Space()
    latency = tables.nb201_latency().latency["fpga"]
    rng = np.random.default_rng(3)
    old_refs = [space.from_index(int(i)).to_dict() for i in rng.choice(15625, 10, replace=False)]
    pairs = [(c, float(latency[space.index(space.validate(c))])) for c in old_refs]
    pairs.append(pairs[0])  # a repeat counts once
    first = readapt_device("nb201", pairs, references=old_refs, device="f")
    assert first.quality["n_measured"] == 10 and first.quality["fit_mape"] < 0.2
    assert first.model.device == "f" and first.model.has_uncertainty
    assert first.model.metadata["reference_set"] != reference_set("nb201")
    assert first.model.metadata["reference_archs"] == old_refs
    more = pairs + [
        (space.from_index(int(i)).to_dict(), float(latency[i]))
        for i in rng.choice(15625, 30, replace=False)
    ]
    second = readapt_device("nb201", more, references=old_refs)
    assert second.model.n_measurements > first.model.n_measurements
    assert uncertainty_level(second.model, space) < uncertainty_level(first.model, space)
    assert readapt_device("nb201", pairs).model.metadata["reference_set"] == reference_set("nb201")
    with pytest.raises(ValueError, match="no measurements"):
        readapt_device("nb201", [])
    with pytest.raises(ValueError, match="positive"):
        readapt_device("nb201", [(old_refs[0], -2.0)])


def test_adapt_device_rejects_bad_submissions() -> None:
    n = len(reference_archs("nb201"))
    with pytest.raises(ValueError, match=f"wrong number of reference latencies: got {n - 1}"):
        adapt_device("nb201", [5.0] * (n - 1))
    bad = [5.0] * n
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        adapt_device("nb201", bad)
    bad[3] = 0.0
    with pytest.raises(ValueError, match="positive"):
        adapt_device("nb201", bad)
    with pytest.raises(ValueError, match="positive"):
        adapt_device("nb201", [5.0] * n, extra=[({"ops": ["none"] * 6}, -1.0)])
    with pytest.raises(ValueError, match="feature width mismatch"):
        adapt_device("ofa-mbv3-tiny", [5.0] * n, predictor=load_pretrained("nb201"))


@pytest.fixture(scope="module")
def tiny_meta() -> MetaLatencyPredictor:
    """A two-reference predictor for the tiny space (keeps ONNX exports few),
    fitted on synthetic additive devices."""
    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(120)]
    X = space.encode_many(archs)
    Y = {f"d{i}": 1.0 + X @ rng.uniform(0.01, 0.1, X.shape[1]) for i in range(3)}
    meta = MetaLatencyPredictor(seed=0, params=MetaParams(n_references=2)).fit(X, Y)
    meta.metadata["reference_archs"] = [archs[i].to_dict() for i in meta.reference_indices]
    return meta


@pytest.fixture(scope="module")
def reference_package(
    tmp_path_factory: pytest.TempPathFactory, tiny_meta: MetaLatencyPredictor
) -> tuple[Path, list[Path], list[tuple[int, int, str]]]:
    """The two-reference package (exported once: ONNX export takes seconds),
    with the progress it reported."""
    out = tmp_path_factory.mktemp("references")
    calls: list[tuple[int, int, str]] = []
    paths = export_reference_onnx(
        "ofa-mbv3-tiny", out, predictor=tiny_meta, on_progress=lambda *c: calls.append(c)
    )
    return out, paths, calls


def test_reference_export_reports_one_unit_per_model(
    reference_package: tuple[Path, list[Path], list[tuple[int, int, str]]],
) -> None:
    _, _, calls = reference_package
    assert [(done, total) for done, total, _ in calls] == [(0, 2), (1, 2), (2, 2)]
    assert calls[1][2] == "exporting ref model ref_01.onnx"


def test_reference_models_are_exported_as_deployed_subnets_are(
    reference_package: tuple[Path, list[Path], list[tuple[int, int, str]]],
    tiny_meta: MetaLatencyPredictor,
    tmp_path: Path,
) -> None:
    """A reference model and the deployed export of the same architecture come
    from one exporter: same opset, same graph operators, same input/output
    signature (dynamic batch), same exporter stamp."""
    import onnx

    from supernets.export import ONNX_EXPORTER, ONNX_OPSET, export_subnet
    from supernets.networks import build_supernet

    out, paths, _ = reference_package
    space = get_space("ofa-mbv3-tiny")
    arch = reference_archs(space, tiny_meta)[0]
    deployed_dir = tmp_path / "deployed"
    export_subnet(build_supernet(space, 10), arch, deployed_dir, formats=("onnx",))
    reference = onnx.load(str(paths[0]))
    deployed = onnx.load(str(deployed_dir / "subnet.onnx"))

    def opsets(model: onnx.ModelProto) -> dict[str, int]:
        return {o.domain: o.version for o in model.opset_import}

    def signature(values: object) -> list[tuple[str, list[object]]]:
        return [
            (v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values  # type: ignore[attr-defined]
        ]

    assert opsets(reference) == opsets(deployed)
    assert opsets(deployed)[""] == ONNX_OPSET
    assert [n.op_type for n in reference.graph.node] == [n.op_type for n in deployed.graph.node]
    assert signature(reference.graph.input) == signature(deployed.graph.input)
    assert signature(reference.graph.output) == signature(deployed.graph.output)
    assert isinstance(signature(deployed.graph.input)[0][1][0], str)  # dynamic batch
    assert (reference.producer_name, reference.producer_version) == (
        deployed.producer_name,
        deployed.producer_version,
    )
    stamp = {p.key: p.value for p in reference.metadata_props}
    assert stamp["exporter"] == ONNX_EXPORTER
    assert stamp["exporter"] == {p.key: p.value for p in deployed.metadata_props}["exporter"]
    assert json.loads((out / "manifest.json").read_text())["exporter"] == ONNX_EXPORTER


def test_reference_onnx_files_run_on_a_remote_device(
    reference_package: tuple[Path, list[Path], list[tuple[int, int, str]]],
    tiny_meta: MetaLatencyPredictor,
) -> None:
    tmp_path, paths, _ = reference_package
    assert [p.name for p in paths] == ["ref_00.onnx", "ref_01.onnx"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["space"] == "ofa-mbv3-tiny"
    assert [r["arch"] for r in manifest["references"]] == reference_archs(
        "ofa-mbv3-tiny", tiny_meta
    )
    # The runner is standalone: run it as a plain script, outside the repository.
    out = subprocess.run(
        [sys.executable, str(tmp_path / "measure.py"), *map(str, paths), "--repeats", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env={"PATH": "", "PYTHONPATH": ""},
    ).stdout
    assert (tmp_path / "hwnas_records.py").is_file()
    ref_set = reference_set("ofa-mbv3-tiny", tiny_meta)
    assert manifest["reference_set"] == ref_set
    records = read_records(out, space="ofa-mbv3-tiny", reference_set=ref_set)
    latencies, extra = split_records(records, 2)
    assert extra == [] and min(latencies) > 0
    result = adapt_device("ofa-mbv3-tiny", latencies, predictor=tiny_meta)
    assert result.model.predict(tiny_meta.reference_features).shape == (2,)


def test_round_package_records_name_their_architectures(
    tmp_path: Path, tiny_meta: MetaLatencyPredictor
) -> None:
    space = get_space("ofa-mbv3-tiny")
    archs = [space.sample(np.random.default_rng(i)).to_dict() for i in range(2)]
    paths = export_round_onnx(
        space, archs, tmp_path, round_no=2, predictor=tiny_meta, manifest={"device": "x"}
    )
    assert [p.name for p in paths] == ["round2_00.onnx", "round2_01.onnx"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["round"], manifest["device"]) == (2, "x")
    out = subprocess.run(
        [sys.executable, str(tmp_path / "measure.py"), *map(str, paths), "--repeats", "3"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
        env={"PATH": "", "PYTHONPATH": ""},
    ).stdout  # fmt: skip
    ref_set = reference_set("ofa-mbv3-tiny", tiny_meta)
    records = read_records(out, space="ofa-mbv3-tiny", reference_set=ref_set)
    assert [r.arch for r in records] == [space.validate(a).to_dict() for a in archs]
    assert all(r.ref is None and r.details["round"] == 2 for r in records)
    with pytest.raises(ValueError, match="round must be >= 1"):
        export_round_onnx(space, archs, tmp_path, round_no=0, predictor=tiny_meta)


def test_measure_archs_locally(tiny_meta: MetaLatencyPredictor) -> None:
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    configs = reference_archs(space, tiny_meta)
    records = measure_archs(space, configs, DeviceSpec(threads=1), warmup=1, repeats=3)
    assert [r.input_shape for r in records] == [(1, 3, c["r"], c["r"]) for c in configs]
    with pytest.raises(ValueError, match="no network builder for search space 'nb201'"):
        measure_archs("nb201", reference_archs("nb201"))


def test_other_ofa_configurations_get_a_predictor_meta_trained_on_the_fly() -> None:
    space = get_space("ofa-mbv3-tiny", resolutions=[32, 48, 64])
    meta = load_pretrained(space)
    assert meta.metadata["space_config"]["resolutions"] == [32, 48, 64]
    assert meta.feature_dim == space.feature_dim
    configs = reference_archs(space)
    assert all(space.validate(c).r in (32, 48, 64) for c in configs)
    assert load_pretrained(space).to_bytes() == meta.to_bytes()  # cached per process
