"""Real evaluations of a supernet's subnets, stored as measured trials, and the
versioned GBDT accuracy predictor fitted on them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.db import Supernet
from service.domain import predictor_records, subnets, supernet_records
from service.domain.errors import ConflictError, DomainError
from service.runtime import Runtime

if TYPE_CHECKING:
    from supernets.data import ImageDataset
    from supernets.networks import OFAMobileNetV3
    from supernets.spaces import SearchSpace

__all__ = [
    "accuracy_training_set",
    "evaluate_subnets",
    "fit_accuracy_predictor",
    "load_trained",
    "require_trainable",
]


def require_trainable(row: Supernet) -> Path:
    """The run directory of a trained, ready supernet (errors name what is wrong)."""
    if row.checkpoint_path is None:
        raise DomainError(f"{row.name!r} is a tabular benchmark space: it has no weights")
    if row.status != "ready":
        raise ConflictError(f"supernet {row.name!r} is {row.status}, not ready")
    return Path(row.checkpoint_path)


def load_trained(
    row: Supernet,
) -> tuple[SearchSpace[Any], OFAMobileNetV3, ImageDataset | None]:
    """Space, weights and dataset of a trained supernet; the dataset is None for
    a supernet imported without images."""
    from supernets.data import load_dataset
    from supernets.train import load_supernet

    space, net, meta = load_supernet(require_trainable(row))
    if meta.get("dataset") is None:
        return space, net, None
    return space, net, load_dataset(meta["dataset"])


def _no_data_error(name: str) -> DomainError:
    return DomainError(
        f"supernet {name!r} was imported without images, so no accuracy can be measured; "
        f"import it again with --dataset folder:PATH"
    )


def accuracy_training_set(
    rt: Runtime, supernet_id: int, space: SearchSpace[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded architectures and measured accuracies of every subnet of the
    supernet evaluated for real so far (one row per architecture, uncapped):
    what the accuracy predictor and space pruning are fitted on."""
    with rt.session() as s:
        measured = subnets.measured_accuracies(s, supernet_id)
    archs = [space.validate(arch) for arch, _ in measured.values()]
    X = space.encode_many(archs) if archs else np.zeros((0, 0))
    y = np.array([acc for _, acc in measured.values()], dtype=np.float64)
    return X, y


def evaluate_subnets(
    rt: Runtime,
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

    with rt.session() as s:
        row = supernet_records.get_supernet(s, name)
        row_id, space_name = row.id, row.space_name
        space, net, dataset = load_trained(row)
    if dataset is None:
        raise _no_data_error(name)
    archs = [space.validate(a) for a in archs]
    out = []
    for i, arch in enumerate(archs, start=1):
        result = evaluate_subnet(net, arch, dataset, n_calibration=n_bn_images, seed=seed)
        with rt.session() as s:
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
    rt: Runtime, name: str, *, seed: int = 0, tune: bool | str = "auto"
) -> dict[str, Any]:
    """Fit the GBDT accuracy predictor on every measured trial of the supernet,
    report its cross-validated quality, and store it as a new version."""
    from predictors.accuracy import GBDTAccuracyPredictor, predictor_features
    from predictors.accuracy.training import fit_with_report
    from supernets import space_from_config

    with rt.session() as s:
        row = supernet_records.get_supernet(s, name)
        space = space_from_config(row.space_name, row.space_config)
        row_id = row.id
    X, y = accuracy_training_set(rt, row_id, space)
    if len(y) < 10:
        raise DomainError(
            f"supernet {name!r} has {len(y)} measured subnets; at least 10 are needed "
            f"(`hwnas supernet eval {name} --sample 50`)"
        )
    predictor, report = fit_with_report(
        X, y, seed=seed, tune=tune, features=predictor_features(space)
    )
    assert isinstance(predictor, GBDTAccuracyPredictor)
    metrics = report.to_dict()
    with rt.session() as s:
        stored = predictor_records.store_predictor(
            s,
            kind="accuracy",
            space_name=space.name,
            blob=predictor.to_bytes(),
            metrics=metrics,
            n_train=len(y),
            supernet_id=row_id,
        )
        return {"version": stored.version, "n_train": len(y), "metrics": metrics}
