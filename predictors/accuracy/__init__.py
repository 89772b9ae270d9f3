"""Accuracy predictors: gradient-boosted trees (GBDT-NAS) on encoded architectures.

Plain library, no database: fit on ``(X, y)`` = encoded architectures and their
measured accuracies, predict with an uncertainty, save/load to bytes or a file;
rank the space's choices by their SHAP effect and prune the harmful ones.
"""

from predictors.accuracy.encoding import EncodingMap, encoding_map
from predictors.accuracy.features import (
    SumFeatures,
    auto_sum_features,
    ofa_sum_features,
    one_hot_blocks,
    predictor_features,
    space_sum_features,
)
from predictors.accuracy.gbdt import GBDTAccuracyPredictor, GBDTParams
from predictors.accuracy.pruning import (
    ChoiceEffect,
    PruningResult,
    choice_effects,
    prune_space,
    sample_pruned,
)
from predictors.accuracy.training import Dataset, FitReport, fit_with_report, sample_dataset
from predictors.accuracy.tuning import (
    MIN_TUNE_SAMPLES,
    TuningResult,
    cross_validated_predictions,
    tune_params,
)

__all__ = [
    "MIN_TUNE_SAMPLES",
    "ChoiceEffect",
    "Dataset",
    "EncodingMap",
    "FitReport",
    "GBDTAccuracyPredictor",
    "GBDTParams",
    "PruningResult",
    "SumFeatures",
    "TuningResult",
    "auto_sum_features",
    "choice_effects",
    "cross_validated_predictions",
    "encoding_map",
    "fit_with_report",
    "ofa_sum_features",
    "one_hot_blocks",
    "predictor_features",
    "prune_space",
    "sample_dataset",
    "sample_pruned",
    "space_sum_features",
    "tune_params",
]
