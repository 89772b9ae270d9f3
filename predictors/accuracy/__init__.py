"""Accuracy predictors: gradient-boosted trees (GBDT-NAS) on encoded architectures.

Plain library, no database: fit on ``(X, y)`` = encoded architectures and their
measured accuracies, predict with an uncertainty, save/load to bytes or a file.
"""

from predictors.accuracy.gbdt import GBDTAccuracyPredictor, GBDTParams

__all__ = ["GBDTAccuracyPredictor", "GBDTParams"]
