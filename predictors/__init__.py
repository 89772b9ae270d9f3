"""Accuracy predictors (GBDT), meta-learned latency predictors, on-device latency
measurement and predictor quality metrics. Knows nothing of jobs or HTTP."""
