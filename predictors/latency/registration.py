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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from predictors.latency._checks import check_latencies
from predictors.latency.measure import DeviceSpec, LatencyMeasurement, measure_many
from predictors.latency.meta import (
    UPPER_Z,
    DeviceLatencyPredictor,
    MetaLatencyPredictor,
    latency_quality,
)
from predictors.latency.pretrained import load_pretrained
from predictors.latency.records import reference_set_id
from supernets.progress import ProgressCallback, ignore_progress
from supernets.spaces import OFAMobileNetV3Space, SearchSpace, get_space

__all__ = [
    "DeviceAdaptation",
    "adapt_device",
    "build_networks",
    "export_reference_onnx",
    "export_round_onnx",
    "measure_archs",
    "propose_measurements",
    "readapt_device",
    "reference_archs",
    "reference_set",
    "uncertainty_level",
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


def reference_set(
    space: str | SearchSpace[Any], predictor: MetaLatencyPredictor | None = None
) -> str:
    """The id of ``space``'s reference architectures (what measurement records
    carry as ``reference_set``; changes whenever the references do)."""
    return reference_set_id(reference_archs(space, predictor))


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
    on_progress: ProgressCallback = ignore_progress,
) -> list[LatencyMeasurement]:
    """Measure each architecture of ``space`` on this machine (``device`` gives
    backend, threads and batch); one record per architecture, in order. The
    repeats are split into ``rounds`` interleaved over the architectures (see
    :func:`measure_many`), so that load from other processes does not skew a few.
    ``on_progress`` (:mod:`supernets.progress`) hears :func:`measure_many`'s
    units: ``len(archs) * (1 + rounds)``."""
    space_obj = get_space(space) if isinstance(space, str) else space
    nets = build_networks(space_obj, archs, n_classes=n_classes)
    return measure_many(
        nets,
        device,
        warmup=warmup,
        repeats=repeats,
        rounds=min(rounds, repeats),
        on_progress=on_progress,
    )


def export_reference_onnx(
    space: str | SearchSpace[Any],
    out_dir: str | Path,
    *,
    predictor: MetaLatencyPredictor | None = None,
    n_classes: int | None = None,
    batch: int = 1,
    on_progress: ProgressCallback = ignore_progress,
) -> list[Path]:
    """Write the reference architectures as ONNX files a remote device can run.

    ``out_dir`` gets ``ref_00.onnx`` ..., exported exactly as deployed subnets
    are (:func:`supernets.export.export_onnx`: same exporter, opset, input
    ``(batch, 3, r, r)`` with a dynamic batch, metadata), so the device times
    the graph it will run; ``manifest.json`` (space, reference set, configs,
    file names, order, and ``batch``, the size ``measure.py`` feeds) and
    ``measure.py`` (with ``hwnas_records.py``), a standalone runner that needs
    only numpy and onnxruntime and prints measurement records
    (:mod:`predictors.latency.records`):
    ``python measure.py ref_*.onnx --threads 1 > latencies.jsonl``.
    Returns the ONNX paths in reference order. ``on_progress``
    (:mod:`supernets.progress`) hears one unit per reference model exported.
    """
    space_obj, meta = _resolve(space, predictor)
    configs = reference_archs(space_obj, meta)
    return _write_package(
        space_obj, configs, Path(out_dir), prefix="ref", reference_set=reference_set_id(configs),
        n_classes=n_classes, batch=batch, manifest={}, on_progress=on_progress,
    )  # fmt: skip


