"""Device registration, service side: measure or receive latencies, store them
with how they were taken, adapt the meta-learned latency predictor, and store
the adapted model as a new version with its quality.

The flow (``predictors.latency.registration`` does the ML):

* this machine: :func:`measure_local` measures the space's reference subnets
  (and a few extra ones for an honest quality figure) with the chosen backend,
  threads and batch;
* any other device: :func:`reference_package` writes the reference subnets as
  ONNX files plus a standalone runner; the user runs it there and hands the
  output to :func:`submit_latencies`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from service.db import Device
from service.domain import devices, predictor_records
from service.domain.devices import MeasurementIn
from service.domain.errors import ConflictError, DomainError
from service.domain.owners import LOCAL
from service.runtime import Runtime
from supernets.progress import ProgressCallback, ignore_progress, within

if TYPE_CHECKING:
    from predictors.latency import DeviceSpec

__all__ = [
    "Registered",
    "device_spec",
    "is_local",
    "local_device_name",
    "measure_local",
    "parse_latency_file",
    "reference_package",
    "reference_zip",
    "registration_hint",
    "space_with_predictor",
    "submit_latencies",
    "submit_latency_file",
    "verify_latency",
]

_KIND_OF_BACKEND = {
    "torch-cpu": "local-cpu",
    "onnxruntime-cpu": "local-onnxruntime",
    "torch-cuda": "local-cuda",
}


@dataclass(frozen=True)
class Registered:
    device: str
    space: str
    version: int
    quality: dict[str, float]
    n_measurements: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "space": self.space,
            "version": self.version,
            "quality": self.quality,
            "n_measurements": self.n_measurements,
        }


def space_with_predictor(space_name: str) -> Any:
    """The space, if a meta-learned latency predictor can be adapted for it:
    a shipped one, or (``predictors.latency.load_pretrained``) any registered
    OFA-MobileNetV3 space, e.g. ``ofa-mbv3-w1.2`` of an imported OFA w1.2
    network, whose prior is meta-trained from the bundled w1.0 latencies and
    then adapted to the device's own measurements of that space's subnets."""
    from predictors.latency import pretrained_spaces
    from supernets import OFAMobileNetV3Space, available_spaces, get_space

    if space_name in pretrained_spaces():
        return get_space(space_name)
    if space_name in available_spaces():
        space = get_space(space_name)
        if isinstance(space, OFAMobileNetV3Space):
            return space
    raise DomainError(
        f"no meta-learned latency predictor ships for space {space_name!r}; "
        f"available: {', '.join(pretrained_spaces())} and OFA-MobileNetV3 spaces"
    )


def registration_hint(device: Device, space_name: str) -> str:
    """What to run to give ``device`` a latency model for ``space_name``: only
    commands that work as written for that device and space."""
    from supernets import OFAMobileNetV3Space

    try:
        space = space_with_predictor(space_name)
    except DomainError as exc:
        return str(exc)
    name, buildable = device.name, isinstance(space, OFAMobileNetV3Space)
    if device.backend is not None and buildable:
        measure = (
            f"`hwnas device measure --space {space.name} --name {name} --backend "
            f"{device.backend} --threads {device.threads or 1} --batch {device.batch_size}`"
        )
        where = "" if is_local(device) else f" on its host {device.host}"
        return f"measure it{where}: {measure}"
    if buildable:
        return (
            f"`hwnas device references {name} --space {space.name} -o refs/`, run "
            "refs/measure.py on the device, then "
            f"`hwnas device submit {name} --space {space.name} -f latencies.jsonl`"
        )
    return (
        f"`hwnas device references {name} --space {space.name} -o refs/` lists the "
        f"reference architectures (refs/manifest.json); time each on the device with the "
        "space's own implementation, then submit one latency per reference, in order: "
        f"`hwnas device submit {name} --space {space.name} -f latencies.json` "
        '(a JSON object {"reference_ms": [...]})'
    )


def local_device_name(backend: str, threads: int, batch: int) -> str:
    """Default name of this machine with a backend: ``<host>-<backend>-t<threads>-b<batch>``."""
    from predictors.latency.measure import host_name

    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in host_name())
    return f"{host}-{backend}-t{threads}-b{batch}"


def _store(
    rt: Runtime,
    device_name: str,
    space: Any,
    references: Sequence[tuple[dict[str, Any], float, dict[str, Any]]],
    extra: Sequence[tuple[dict[str, Any], float, dict[str, Any]]],
    method: str,
) -> Registered:
    """Store every measurement, adapt, and store the adapted model (one transaction)."""
    from predictors.latency import adapt_device

    adaptation = adapt_device(
        space,
        [ms for _, ms, _ in references],
        extra=[(arch, ms) for arch, ms, _ in extra],
        device=device_name,
        # Extras measured here are real data too: the stored model uses them,
        # while the quality reported is that of the references-only model on
        # them (a conservative figure).
        refit_with_extra=True,
    )
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        rows = [
            MeasurementIn(
                space_name=space.name,
                arch=arch,
                arch_hash=space.arch_hash(space.validate(arch)),
                latency_ms=float(ms),
                method=method,
                spread_ms=details.get("iqr_ms"),
                details=details,
                is_reference=is_ref,
            )
            for group, is_ref in ((references, True), (extra, False))
            for arch, ms, details in group
        ]
        devices.add_measurements(s, device, rows)
        stored = predictor_records.store_predictor(
            s,
            kind="latency",
            space_name=space.name,
            blob=adaptation.model.to_bytes(),
            metrics={**adaptation.quality, "outliers": list(adaptation.outliers)},
            n_train=len(references),
            device_id=device.id,
        )
        return Registered(
            device.name, space.name, stored.version, dict(adaptation.quality), len(rows)
        )


def measure_local(
    rt: Runtime,
    space_name: str,
    *,
    backend: str = "torch-cpu",
    threads: int = 1,
    batch: int = 1,
    name: str | None = None,
    n_extra: int = 10,
    repeats: int = 30,
    seed: int = 0,
    description: str = "",
    owner: str = LOCAL,
    on_progress: ProgressCallback = ignore_progress,
) -> Registered:
    """Register this machine (with ``backend``/``threads``/``batch``) for
    ``space_name``: measure the reference subnets and ``n_extra`` random ones for
    real, adapt the latency predictor, store everything. ``on_progress``
    (``supernets.progress``) hears the measurement's units
    (:func:`predictors.latency.measure_archs`) and one more for adapting and
    storing the model."""
    import numpy as np

    from predictors.latency import DeviceSpec, measure_archs, reference_archs
    from predictors.latency.measure import host_name

    space = space_with_predictor(space_name)
    spec = DeviceSpec(backend=backend, threads=threads, batch=batch)
    device_name = name or local_device_name(backend, threads, batch)
    with rt.session() as s:
        existing = s.scalar(select(Device).where(Device.name == device_name))
        if existing is None:
            devices.create_device(
                s,
                device_name,
                kind=_KIND_OF_BACKEND.get(backend, "local-cpu"),
                description=description or f"{spec.name} (measured by hwnas)",
                host=host_name(),
                backend=backend,
                threads=threads,
                batch_size=batch,
                properties={"device_spec": spec.to_dict()},
                owner=owner,
            )
        elif existing.owner != owner or existing.bundled:
            raise ConflictError(f"device {device_name!r} already exists; give another name")
        elif existing.backend is None:
            raise DomainError(
                f"device {device_name!r} is a {existing.kind} device, whose latencies are "
                "submitted (`hwnas device references` / `hwnas device submit`); to measure "
                "this machine, give it another name (--name)"
            )
        elif (
            existing.backend != backend
            or existing.threads != threads
            or existing.batch_size != batch
        ):
            raise DomainError(
                f"device {device_name!r} is {existing.backend}/t{existing.threads}/b{existing.batch_size}; "
                "a different backend, thread count or batch is a different device: give another name"
            )
    refs = reference_archs(space)
    rng = np.random.default_rng(seed)
    extras = [space.sample(rng).to_dict() for _ in range(n_extra)]
    measured = measure_archs(
        space, [*refs, *extras], spec, repeats=repeats, on_progress=within(on_progress, 0, 1)
    )
    rows = [
        (arch, m.median_ms, m.to_dict(samples=False))
        for arch, m in zip([*refs, *extras], measured, strict=True)
    ]
    total = len(rows) * (1 + min(5, repeats)) + 1  # measure_archs' units, then this step
    on_progress(total - 1, total, "adapting the latency model")
    registered = _store(rt, device_name, space, rows[: len(refs)], rows[len(refs) :], backend)
    on_progress(total, total, f"latency model v{registered.version} stored")
    return registered


def reference_package(
    rt: Runtime,
    device_name: str,
    space_name: str,
    out_dir: Path,
    *,
    batch: int | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, Any]:
    """Write the reference subnets of ``space_name`` as ONNX files, a manifest and
    a standalone ``measure.py`` for ``device_name`` to run: the files of
    :func:`reference_zip` (built once, then copied from its cache)."""
    import zipfile

    from predictors.latency import reference_archs, reference_set
    from supernets import OFAMobileNetV3Space

    space = space_with_predictor(space_name)
    with rt.read_session() as s:
        batch = batch or devices.get_device(s, device_name).batch_size
    if not isinstance(space, OFAMobileNetV3Space):
        # No network builder (a tabular space such as nb201): the device times
        # the architectures with the space's own implementation.
        refs = reference_archs(space)
        submit = f"hwnas device submit {device_name} --space {space.name} -f latencies.json"
        manifest = {
            "space": space.name,
            "reference_set": reference_set(space),
            "references": [
                {"index": i, "arch": arch, "arch_str": str(space.validate(arch))}
                for i, arch in enumerate(refs)
            ],
            "how_to_measure": (
                "time each reference architecture on the device with the space's own "
                'implementation; write {"reference_ms": [one latency per reference, in order]}'
            ),
            "then": submit,
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        on_progress(1, 1, f"listed {len(refs)} reference architectures")
        return {
            "device": device_name,
            "space": space.name,
            "out_dir": str(out_dir),
            "files": [],
            "references": refs,
            "next": f"{manifest['how_to_measure']} to latencies.json; then: {submit}",
        }
    package = reference_zip(rt, device_name, space.name, batch, on_progress=on_progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(package) as zf:
        zf.extractall(out_dir)
        files = sorted(n for n in zf.namelist() if n.startswith("ref_") and n.endswith(".onnx"))
    return {
        "device": device_name,
        "space": space.name,
        "out_dir": str(out_dir),
        "files": files,
        "references": reference_archs(space),
        "next": (
            f"on the device: python measure.py ref_*.onnx --threads N > latencies.jsonl; "
            f"then: hwnas device submit {device_name} --space {space.name} --file latencies.jsonl"
        ),
    }


def reference_zip(
    rt: Runtime,
    device_name: str,
    space_name: str,
    batch: int | None = None,
    *,
    on_progress: ProgressCallback = ignore_progress,
) -> Path:
    """The reference package for ``device_name`` as a zip file, built once per
    (space, batch, reference set, exporter) and kept under
    ``<home>/artifacts/references``: building it exports one ONNX file per
    reference (:func:`predictors.latency.export_reference_onnx`, the exporter
    of deployed subnets, seconds of CPU each), and its content does not depend
    on the device beyond the batch size. ``on_progress`` hears one unit per
    reference model exported (one unit in all when the package is cached)."""
    import hashlib
    import os
    import tempfile
    import zipfile

    import torch

    from predictors.latency import export_reference_onnx, reference_archs
    from supernets.export import ONNX_EXPORTER

    space = space_with_predictor(space_name)
    with rt.read_session() as s:
        batch = batch or devices.get_device(s, device_name).batch_size
    key = {
        "references": reference_archs(space),
        # Another exporter or torch writes other graphs: a package built by
        # them is not the one deployed subnets are now exported like.
        "exporter": ONNX_EXPORTER,
        "torch": str(torch.__version__),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cache = rt.settings.artifacts_dir / "references"
    target = cache / f"{space.name}-b{batch}-{digest}.zip"
    if target.is_file():
        on_progress(1, 1, f"reference package cached at {target}")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        files = Path(tmp) / "package"
        export_reference_onnx(space, files, batch=batch, on_progress=on_progress)
        partial = Path(tmp) / "package.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(files.iterdir()):
                if f.is_file():
                    zf.write(f, f.name)
        # Atomic: a concurrent request sees no file or a whole one.
        os.replace(partial, target)
    return target


def parse_latency_file(
    text: str,
    n_references: int,
    *,
    space: str | None = None,
    reference_set: str | None = None,
    prefix: str = "ref",
) -> tuple[list[float], list[tuple[dict[str, Any], float]], list[dict[str, Any]]]:
    """Read submitted latencies (the one reader of measured-latency files: the
    reference packages' and the search verification packages').

    Accepts measurement records (``predictors.latency.records``: what the
    package's ``measure.py`` prints; checked against ``space`` and
    ``reference_set`` when given; a verification package's reference set is
    ``job-<id>``), the JSON lines of older ``measure.py`` copies (one per
    ``<prefix>_NN.onnx``; ``median_ms`` is used), or, for references only, a JSON
    object ``{"reference_ms": [...], "extra": [{"arch": {...}, "ms": ...}]}``.
    Returns latencies in file-index order, extra pairs and per-file details.
    """
    text = text.strip()
    if not text:
        raise DomainError("the latency file is empty")
    if '"hwnas-latency-measurement"' in text.splitlines()[0]:
        from predictors.latency.records import read_records, split_records

        try:
            recs = read_records(text, space=space, reference_set=reference_set)
            ref_ms, extras = split_records(recs, n_references)
        except ValueError as exc:
            raise DomainError(str(exc)) from None
        details = {r.ref: r.details for r in recs if r.ref is not None}
        return ref_ms, extras, [details.get(i, {}) for i in range(n_references)]
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # JSON lines, or garbage: decided line by line below
    if isinstance(whole, dict) and "file" not in whole:
        if prefix != "ref":
            raise DomainError(
                f"give the JSON lines that measure.py printed for the {prefix}_NN.onnx files"
            )
        refs = whole.get("reference_ms")
        if not isinstance(refs, list):
            raise DomainError(
                "latency JSON needs a 'reference_ms' list (one latency per reference arch)"
            )
        extra = []
        for i, item in enumerate(whole.get("extra", [])):
            if not isinstance(item, dict) or "arch" not in item or "ms" not in item:
                raise DomainError(f"extra[{i}] must be an object with 'arch' and 'ms'")
            extra.append((item["arch"], float(item["ms"])))
        return [float(v) for v in refs], extra, [{} for _ in refs]
    records: dict[int, dict[str, Any]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DomainError(f"line {line_no} of the latency file is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise DomainError(f"line {line_no} of the latency file is not a JSON object")
        name = str(record.get("file", ""))
        head, index = f"{prefix}_", name[len(prefix) + 1 : -5]
        if not (name.startswith(head) and name.endswith(".onnx") and index.isdigit()):
            raise DomainError(f"line {line_no}: 'file' must be {prefix}_NN.onnx, got {name!r}")
        if "median_ms" not in record:
            raise DomainError(f"line {line_no}: no 'median_ms'")
        records[int(index)] = record
    what = "reference" if prefix == "ref" else "candidate"
    unknown = sorted(set(records) - set(range(n_references)))
    if unknown:
        raise DomainError(
            f"latencies for {what}(s) {unknown} that the package does not have "
            f"(it has {n_references}, numbered from 0)"
        )
    missing = sorted(set(range(n_references)) - set(records))
    if missing:
        raise DomainError(f"latencies missing for {what}(s) {missing}; expected {n_references}")
    ordered = [records[i] for i in range(n_references)]
    return [float(r["median_ms"]) for r in ordered], [], ordered


def submit_latencies(
    rt: Runtime,
    device_name: str,
    space_name: str,
    reference_ms: Sequence[float],
    *,
    extra: Sequence[tuple[dict[str, Any], float]] = (),
    details: Sequence[dict[str, Any]] | None = None,
) -> Registered:
    """Adapt ``device_name``'s latency model from latencies measured elsewhere."""
    from predictors.latency import reference_archs

    space = space_with_predictor(space_name)
    refs = reference_archs(space)
    if len(reference_ms) != len(refs):
        raise DomainError(
            f"wrong number of reference latencies: got {len(reference_ms)}, "
            f"space {space.name!r} has {len(refs)} reference architectures"
        )
    with rt.session() as s:
        devices.get_device(s, device_name)
    info = list(details) if details is not None else [{} for _ in refs]
    references = [
        (arch, float(ms), d) for arch, ms, d in zip(refs, reference_ms, info, strict=True)
    ]
    extras: list[tuple[dict[str, Any], float, dict[str, Any]]] = [
        (space.validate(arch).to_dict(), float(ms), {}) for arch, ms in extra
    ]
    return _store(rt, device_name, space, references, extras, "submitted")


