"""Device registration, library side: what a new device measures, and the model
adapted from what it measured.

The flow (the service stores and versions the results):

1. :func:`reference_archs` -- the <=10 architectures to measure, as configs of
   the search space; :func:`export_reference_onnx` writes them as ONNX files
   (plus a self-contained ``measure.py`` runner and a manifest) for a device
   that is not this machine; :func:`measure_archs` measures them here.
2. :func:`adapt_device` -- from the measured latencies (one per reference, in
   order) and optionally extra measurements of other architectures: the
   adapted :class:`DeviceLatencyPredictor` and its quality on the extras.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from predictors.latency._checks import check_latencies
from predictors.latency.measure import DeviceSpec, LatencyMeasurement, measure_many
from predictors.latency.meta import DeviceLatencyPredictor, MetaLatencyPredictor, latency_quality
from predictors.latency.pretrained import load_pretrained
from supernets.spaces import OFAMobileNetV3Space, SearchSpace, get_space

__all__ = [
    "DeviceAdaptation",
    "adapt_device",
    "build_networks",
    "export_reference_onnx",
    "measure_archs",
    "reference_archs",
]


def _resolve(
    space: str | SearchSpace[Any], predictor: MetaLatencyPredictor | None
) -> tuple[SearchSpace[Any], MetaLatencyPredictor]:
    space_obj = get_space(space) if isinstance(space, str) else space
    meta = predictor if predictor is not None else load_pretrained(space_obj)
    if meta.feature_dim != space_obj.feature_dim:
        raise ValueError(
            f"feature width mismatch: the latency predictor was fitted on {meta.feature_dim} "
            f"features but space {space_obj.name!r} encodes {space_obj.feature_dim}"
        )
    return space_obj, meta


def reference_archs(
    space: str | SearchSpace[Any], predictor: MetaLatencyPredictor | None = None
) -> list[dict[str, Any]]:
    """Configs of the reference architectures a new device measures, in order.

    From the shipped predictor of ``space`` unless ``predictor`` is given (it
    must carry ``metadata["reference_archs"]``, as shipped ones do).
    """
    space_obj, meta = _resolve(space, predictor)
    configs = meta.metadata.get("reference_archs")
    if not configs:
        # A predictor fitted by a caller: decode its reference rows.
        return [space_obj.decode(row).to_dict() for row in meta.reference_features]
    return [space_obj.validate(c).to_dict() for c in configs]


def default_n_classes(space: SearchSpace[Any]) -> int:
    """Classifier width used for latency: ImageNet's 1000 for the full-size OFA
    spaces (what HELP's tables measured, and OFA's released w1.0 and w1.2
    networks have), 10 for smaller presets."""
    return 1000 if space.name in ("ofa-mbv3", "ofa-mbv3-w1.2") else 10


def build_networks(
    space: SearchSpace[Any], archs: Sequence[Any], *, n_classes: int | None = None
) -> list[tuple[Any, tuple[int, int, int]]]:
    """Static networks of ``archs`` with their one-sample input shapes, extracted
    from one randomly initialised supernet (latency does not depend on weights)."""
    if not isinstance(space, OFAMobileNetV3Space):
        raise ValueError(
            f"no network builder for search space {space.name!r}: measure its reference "
            "architectures with the space's own implementation and submit the latencies"
        )
    from supernets.networks import build_supernet, extract_subnet

    supernet = build_supernet(space, n_classes or default_n_classes(space)).eval()
    out = []
    for arch in archs:
        arch = space.validate(arch)
        out.append((extract_subnet(supernet, arch).eval(), (3, arch.r, arch.r)))
    return out


def measure_archs(
    space: str | SearchSpace[Any],
    archs: Sequence[Any],
    device: DeviceSpec | None = None,
    *,
    n_classes: int | None = None,
    warmup: int = 10,
    repeats: int = 50,
    rounds: int = 5,
) -> list[LatencyMeasurement]:
    """Measure each architecture of ``space`` on this machine (``device`` gives
    backend, threads and batch); one record per architecture, in order. The
    repeats are split into ``rounds`` interleaved over the architectures (see
    :func:`measure_many`), so that load from other processes does not skew a few."""
    space_obj = get_space(space) if isinstance(space, str) else space
    nets = build_networks(space_obj, archs, n_classes=n_classes)
    return measure_many(nets, device, warmup=warmup, repeats=repeats, rounds=min(rounds, repeats))


def export_reference_onnx(
    space: str | SearchSpace[Any],
    out_dir: str | Path,
    *,
    predictor: MetaLatencyPredictor | None = None,
    n_classes: int | None = None,
    batch: int = 1,
) -> list[Path]:
    """Write the reference architectures as ONNX files a remote device can run.

    ``out_dir`` gets ``ref_00.onnx`` ... (static input ``(batch, 3, r, r)``),
    ``manifest.json`` (space, configs, file names, order) and ``measure.py``,
    a standalone runner that needs only numpy and onnxruntime:
    ``python measure.py ref_*.onnx --threads 1 > latencies.jsonl``.
    Returns the ONNX paths in reference order.
    """
    from predictors.latency import measure as measure_module
    from predictors.latency.measure import export_static_onnx

    space_obj, meta = _resolve(space, predictor)
    configs = reference_archs(space_obj, meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nets = build_networks(space_obj, configs, n_classes=n_classes)
    paths = [
        export_static_onnx(net, (batch, *shape), out / f"ref_{i:02d}.onnx")
        for i, (net, shape) in enumerate(nets)
    ]
    manifest = {
        "space": space_obj.name,
        "space_config": space_obj.config(),
        "batch": batch,
        "n_classes": n_classes or default_n_classes(space_obj),
        "references": [
            {"index": i, "file": p.name, "arch": c}
            for i, (p, c) in enumerate(zip(paths, configs, strict=True))
        ],
        "how_to_measure": "python measure.py ref_*.onnx --threads N --batch B > latencies.jsonl",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.copyfile(measure_module.__file__, out / "measure.py")
    return paths


@dataclass(frozen=True)
class DeviceAdaptation:
    """An adapted device model and how good it is.

    ``quality`` is measured on the *extra* measurements only (architectures
    beyond the references, never seen by the model): the metrics of
    :func:`~predictors.latency.meta.latency_quality` (``spearman_rho``,
    ``within_10pct``, ``mape``, ...; rank metrics need >= 2 extras), plus
    ``n_references``, ``n_extra`` and ``reference_mape`` (fit on the references).
    """

    model: DeviceLatencyPredictor
    quality: dict[str, float]
    space: str
    outliers: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "quality": dict(self.quality), "outliers": list(self.outliers)}


def adapt_device(
    space: str | SearchSpace[Any],
    reference_latencies_ms: Sequence[float] | np.ndarray,
    *,
    extra: Sequence[tuple[Any, float]] | Mapping[str, float] | None = None,
    predictor: MetaLatencyPredictor | None = None,
    device: str | None = None,
    refit_with_extra: bool = False,
) -> DeviceAdaptation:
    """Adapt the (shipped) predictor of ``space`` to a device.

    ``reference_latencies_ms`` holds one latency per reference architecture, in
    the order of :func:`reference_archs`. ``extra`` holds further measurements
    as ``(arch config, ms)`` pairs (or ``{arch string: ms}``): the quality is
    measured on them with a model adapted from the references only. With
    ``refit_with_extra`` the returned model is then adapted from the references
    *and* the extras (better: more measurements), and ``quality`` -- recorded
    with ``"refit_with_extra": 1.0`` -- is that of the references-only model, a
    conservative estimate.
    """
    space_obj, meta = _resolve(space, predictor)
    configs = reference_archs(space_obj, meta)
    y_ref = np.asarray(reference_latencies_ms, dtype=np.float64).reshape(-1)
    if y_ref.shape[0] != len(configs):
        raise ValueError(
            f"wrong number of reference latencies: got {y_ref.shape[0]}, space "
            f"{space_obj.name!r} has {len(configs)} reference architectures"
        )
    y_ref = check_latencies(y_ref, name="reference latencies")
    X_ref = space_obj.encode_many([space_obj.validate(c) for c in configs])
    model = meta.adapt(X_ref, y_ref, device=device)
    fitted = model.predict(X_ref)
    quality: dict[str, float] = {
        "n_references": float(len(configs)),
        "reference_mape": float(np.mean(np.abs(fitted - y_ref) / y_ref)),
    }
    pairs = list(extra.items()) if isinstance(extra, Mapping) else list(extra or [])
    quality["n_extra"] = float(len(pairs))
    if pairs:
        X_extra = space_obj.encode_many([space_obj.validate(a) for a, _ in pairs])
        y_extra = check_latencies([ms for _, ms in pairs], name="extra latencies")
        pred = model.predict(X_extra)
        if len(pairs) >= 2:
            quality.update(latency_quality(y_extra, pred))
        else:
            quality["within_10pct"] = float(abs(pred[0] - y_extra[0]) <= 0.1 * y_extra[0])
            quality["mape"] = float(abs(pred[0] - y_extra[0]) / y_extra[0])
    if refit_with_extra and pairs:
        model = meta.adapt(np.vstack([X_ref, X_extra]), np.r_[y_ref, y_extra], device=device)
        quality["refit_with_extra"] = 1.0
    model.metadata.update({"space": space_obj.name, "quality": quality, "reference_archs": configs})
    return DeviceAdaptation(
        model=model, quality=quality, space=space_obj.name, outliers=model.outliers
    )
