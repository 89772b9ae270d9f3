"""Search-space pruning from the predictor's SHAP values (GBDT-NAS, first order).

For every choice (``edge3 = nor_conv_3x3``, ``ks7 = 7``): the mean SHAP
contribution of that parameter's encoding columns over the sampled
architectures that use the choice. Positive: architectures with it are
predicted better than average because of it; negative: worse. GBDT-NAS drops
the negative choices and searches what is left.

Contributions come from XGBoost's exact TreeSHAP (``pred_contribs=True``),
averaged over the ensemble. Derived count columns (see
:mod:`predictors.accuracy.features`) are handed back to the one-hot columns
they sum, so "3 convolutions" is credited to the edges that have one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictors.accuracy.encoding import EncodingMap, _key, encoding_map
from predictors.accuracy.gbdt import GBDTAccuracyPredictor, check_features
from supernets.spaces import SearchSpace

__all__ = ["ChoiceEffect", "PruningResult", "choice_effects", "prune_space", "sample_pruned"]


@dataclass(frozen=True)
class ChoiceEffect:
    """What one choice does to predicted accuracy.

    ``effect`` is the mean SHAP value in accuracy points (the model's score
    scaled by the spread of the middle half of the training accuracies, so
    read it as "about this many points"); ``stderr`` its standard error over
    the ``n_samples`` architectures that use the choice.
    """

    param: str
    value: Any
    name: str
    effect: float
    stderr: float
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "param": self.param,
            "value": self.value,
            "name": self.name,
            "effect": self.effect,
            # One sample has no standard error (inf here); JSON has no inf.
            "stderr": self.stderr if np.isfinite(self.stderr) else None,
            "n_samples": self.n_samples,
        }


@dataclass(frozen=True)
class PruningResult:
    """Per-choice effects (best first) and the pruned space.

    ``choices`` has the keys of ``space.choices()``, each with the values that
    survived, in the space's order: pass it to :func:`sample_pruned` or turn it
    into an Optuna ``CategoricalDistribution`` per parameter.
    """

    effects: list[ChoiceEffect]
    choices: dict[str, list[Any]]
    removed: list[ChoiceEffect]
    #: Size of the pruned product space relative to the full one.
    kept_fraction: float

    def helps(self) -> list[ChoiceEffect]:
        return [e for e in self.effects if e.effect > 0]

    def hurts(self) -> list[ChoiceEffect]:
        return [e for e in self.effects if e.effect < 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "effects": [e.to_dict() for e in self.effects],
            "choices": self.choices,
            "removed": [e.name for e in self.removed],
            "kept_fraction": self.kept_fraction,
        }


def choice_effects(
    space: SearchSpace[Any],
    predictor: GBDTAccuracyPredictor,
    X: Any,
    *,
    emap: EncodingMap | None = None,
) -> list[ChoiceEffect]:
    """Effect of every choice on ``predictor``'s output, over the archs in ``X``.

    ``X`` holds encodings of ``space`` (typically the training set). Choices
    that no row of ``X`` uses get no entry. Sorted from most helpful to most
    harmful.
    """
    X = check_features(X, space.feature_dim)
    if predictor.feature_dim != space.feature_dim:
        raise ValueError(
            f"predictor was fitted on {predictor.feature_dim} features, "
            f"space {space.name!r} encodes {space.feature_dim}"
        )
    emap = emap or encoding_map(space)
    phi = _raw_contributions(predictor, X) * predictor.accuracy_per_score()
    params = [space.to_params(space.decode(row)) for row in X]
    effects: list[ChoiceEffect] = []
    for param, values in emap.choices.items():
        cols = list(emap.controlled[param])
        if not cols:
            continue  # the encoding ignores this parameter
        per_sample = phi[:, cols].sum(axis=1)
        active = _active_rows(X, emap, param)
        taken = np.array([_key(p[param]) for p in params], dtype=object)
        for value in values:
            mask = active & (taken == _key(value))
            k = int(mask.sum())
            if k == 0:
                continue
            vals = per_sample[mask]
            effects.append(
                ChoiceEffect(
                    param=param,
                    value=value,
                    name=f"{param} = {value}",
                    effect=float(vals.mean()),
                    stderr=float(vals.std(ddof=1) / np.sqrt(k)) if k > 1 else float("inf"),
                    n_samples=k,
                )
            )
    effects.sort(key=lambda e: -e.effect)
    return effects


def prune_space(
    space: SearchSpace[Any],
    X: Any,
    y: Any = None,
    *,
    predictor: GBDTAccuracyPredictor | None = None,
    threshold: float = 0.0,
    confidence: float = 2.0,
    min_keep: int = 1,
    min_samples: int = 3,
    seed: int = 0,
) -> PruningResult:
    """GBDT-NAS first-order pruning: drop choices that clearly hurt.

    A choice goes when ``effect + confidence * stderr < -threshold``: its mean
    SHAP effect is below ``-threshold`` by ``confidence`` standard errors.
    GBDT-NAS's rule is ``confidence=0`` (any negative mean). On NAS-Bench-201
    (5 seeds) that rule pruned the benchmark's best cell away in 10 of 15 draws
    at n = 50..200; ``confidence=2`` kept it in 12 of 15 and still cut the
    space to 2-5% (benchmarks/results/accuracy_predictor.md, pruning table).
    Pass a fitted ``predictor``, or ``y`` (accuracies of ``X``) to fit one here.
    Every parameter keeps at least ``min_keep`` values (its best ones), and a
    choice seen in fewer than ``min_samples`` rows is kept: too little evidence
    to rule it out.
    """
    if min_keep < 1:
        raise ValueError(f"min_keep must be >= 1, got {min_keep}")
    if threshold < 0 or confidence < 0:
        raise ValueError(f"threshold and confidence must be >= 0, got {threshold}, {confidence}")
    if predictor is None:
        if y is None:
            raise ValueError("prune_space needs y (accuracies of X) or a fitted predictor")
        predictor = GBDTAccuracyPredictor(seed=seed).fit(X, y)
    effects = choice_effects(space, predictor, X)
    by_choice = {(e.param, _key(e.value)): e for e in effects}
    kept: dict[str, list[Any]] = {}
    removed: list[ChoiceEffect] = []
    for param, values in space.choices().items():
        # Best first; an unseen choice counts as best (it is kept anyway).
        effect_of = {
            _key(v): by_choice[(param, _key(v))].effect if (param, _key(v)) in by_choice else np.inf
            for v in values
        }
        ranked = sorted(effect_of, key=effect_of.__getitem__, reverse=True)
        must_keep = set(ranked[:min_keep])
        allowed = []
        for value in values:
            e = by_choice.get((param, _key(value)))
            if (
                _key(value) in must_keep
                or e is None
                or e.n_samples < min_samples
                or e.effect + (confidence * e.stderr if confidence else 0.0) >= -threshold
            ):
                allowed.append(value)
            else:
                removed.append(e)
        kept[param] = allowed
    removed.sort(key=lambda e: e.effect)
    log_ratio = sum(
        np.log(len(kept[p])) - np.log(len(values)) for p, values in space.choices().items()
    )
    return PruningResult(effects, kept, removed, float(np.exp(log_ratio)))


def sample_pruned(
    space: SearchSpace[Any], choices: Mapping[str, list[Any]], rng: np.random.Generator
) -> Any:
    """One architecture drawn uniformly from the pruned ``choices`` of ``space``."""
    full = space.choices()
    params: dict[str, Any] = {}
    for param, values in full.items():
        allowed = list(choices.get(param, values))
        if not allowed:
            raise ValueError(f"pruned choices leave no value for parameter {param!r}")
        unknown = [v for v in allowed if v not in values]
        if unknown:
            raise ValueError(f"parameter {param!r} has no value(s) {unknown}")
        params[param] = allowed[int(rng.integers(len(allowed)))]
    return space.from_params(params)


# -- helpers ----------------------------------------------------------------------
def _raw_contributions(predictor: GBDTAccuracyPredictor, X: np.ndarray) -> np.ndarray:
    """Ensemble-mean SHAP values per input column of ``X`` (derived columns folded back)."""
    contribs = predictor.contributions(X)
    d = X.shape[1]
    phi = contribs[:, :d].copy()  # drop the bias column at the end
    for j, group in enumerate(predictor.derived_features.groups):
        cols = list(group)
        part = X[:, cols]
        total = part.sum(axis=1, keepdims=True)
        # A count is credited to the columns that make it up; a zero count
        # (no such choice anywhere) to all of them alike.
        weights = np.where(total > 0, part / np.where(total > 0, total, 1), 1.0 / len(cols))
        phi[:, cols] += contribs[:, d + j : d + j + 1] * weights
    return phi


def _active_rows(X: np.ndarray, emap: EncodingMap, param: str) -> np.ndarray:
    """Rows where ``param`` is part of the network: one of its one-hot bits is
    on (OFA: a block beyond the stage's depth has none). A parameter without
    one-hot bits (OFA depth) is always active."""
    cols = sorted(
        {c for v in emap.choices[param] for c in emap.indicators.get((param, _key(v)), ())}
    )
    if not cols:
        return np.ones(X.shape[0], dtype=bool)
    return X[:, cols].sum(axis=1) > 0.5
