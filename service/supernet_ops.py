"""Supernet work the service does for its users, over the ``supernets`` and
``predictors`` libraries: train and register, evaluate subnets into measured
trials, fit and version the accuracy predictor, export a chosen subnet.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.app import Hwnas
from service.db import Supernet
from service.domain import predictors, subnets, supernets
from service.domain.errors import ConflictError, DomainError

__all__ = [
    "TrainRequest",
    "choose_subnet",
    "evaluate_subnets",
    "export_subnet",
    "fit_accuracy_predictor",
    "import_ofa_supernet",
    "register_checkpoint",
    "train_and_register",
]


@dataclass(frozen=True)
class TrainRequest:
    name: str
    space: str = "ofa-mbv3-tiny"
    dataset: str = "digits"
    schedule: str = "progressive-shrinking"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int = 64
    seed: int = 0
    max_steps_per_epoch: int | None = None
    threads: int | None = None
    nproc: int = 1
    out_dir: Path | None = None
    #: Training images for BN recalibration in the after-phase accuracy check.
    eval_images: int = 2000
    #: Mixed precision (CUDA only; training elsewhere raises).
    amp: bool = False


def _require_trainable(row: Supernet) -> Path:
    if row.checkpoint_path is None:
        raise DomainError(f"{row.name!r} is a tabular benchmark space: it has no weights")
    if row.status != "ready":
        raise ConflictError(f"supernet {row.name!r} is {row.status}, not ready")
    return Path(row.checkpoint_path)


def register_checkpoint(
    hw: Hwnas, name: str, checkpoint: Path, *, description: str = ""
) -> Supernet:
    """Register (or finish registering) a trained run directory under ``name``."""
    from supernets.train import load_supernet, read_manifest

    manifest = read_manifest(checkpoint)
    if not manifest.get("complete", False):
        done = len(manifest.get("phases", []))
        raise DomainError(f"training run {checkpoint} is not complete ({done} phase(s) done)")
    space, _, meta = load_supernet(checkpoint)
    with hw.session() as s:
        existing = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        if existing is not None and existing.status == "ready":
            raise ConflictError(f"supernet {name!r} already exists")
        if existing is None:
            existing = supernets.register_supernet(
                s, name, space_name=space.name, space_config=space.config(), status="training"
            )
        existing.space_config = space.config()
        # An OFA import without images has no dataset: stored as {} (the
        # column is required), which the search reads as "no accuracy".
        existing.dataset = meta["dataset"] or {}
        existing.n_classes = int(meta["n_classes"])
        existing.checkpoint_path = str(Path(checkpoint).resolve())
        existing.schedule = {
            "phases": meta["schedule"],
            "train_config": meta.get("train_config", {}),
        }
        existing.metrics = {
            "phases": manifest["phases"],
            "world_size": manifest.get("world_size", 1),
            **({"imported_from": meta["imported_from"]} if "imported_from" in meta else {}),
        }
        existing.status = "ready"
        existing.description = description or existing.description
        return existing


def train_and_register(
    hw: Hwnas, req: TrainRequest, progress: Callable[[Any], None] | None = None
) -> Supernet:
    """Train a supernet (resuming an interrupted run of the same name) and register it.

    The row is created up front with status ``training`` and the run directory,
    so a killed run is visible and the same command resumes it.
    """
    out = Path(req.out_dir or hw.settings.home / "supernets" / req.name).resolve()
    with hw.session() as s:
        row = s.query(Supernet).filter(Supernet.name == req.name).one_or_none()
        if row is not None and row.status == "ready":
            raise ConflictError(f"supernet {req.name!r} already exists")
        if row is not None and row.checkpoint_path and Path(row.checkpoint_path) != out:
            raise ConflictError(
                f"supernet {req.name!r} is being trained in {row.checkpoint_path}; "
                "use the same output directory to resume it"
            )
        from supernets import get_space

        space = get_space(req.space)
        if row is None:
            supernets.register_supernet(
                s,
                req.name,
                space_name=space.name,
                space_config=space.config(),
                dataset={"spec": req.dataset},
                checkpoint_path=str(out),
                status="training",
            )
    if req.nproc > 1:
        _train_distributed(req, out)
    else:
        _train_local(req, out, progress)
    return register_checkpoint(hw, req.name, out)


def _schedule_and_config(req: TrainRequest) -> tuple[Any, Any, Any, Any]:
    from supernets import get_space
    from supernets.data import DatasetSpec, load_dataset
    from supernets.schedules import get_schedule
    from supernets.train import TrainConfig

    space = get_space(req.space)
    dataset = load_dataset(DatasetSpec.parse(req.dataset, seed=req.seed))
    overrides = {k: v for k, v in (("epochs", req.epochs), ("lr", req.lr)) if v is not None}
    schedule = get_schedule(req.schedule, space, **overrides)
    config = TrainConfig(
        batch_size=req.batch_size,
        seed=req.seed,
        max_steps_per_epoch=req.max_steps_per_epoch,
        num_threads=req.threads,
        eval_calibration_images=req.eval_images,
        amp=req.amp,
    )
    return space, dataset, schedule, config


def _train_local(req: TrainRequest, out: Path, progress: Callable[[Any], None] | None) -> None:
    from supernets.train import train_supernet

    space, dataset, schedule, config = _schedule_and_config(req)
    train_supernet(space, dataset, schedule, out, config=config, progress=progress)


def _train_distributed(req: TrainRequest, out: Path) -> None:
    """Launch ``torchrun`` with ``req.nproc`` processes (DDP; gloo on CPU)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={req.nproc}", "-m", "supernets.launch",
        "--space", req.space, "--dataset", req.dataset, "--schedule", req.schedule,
        "--batch-size", str(req.batch_size), "--seed", str(req.seed), "--out", str(out),
    ]  # fmt: skip
    for flag, value in (
        ("--epochs", req.epochs),
        ("--lr", req.lr),
        ("--max-steps-per-epoch", req.max_steps_per_epoch),
        ("--threads", req.threads),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    if req.amp:
        cmd.append("--amp")
    done = subprocess.run(cmd, env=dict(os.environ), check=False)
    if done.returncode != 0:
        raise DomainError(
            f"distributed training exited with code {done.returncode}; rerun to resume"
        )


def _load(row: Supernet) -> tuple[Any, Any, Any]:
    """``(space, supernet, dataset)``; the dataset is ``None`` for a supernet
    imported without images."""
    from supernets.data import load_dataset
    from supernets.train import load_supernet

    space, net, meta = load_supernet(_require_trainable(row))
    if meta.get("dataset") is None:
        return space, net, None
    return space, net, load_dataset(meta["dataset"])


def _no_data_error(name: str) -> DomainError:
    return DomainError(
        f"supernet {name!r} was imported without images, so no accuracy can be measured; "
        f"import it again with --dataset folder:PATH"
    )


def evaluate_subnets(
    hw: Hwnas,
    name: str,
    archs: Sequence[Any],
    *,
    n_bn_images: int = 2000,
    seed: int = 0,
    purpose: str = "evaluation",
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Really evaluate ``archs`` (BN-recalibrated holdout accuracy) and store
    each as a measured trial of the supernet (no job)."""
    from supernets.evaluate import evaluate_subnet

    with hw.session() as s:
        row = supernets.get_supernet(s, name)
        row_id, space_name = row.id, row.space_name
        space, net, dataset = _load(row)
    if dataset is None:
        raise _no_data_error(name)
    archs = [space.validate(a) for a in archs]
    out = []
    for i, arch in enumerate(archs, start=1):
        result = evaluate_subnet(net, arch, dataset, n_calibration=n_bn_images, seed=seed)
        with hw.session() as s:
            trial = subnets.record_trial(
                s,
                subnets.TrialIn(
                    space_name=space_name,
                    arch=arch.to_dict(),
                    arch_hash=space.arch_hash(arch),
                    accuracy=result.accuracy,
                    supernet_id=row_id,
                    details={"purpose": purpose, **result.to_dict()},
                ),
            )
            out.append({"trial_id": trial.id, **result.to_dict()})
        if progress is not None:
            progress(i)
    return out


def fit_accuracy_predictor(
    hw: Hwnas, name: str, *, seed: int = 0, tune: bool | str = "auto"
) -> dict[str, Any]:
    """Fit the GBDT accuracy predictor on every measured trial of the supernet,
    report its cross-validated quality, and store it as a new version."""
    from predictors.accuracy import GBDTAccuracyPredictor
    from predictors.accuracy.training import fit_with_report
    from supernets import space_from_config

    with hw.session() as s:
        row = supernets.get_supernet(s, name)
        space = space_from_config(row.space_name, row.space_config)
        trials = subnets.list_trials(s, supernet_id=row.id, limit=10_000)
        measured = {
            t.arch_hash: t
            for t in trials
            if t.accuracy is not None and t.accuracy_source == "measured"
        }
        row_id = row.id
    if len(measured) < 10:
        raise DomainError(
            f"supernet {name!r} has {len(measured)} measured subnets; at least 10 are needed "
            f"(`hwnas supernet eval {name} --sample 50`)"
        )
    X = space.encode_many([space.validate(t.arch) for t in measured.values()])
    y = [float(t.accuracy) for t in measured.values()]  # type: ignore[arg-type]
    predictor, report = fit_with_report(X, y, seed=seed, tune=tune)
    assert isinstance(predictor, GBDTAccuracyPredictor)
    metrics = report.to_dict()
    with hw.session() as s:
        stored = predictors.store_predictor(
            s,
            kind="accuracy",
            space_name=space.name,
            blob=predictor.to_bytes(),
            metrics=metrics,
            n_train=len(y),
            supernet_id=row_id,
        )
        return {"version": stored.version, "n_train": len(y), "metrics": metrics}


def export_subnet(
    hw: Hwnas,
    name: str,
    arch: Any,
    out_dir: Path,
    *,
    formats: Sequence[str] = ("state_dict", "torchscript", "onnx"),
    n_bn_images: int = 2000,
    provenance: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Export ``arch`` of supernet ``name`` (BN recalibrated on its training data)
    and write ``hwnas-export.json`` describing where it came from."""
    from supernets.export import export_subnet as _export

    # The ONNX exporter warns about every torchvision operator it cannot
    # register; torchvision is not a dependency, so that is noise.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)

    with hw.session() as s:
        row = supernets.get_supernet(s, name)
        space, net, dataset = _load(row)
    arch = space.validate(arch)
    paths = _export(net, arch, out_dir, dataset=dataset, n_calibration=n_bn_images, formats=formats)
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


def import_ofa_supernet(
    hw: Hwnas,
    name: str,
    checkpoint: Path,
    *,
    width_mult: float = 1.0,
    dataset: str | None = None,
    n_classes: int = 1000,
    image_size: int = 224,
    out_dir: Path | None = None,
    description: str = "",
) -> Supernet:
    """Import an OFA ``OFAMobileNetV3`` checkpoint and register it as ``name``.

    ``dataset`` (e.g. ``folder:/data/imagenet/val``) is the user's images: BN
    recalibration uses its training split and accuracy its disjoint holdout
    split. Images get ImageNet's normalisation and centre crop, which OFA's
    networks expect, and labels are the positions of the class folder names
    in sorted order (OFA's ImageNet order), so every class must have its
    folder. Without a dataset the supernet is searchable for latency only.
    """
    import json as _json

    from supernets.data import DatasetSpec, folder_classes, load_dataset
    from supernets.ofa_import import import_ofa, save_imported

    with hw.session() as s:
        if s.query(Supernet).filter(Supernet.name == name).one_or_none() is not None:
            raise ConflictError(f"supernet {name!r} already exists")
    spec: DatasetSpec | None = None
    class_names: tuple[str, ...] | None = None
    if dataset:
        # What OFA's evaluation does to ImageNet images; a JSON spec may override.
        defaults = {"normalization": "imagenet", "crop_fraction": 0.875, "image_size": image_size}
        text = dataset.strip()
        if text.startswith("{"):
            spec = DatasetSpec.from_dict({**defaults, **_json.loads(text)})
        else:
            spec = DatasetSpec.parse(text, **defaults)
        if spec.kind == "folder":
            class_names = tuple(folder_classes(str(spec.path)))
        else:
            class_names = load_dataset(spec).class_names
        if len(class_names) != n_classes:
            raise DomainError(
                f"dataset {spec} has {len(class_names)} classes but the network has {n_classes} "
                "outputs: labels are the positions of the class folder names in sorted order, "
                "so every class needs its folder (empty folders are fine)"
            )
    net = import_ofa(checkpoint, width_mult=width_mult, n_classes=n_classes)
    out = Path(out_dir or hw.settings.home / "supernets" / name).resolve()
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"output directory {out} is not empty")
    save_imported(net, out, dataset=spec, class_names=class_names, source=str(checkpoint))
    return register_checkpoint(hw, name, out, description=description)


def choose_subnet(
    session: Any,
    supernet_name: str,
    *,
    arch: Any = None,
    trial_id: int | None = None,
    device: str | None = None,
    budget_ms: float | None = None,
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
    row = supernets.get_supernet(session, supernet_name)
    if budget_ms is not None:
        if device is None:
            raise DomainError("a latency budget needs a device")
        found, closest = subnets.best_under_budget(
            session, row, devices.get_device(session, device), budget_ms
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
        trial = subnets.get_trial(session, trial_id)
        if trial.supernet_id != row.id:
            raise DomainError(f"trial {trial_id} does not belong to supernet {supernet_name}")
        return trial.arch, {
            "trial_id": trial.id,
            "accuracy": trial.accuracy,
            "accuracy_source": trial.accuracy_source,
        }
    return arch, {}