def export_round_onnx(
    space: str | SearchSpace[Any],
    archs: Sequence[Any],
    out_dir: str | Path,
    *,
    round_no: int,
    predictor: MetaLatencyPredictor | None = None,
    n_classes: int | None = None,
    batch: int = 1,
    manifest: Mapping[str, Any] | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> list[Path]:
    """Write an active-registration round (``archs``, e.g. from
    :func:`propose_measurements`) as a package like the reference one:
    ``round<K>_00.onnx`` ..., ``manifest.json`` (with ``"round": K`` and each
    file's config) and the standalone ``measure.py``, whose records then name
    each architecture by its config (``arch``) under the space's current
    reference set. ``manifest`` adds free fields (the device, its uncertainty).
    Returns the ONNX paths in order."""
    if round_no < 1:
        raise ValueError(f"round must be >= 1, got {round_no}")
    space_obj, meta = _resolve(space, predictor)
    configs = [space_obj.validate(a).to_dict() for a in archs]
    if not configs:
        raise ValueError("an active round needs at least one architecture")
    return _write_package(
        space_obj, configs, Path(out_dir), prefix=f"round{round_no}",
        reference_set=reference_set(space_obj, meta), n_classes=n_classes, batch=batch,
        manifest={**dict(manifest or {}), "round": round_no}, on_progress=on_progress,
    )  # fmt: skip


def _write_package(
    space: SearchSpace[Any],
    configs: Sequence[dict[str, Any]],
    out: Path,
    *,
    prefix: str,
    reference_set: str,
    n_classes: int | None,
    batch: int,
    manifest: Mapping[str, Any],
    on_progress: ProgressCallback = ignore_progress,
) -> list[Path]:
    """ONNX files ``<prefix>_NN.onnx`` of ``configs``, ``manifest.json`` and the
    standalone runner: what a device without hwnas measures."""
    from predictors.latency import measure as measure_module
    from predictors.latency import records as records_module
    from supernets.export import ONNX_EXPORTER, export_onnx

    out.mkdir(parents=True, exist_ok=True)
    nets = build_networks(space, configs, n_classes=n_classes)
    paths = []
    for i, (net, _) in enumerate(nets):
        name = f"{prefix}_{i:02d}.onnx"
        on_progress(i, len(nets), f"exporting {prefix} model {name}")
        paths.append(export_onnx(net, out / name))
    on_progress(len(nets), len(nets), f"exported {len(nets)} models")
    body = {
        "space": space.name,
        "reference_set": reference_set,
        "space_config": space.config(),
        "batch": batch,
        "exporter": ONNX_EXPORTER,
        "n_classes": n_classes or default_n_classes(space),
        **manifest,
        "references": [
            {"index": i, "file": p.name, "arch": c}
            for i, (p, c) in enumerate(zip(paths, configs, strict=True))
        ],
        "how_to_measure": (
            f"python measure.py {prefix}_*.onnx --threads N --batch B > latencies.jsonl"
        ),
    }
    (out / "manifest.json").write_text(json.dumps(body, indent=2) + "\n")
    shutil.copyfile(measure_module.__file__, out / "measure.py")
    # measure.py writes measurement records with this module (standard library only)
    shutil.copyfile(records_module.__file__, out / "hwnas_records.py")
    return paths


@dataclass(frozen=True)
class DeviceAdaptation:
    """An adapted device model and how good it is.

    ``quality`` is measured on the *extra* measurements only (architectures
    beyond the references, never seen by the model): the metrics of
    :func:`~predictors.latency.meta.latency_quality` (``spearman_rho``,
    ``within_10pct``, ``mape``, ...; rank metrics need >= 2 extras), plus
    ``n_references``, ``n_measured`` (further measurements it learnt from),
    ``n_extra``, ``n_active`` and ``reference_mape`` (fit on the references;
    :func:`readapt_device` reports ``fit_mape`` over all it learnt from instead
    of the reference figures). ``active`` holds the architectures active registration
    chose and their measured latencies, ``uncertainty`` the model's mean
    relative posterior sd over its candidate pool (before the widening by the
    device's residual scale: what the stopping rule reads) after the
    references and after each active measurement, and ``stopped`` why it
    stopped.
    """

    model: DeviceLatencyPredictor
    quality: dict[str, float]
    space: str
    outliers: tuple[int, ...] = field(default_factory=tuple)
    active: tuple[tuple[dict[str, Any], float], ...] = ()
    uncertainty: tuple[float, ...] = ()
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "space": self.space,
            "quality": dict(self.quality),
            "outliers": list(self.outliers),
        }
        if self.active or self.stopped:
            out["active"] = [{"arch": a, "ms": ms} for a, ms in self.active]
            out["uncertainty"] = list(self.uncertainty)
            out["stopped"] = self.stopped
        return out


def _relative_sd(model: DeviceLatencyPredictor, X: np.ndarray) -> np.ndarray:
    mean, std = model.predict_with_uncertainty(X)
    return std / np.maximum(mean, 1e-12)


def _posterior_relative_sd(model: DeviceLatencyPredictor, X: np.ndarray) -> np.ndarray:
    """Relative sd from the posterior alone, before the widening by the device's
    own residual scale (``cov_scale``). A measurement can show that a device is
    less like the prior than thought, which widens every bound at once; what
    active registration asks is whether measurements still teach the model
    something, which the posterior alone says. The ranking of candidates is
    the same either way (the widening is one factor for all)."""
    assert model.posterior_cov is not None
    s = max(model.cov_scale, 1e-12)
    bare = DeviceLatencyPredictor(
        space=model.space,
        intercept=model.intercept,
        coef=model.coef,
        scale=model.scale,
        floor=model.floor,
        n_measurements=model.n_measurements,
        posterior_cov=model.posterior_cov / s,
        noise=model.noise / s,
        calibration=model.calibration,
    )
    return _relative_sd(bare, X)


