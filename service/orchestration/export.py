"""Choose a stored subnet (by arch, trial or best-under-budget) and export it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.domain import subnets, supernet_records
from service.domain.errors import DomainError
from service.domain.owners import Scope
from service.orchestration.evaluation import load_trained
from service.runtime import Runtime
from supernets.progress import ProgressCallback, ignore_progress, within

__all__ = ["choose_subnet", "export_dir", "export_subnet", "export_zip"]


def export_subnet(
    rt: Runtime,
    name: str,
    arch: Any,
    out_dir: Path,
    *,
    formats: Sequence[str] = ("state_dict", "torchscript", "onnx"),
    n_bn_images: int = 2000,
    provenance: dict[str, Any] | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, str]:
    """Export ``arch`` of supernet ``name`` (BN recalibrated on its training data)
    and write ``hwnas-export.json`` describing where it came from.
    ``on_progress`` (``supernets.progress``) hears one unit for loading the
    supernet and its data, then :func:`supernets.export.export_subnet`'s
    stages (extraction with BN recalibration, then each format)."""
    from supernets.export import export_subnet as _export

    with rt.read_session() as s:
        row = supernet_records.get_supernet(s, name)
        # 1 + the library's stages, known before they start
        on_progress(0, 2 + len(set(formats)), f"loading supernet {name} and its data")
        space, net, dataset = load_trained(row)
    arch = space.validate(arch)
    paths = _export(
        net,
        arch,
        out_dir,
        dataset=dataset,
        n_calibration=n_bn_images,
        formats=formats,
        on_progress=within(on_progress, 1),
    )
    manifest = {
        "supernet": name,
        "space": space.name,
        "arch": arch.to_dict(),
        "input_shape": [1, 3, arch.r, arch.r],
        # Without images (an OFA import without --dataset) the subnet keeps the
        # supernet's BN statistics, which fit no subnet exactly.
        "bn_recalibrated": dataset is not None,
        "files": {k: str(Path(p).name) for k, p in paths.items()},
        **(provenance or {}),
    }
    (out_dir / "hwnas-export.json").write_text(json.dumps(manifest, indent=2, default=str))
    return {k: str(p) for k, p in paths.items()}


def export_dir(rt: Runtime) -> Path:
    """Where exports built for the API are kept, one zip per distinct request."""
    return rt.settings.artifacts_dir / "exports"


def export_zip(
    rt: Runtime,
    name: str,
    arch: Any,
    *,
    formats: Sequence[str],
    n_bn_images: int,
    provenance: dict[str, Any],
    on_progress: ProgressCallback = ignore_progress,
) -> Path:
    """:func:`export_subnet` as a zip, built once per distinct request (supernet
    checkpoint, architecture, formats, calibration size, provenance) and then
    served from ``<home>/artifacts/exports``: an export costs tens of seconds
    of CPU, a repeated request none."""
    import hashlib
    import os
    import tempfile
    import zipfile

    with rt.read_session() as s:
        row = supernet_records.get_supernet(s, name)
        key = {
            "supernet": row.id,
            "checkpoint": row.checkpoint_path,
            "updated_at": str(row.updated_at),
            "arch": arch,
            "formats": sorted(formats),
            "bn_images": n_bn_images,
            "provenance": provenance,
        }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    target = export_dir(rt) / f"{name}-{digest[:16]}.zip"
    if target.is_file():
        on_progress(1, 1, f"export cached at {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        files = Path(tmp) / "export"
        files.mkdir()
        export_subnet(
            rt,
            name,
            arch,
            files,
            formats=formats,
            n_bn_images=n_bn_images,
            provenance=provenance,
            on_progress=on_progress,
        )
        partial = Path(tmp) / "export.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(files.iterdir()):
                if f.is_file():
                    zf.write(f, f.name)
        os.replace(partial, target)  # atomic: whole file or none
    return target


def choose_subnet(
    session: Session,
    supernet_name: str,
    *,
    arch: Any = None,
    trial_id: int | None = None,
    device: str | None = None,
    budget_ms: float | None = None,
    scope: Scope | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Resolve which subnet to export: exactly one of ``arch``, ``trial_id``, or
    ``device`` + ``budget_ms`` (the best stored subnet under the budget).
    Returns the arch config and where it came from."""
    from service.domain import devices
    from service.domain.errors import NotFoundError

    if sum(x is not None for x in (arch, trial_id, budget_ms)) != 1:
        raise DomainError(
            "give exactly one of an arch, a trial id, or a device with a latency budget"
        )
    row = supernet_records.get_supernet(session, supernet_name, scope)
    if budget_ms is not None:
        if device is None:
            raise DomainError("a latency budget needs a device")
        found, closest = subnets.best_under_budget(
            session, row, devices.get_device(session, device, scope), budget_ms, scope
        )
        if found is None:
            fastest = (
                f"; the fastest evaluated runs in {closest[0].latency_ms:.3f} ms" if closest else ""
            )
            raise NotFoundError(
                f"no evaluated subnet of {supernet_name} meets {budget_ms} ms on {device}{fastest}"
            )
        return found.arch, {
            "selected_by": {"device": device, "budget_ms": budget_ms},
            **found.to_dict(),
        }
    if trial_id is not None:
        trial = subnets.get_trial(session, trial_id, scope)
        if trial.supernet_id != row.id:
            raise DomainError(f"trial {trial_id} does not belong to supernet {supernet_name}")
        return trial.arch, {
            "trial_id": trial.id,
            "accuracy": trial.accuracy,
            "accuracy_source": trial.accuracy_source,
        }
    return arch, {}
