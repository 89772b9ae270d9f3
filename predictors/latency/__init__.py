"""Latency predictors: meta-learned across source devices, adapted to a new
device from <=10 measurements; real latency measurement on local hardware; the
library side of device registration. Knows nothing of jobs, databases or HTTP.

Quick use::

    from predictors.latency import MetaLatencyPredictor
    meta = MetaLatencyPredictor(seed=0).fit(X, Y)   # Y: device -> latencies (ms)
    idx = meta.reference_indices                    # <=10 rows of X to measure
    dev = meta.adapt(X[idx], y_new[idx])            # a new device's measurements
    dev.predict(X_any)                              # latency in ms

Shipped predictors (``load_pretrained("nb201" | "ofa-mbv3" | "ofa-mbv3-tiny")``)
and the registration flow live in :mod:`predictors.latency.registration`.
"""

from predictors.latency.features import shared_cost_groups
from predictors.latency.measure import (
    BACKENDS,
    DeviceSpec,
    LatencyMeasurement,
    available_backends,
    measure_latency,
    measure_many,
    measure_onnx,
)
from predictors.latency.meta import (
    DeviceLatencyPredictor,
    MetaLatencyPredictor,
    MetaParams,
    latency_quality,
)
from predictors.latency.pretrained import load_pretrained, pretrained_spaces
from predictors.latency.records import (
    MeasurementRecord,
    read_records,
    reference_set_id,
    split_records,
    write_records,
)
from predictors.latency.registration import (
    DeviceAdaptation,
    adapt_device,
    export_reference_onnx,
    export_round_onnx,
    measure_archs,
    propose_measurements,
    readapt_device,
    reference_archs,
    reference_set,
    uncertainty_level,
)

__all__ = [
    "BACKENDS",
    "DeviceAdaptation",
    "DeviceLatencyPredictor",
    "DeviceSpec",
    "LatencyMeasurement",
    "MeasurementRecord",
    "MetaLatencyPredictor",
    "MetaParams",
    "adapt_device",
    "available_backends",
    "export_reference_onnx",
    "export_round_onnx",
    "latency_quality",
    "load_pretrained",
    "measure_archs",
    "measure_latency",
    "measure_many",
    "measure_onnx",
    "pretrained_spaces",
    "propose_measurements",
    "read_records",
    "readapt_device",
    "reference_archs",
    "reference_set",
    "reference_set_id",
    "shared_cost_groups",
    "split_records",
    "uncertainty_level",
    "write_records",
]