def _candidate_pool(
    space: SearchSpace[Any], n: int, seed: int, exclude: set[str]
) -> list[dict[str, Any]]:
    """Up to ``n`` distinct random architectures of ``space`` (canonical configs),
    none of whose hashes is in ``exclude``."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    seen = set(exclude)
    for _ in range(20 * n):  # bounded: a small space runs out of new architectures
        if len(out) >= n:
            break
        arch = space.canonical(space.sample(rng))
        h = space.arch_hash(arch)
        if h not in seen:
            seen.add(h)
            out.append(arch.to_dict())
    return out


def propose_measurements(
    model: DeviceLatencyPredictor,
    space: str | SearchSpace[Any],
    k: int,
    *,
    measured: Sequence[Any] = (),
    n_candidates: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The next ``k`` architectures a device should measure (a batch, for a
    remote device that measures offline): greedily the candidate with the
    largest relative predictive sd, each pick then counted as measured (the
    posterior covariance of a linear-Gaussian model shrinks by a rank-one
    step without needing the latency), so a batch does not ask for the same
    information twice. ``measured`` (configs) are never proposed again."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if model.posterior_cov is None:
        raise ValueError("the device model carries no uncertainty: adapt it again first")
    space_obj = get_space(space) if isinstance(space, str) else space
    exclude = {space_obj.arch_hash(space_obj.validate(a)) for a in measured}
    pool = _candidate_pool(space_obj, n_candidates, seed, exclude)
    if not pool:
        raise ValueError("no unmeasured architectures left to propose")
    X = space_obj.encode_many([space_obj.validate(a) for a in pool]).astype(np.float64)
    Xa = np.hstack([np.ones((X.shape[0], 1)), X])
    S = model.posterior_cov.copy()
    noise = max(model.noise, 1e-12)
    f = model.intercept + X @ model.coef
    level = np.abs(f) if model.space == "lin" else np.ones_like(f)
    chosen: list[int] = []
    for _ in range(min(k, len(pool))):
        var = np.einsum("ij,jk,ik->i", Xa, S, Xa)
        score = var / np.maximum(level, 1e-12) ** 2
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        v = S @ Xa[j]
        S -= np.outer(v, v) / (noise + float(Xa[j] @ v))
    return [pool[j] for j in chosen]


def uncertainty_level(
    model: DeviceLatencyPredictor,
    space: str | SearchSpace[Any],
    *,
    n_candidates: int = 2000,
    seed: int = 0,
) -> float:
    """How unsure ``model`` is about ``space``: its mean relative predictive sd
    (``std / mean``) over ``n_candidates`` random architectures (the same ones
    for a given ``seed``, so that two models of a device compare)."""
    if model.posterior_cov is None:
        raise ValueError("the device model carries no uncertainty: adapt it again first")
    space_obj = get_space(space) if isinstance(space, str) else space
    pool = _candidate_pool(space_obj, n_candidates, seed, set())
    X = space_obj.encode_many([space_obj.validate(a) for a in pool]).astype(np.float64)
    return float(_relative_sd(model, X).mean())


def _pairs(
    space: SearchSpace[Any],
    items: Sequence[tuple[Any, float]] | Mapping[str, float] | None,
    name: str,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``(canonical configs, latencies)`` of ``(config, ms)`` pairs, checked."""
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items or [])
    if not pairs:
        return [], np.zeros(0)
    configs = [space.validate(a).to_dict() for a, _ in pairs]
    return configs, check_latencies([ms for _, ms in pairs], name=name)