def is_local(device: Device) -> bool:
    """True when ``device`` is this machine (measured by hwnas, same host)."""
    from predictors.latency.measure import host_name

    return (
        device.kind.startswith("local-")
        and device.host == host_name()
        and device.backend is not None
    )


def device_spec(device: Device) -> DeviceSpec:
    """How a local device is measured: the DeviceSpec stored when it was
    registered (``hwnas device measure``), else its backend, threads and batch."""
    from predictors.latency import DeviceSpec

    if device.backend is None:
        raise DomainError(f"device {device.name!r} has no backend: it is not measured by hwnas")
    stored = dict(device.properties.get("device_spec") or {})
    return DeviceSpec(
        backend=str(stored.get("backend", device.backend)),
        threads=int(stored.get("threads", device.threads or 1)),
        batch=int(stored.get("batch", device.batch_size)),
        host=str(stored.get("host") or device.host or ""),
    )


def verify_latency(
    rt: Runtime, device_name: str, space: Any, archs: Sequence[Any], *, repeats: int = 30
) -> list[dict[str, Any]]:
    """Measure ``archs`` for real on ``device_name`` if it is this machine, and
    store the measurements (they then take precedence over predictions in every
    answer). Returns ``[{arch_hash, measured_ms}]``; empty for other devices."""
    from predictors.latency import measure_archs

    with rt.session() as s:
        device = devices.get_device(s, device_name)
        if not is_local(device) or not archs:
            return []
        spec = device_spec(device)
    archs = [space.validate(a) for a in archs]
    measured = measure_archs(space, archs, spec, repeats=repeats)
    out = []
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        rows = []
        for arch, m in zip(archs, measured, strict=True):
            arch_hash = space.arch_hash(arch)
            rows.append(
                MeasurementIn(
                    space_name=space.name,
                    arch=arch.to_dict(),
                    arch_hash=arch_hash,
                    latency_ms=m.median_ms,
                    method=spec.backend,
                    spread_ms=m.iqr_ms,
                    details=m.to_dict(samples=False),
                )
            )
            out.append({"arch_hash": arch_hash, "measured_ms": m.median_ms})
        devices.add_measurements(s, device, rows)
    return out


def submit_latency_file(rt: Runtime, device_name: str, space_name: str, text: str) -> Registered:
    """Store a latency file as ``measure.py`` prints it (or an older accepted
    form, see :func:`parse_latency_file`), checked against the space and its
    reference set, and adapt the device's model: what ``hwnas device submit``
    and ``POST /v1/devices/{name}/records`` do with the same bytes."""
    from predictors.latency import reference_archs, reference_set

    space = space_with_predictor(space_name)
    refs, extra, details = parse_latency_file(
        text,
        len(reference_archs(space)),
        space=space.name,
        reference_set=reference_set(space),
    )
    return submit_latencies(rt, device_name, space.name, refs, extra=extra, details=details)