def adapt_device(
    space: str | SearchSpace[Any],
    reference_latencies_ms: Sequence[float] | np.ndarray,
    *,
    measured: Sequence[tuple[Any, float]] = (),
    extra: Sequence[tuple[Any, float]] | Mapping[str, float] | None = None,
    predictor: MetaLatencyPredictor | None = None,
    device: str | None = None,
    refit_with_extra: bool = False,
    measure: Callable[[dict[str, Any]], float] | None = None,
    max_extra: int = 0,
    min_gain: float = 0.02,
    patience: int = 2,
    n_candidates: int = 2000,
    seed: int = 0,
) -> DeviceAdaptation:
    """Adapt the (shipped) predictor of ``space`` to a device.

    ``reference_latencies_ms`` holds one latency per reference architecture, in
    the order of :func:`reference_archs`; ``measured`` further ``(arch config,
    ms)`` pairs the model learns from too (earlier active rounds, say).
    ``extra`` holds further measurements as ``(arch config, ms)`` pairs (or
    ``{arch string: ms}``): a random held-out sample, on which the quality is
    measured with a model that never saw them. With ``refit_with_extra`` the
    returned model is then adapted from everything measured *including* the
    extras (better: more measurements), and ``quality`` -- recorded with
    ``"refit_with_extra": 1.0`` -- is that of the model before, a conservative
    estimate.

    Active registration: with ``measure`` (``config -> ms`` on the device) and
    ``max_extra`` > 0, the model asks for up to ``max_extra`` further
    measurements, each time of the candidate architecture (``n_candidates``
    random ones) whose latency it is least sure of (largest relative
    predictive sd), re-adapting after each; it stops early once ``patience``
    measurements in a row have lowered the (lowest so far) mean relative
    posterior sd over the candidates -- before the widening by the device's
    own residual scale, which says how unlike the prior the device is, not
    whether measuring more still teaches the model -- by less than
    ``min_gain`` (relative). These
    measurements train the model; the ``extra`` ones stay held out.
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
    more, y_more = _pairs(space_obj, measured, "measured latencies")
    return _adapt(
        space_obj,
        meta,
        [*configs, *more],
        np.r_[y_ref, y_more],
        quality={"n_references": float(len(configs)), "n_measured": float(len(more))},
        fitted_name="reference_mape",
        fitted_rows=len(configs),
        reference_configs=configs,
        extra=extra,
        device=device,
        refit_with_extra=refit_with_extra,
        measure=measure,
        max_extra=max_extra,
        min_gain=min_gain,
        patience=patience,
        n_candidates=n_candidates,
        seed=seed,
    )


def readapt_device(
    space: str | SearchSpace[Any],
    measured: Sequence[tuple[Any, float]],
    *,
    references: Sequence[Any] | None = None,
    extra: Sequence[tuple[Any, float]] | Mapping[str, float] | None = None,
    predictor: MetaLatencyPredictor | None = None,
    device: str | None = None,
    refit_with_extra: bool = False,
) -> DeviceAdaptation:
    """Adapt the predictor of ``space`` to a device from whatever it measured:
    ``(arch config, ms)`` pairs of any architectures (a stored device's
    measurements, re-adapted for a new predictor or payload version).

    Unlike :func:`adapt_device` it needs no latency per *current* reference
    architecture, so a device measured with an older reference set (an older
    hwnas shipped other references) keeps working. Several measurements of one
    architecture count once, at their median. ``references`` (configs, in the
    order they were measured) names the reference set the device used, which
    the model's metadata records; default: the predictor's current one.
    ``extra`` / ``refit_with_extra`` as in :func:`adapt_device`.
    """
    space_obj, meta = _resolve(space, predictor)
    configs, y = _pairs(space_obj, measured, "measured latencies")
    if not configs:
        raise ValueError("no measurements to adapt from")
    by_hash: dict[str, tuple[dict[str, Any], list[float]]] = {}
    for config, ms in zip(configs, y, strict=True):
        h = space_obj.arch_hash(space_obj.validate(config))
        by_hash.setdefault(h, (config, []))[1].append(float(ms))
    unique = [c for c, _ in by_hash.values()]
    y_unique = np.array([float(np.median(v)) for _, v in by_hash.values()])
    refs = (
        [space_obj.validate(c).to_dict() for c in references]
        if references
        else reference_archs(space_obj, meta)
    )
    return _adapt(
        space_obj,
        meta,
        unique,
        y_unique,
        quality={"n_measured": float(len(unique))},
        fitted_name="fit_mape",
        fitted_rows=len(unique),
        reference_configs=refs,
        extra=extra,
        device=device,
        refit_with_extra=refit_with_extra,
        measure=None,
        max_extra=0,
        min_gain=0.02,
        patience=2,
        n_candidates=2000,
        seed=0,
    )


def _adapt(
    space_obj: SearchSpace[Any],
    meta: MetaLatencyPredictor,
    configs: list[dict[str, Any]],
    y_fit: np.ndarray,
    *,
    quality: dict[str, float],
    fitted_name: str,
    fitted_rows: int,
    reference_configs: list[dict[str, Any]],
    extra: Sequence[tuple[Any, float]] | Mapping[str, float] | None,
    device: str | None,
    refit_with_extra: bool,
    measure: Callable[[dict[str, Any]], float] | None,
    max_extra: int,
    min_gain: float,
    patience: int,
    n_candidates: int,
    seed: int,
) -> DeviceAdaptation:
    """The adaptation both entry points share: fit on ``configs``/``y_fit``,
    optionally ask ``measure`` for more, score on the held-out ``extra``."""
    if max_extra < 0:
        raise ValueError(f"max_extra must be >= 0, got {max_extra}")
    if max_extra > 0 and measure is None:
        raise ValueError("max_extra > 0 needs measure=callable(config) -> ms")
    if not 0 <= min_gain < 1:
        raise ValueError(f"min_gain must be in [0, 1), got {min_gain}")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    X_fit = space_obj.encode_many([space_obj.validate(c) for c in configs]).astype(np.float64)
    model = meta.adapt(X_fit, y_fit, device=device)
    head = slice(0, fitted_rows)
    fitted = model.predict(X_fit[head])
    quality = {**quality, fitted_name: float(np.mean(np.abs(fitted - y_fit[head]) / y_fit[head]))}
    extra_configs, y_extra = _pairs(space_obj, extra, "extra latencies")
    X_extra = np.zeros((0, X_fit.shape[1]))
    if extra_configs:
        X_extra = space_obj.encode_many([space_obj.validate(a) for a in extra_configs])

    # -- active registration: measure where the model is least sure --------------
    active: list[tuple[dict[str, Any], float]] = []
    trace: list[float] = []
    stopped: str | None = None
    if max_extra > 0 and measure is not None:
        taken = {space_obj.arch_hash(space_obj.validate(c)) for c in [*configs, *extra_configs]}
        pool = _candidate_pool(space_obj, n_candidates, seed, taken)
        X_pool = space_obj.encode_many([space_obj.validate(a) for a in pool]).astype(np.float64)
        left = np.ones(len(pool), dtype=bool)
        rel = _posterior_relative_sd(model, X_pool)
        trace.append(float(rel.mean()))
        stopped = "max_extra reached"
        for _ in range(max_extra):
            if not left.any():
                stopped = "no candidates left"
                break
            j = int(np.argmax(np.where(left, rel, -np.inf)))
            left[j] = False
            ms = check_latencies([measure(dict(pool[j]))], name=f"measure({pool[j]})")[0]
            active.append((pool[j], float(ms)))
            X_fit, y_fit = np.vstack([X_fit, X_pool[j]]), np.r_[y_fit, ms]
            model = meta.adapt(X_fit, y_fit, device=device)
            rel = _posterior_relative_sd(model, X_pool)
            trace.append(float(rel.mean()))
            # One measurement may *raise* the uncertainty (the per-device
            # shared-cost scale changed); stop only after ``patience``
            # measurements in a row brought the lowest level down by < min_gain.
            if len(trace) > patience:
                before = min(trace[:-patience])
                if before - min(trace[-patience:]) < min_gain * before:
                    stopped = "uncertainty stopped falling"
                    break
    quality["n_active"] = float(len(active))

    quality["n_extra"] = float(len(extra_configs))
    if extra_configs:
        pred = model.predict(X_extra)
        if len(extra_configs) >= 2:
            quality.update(latency_quality(y_extra, pred))
        else:
            quality["within_10pct"] = float(abs(pred[0] - y_extra[0]) <= 0.1 * y_extra[0])
            quality["mape"] = float(abs(pred[0] - y_extra[0]) / y_extra[0])
        mean, std = model.predict_with_uncertainty(X_extra)
        quality["within_upper_90"] = float(np.mean(y_extra <= mean + UPPER_Z * std))
    if refit_with_extra and extra_configs:
        model = meta.adapt(np.vstack([X_fit, X_extra]), np.r_[y_fit, y_extra], device=device)
        quality["refit_with_extra"] = 1.0
    model.metadata.update(
        {
            "space": space_obj.name,
            "quality": quality,
            "reference_archs": reference_configs,
            "reference_set": reference_set_id(reference_configs),
            "active_archs": [a for a, _ in active],
        }
    )
    return DeviceAdaptation(
        model=model,
        quality=quality,
        space=space_obj.name,
        outliers=model.outliers,
        active=tuple(active),
        uncertainty=tuple(trace),
        stopped=stopped,
    )
