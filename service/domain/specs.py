"""The search-job specification: what a user submits, validated before queuing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.domain.bounds import LatencyMs, Name

__all__ = ["MAX_LATENCY_MEASUREMENTS", "SearchSpec", "parse_spec"]

#: Upper bound of ``max_latency_measurements``: each one is a real measurement on
#: the device (for a remote device, an ONNX file the user runs by hand).
MAX_LATENCY_MEASUREMENTS = 100

MAX_EXTRA_DEVICES = 16
#: 30 days: a longer wall-clock limit is a unit error.
MAX_TIME_BUDGET_S = 30 * 24 * 3600.0
#: MACs and parameter counts are BIGINT columns; 2**62 leaves headroom.
MAX_COUNT = 2**62


class SearchSpec(BaseModel):
    """A search for the most accurate subnet of ``supernet`` under a latency
    budget on ``device`` (and optional further constraints)."""

    # Non-finite numbers are refused: JSON's Infinity/NaN would pass a "> 0"
    # check (or fail it obscurely) and break the search much later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    supernet: Name = Field(description="Name of a registered supernet (or tabular space).")
    device: Name = Field(description="Device whose latency budget binds.")
    latency_budget_ms: LatencyMs = Field(description="Latency budget on `device`, in ms.")
    extra_devices: list[Name] = Field(
        default_factory=list,
        max_length=MAX_EXTRA_DEVICES,
        description="Further devices: latency reported, and bounded if budgets given.",
    )
    extra_budgets_ms: dict[Name, LatencyMs] = Field(
        default_factory=dict,
        max_length=MAX_EXTRA_DEVICES,
        description="Optional latency budgets on extra devices.",
    )
    n_evaluations: int = Field(
        default=100, ge=1, le=100_000, description="Real evaluations allowed."
    )
    batch_size: int = Field(default=10, ge=1, le=1000, description="Real evaluations per round.")
    time_budget_s: float | None = Field(
        default=None, gt=0, le=MAX_TIME_BUDGET_S, description="Wall-clock limit."
    )
    max_macs: int | None = Field(
        default=None, gt=0, le=MAX_COUNT, description="Hard limit on multiply-accumulates."
    )
    max_params: int | None = Field(
        default=None, gt=0, le=MAX_COUNT, description="Hard limit on parameters."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    bn_images: int = Field(
        default=2000, ge=1, le=100_000, description="Images for BN recalibration per subnet."
    )
    feasibility_confidence: float = Field(
        default=0.9,
        gt=0.5,
        lt=1.0,
        description=(
            "Where the latency is predicted with an uncertainty, a subnet counts as within "
            "budget only when P(latency <= budget) reaches this (one-sided normal bound)."
        ),
    )
    verified_feasibility_confidence: float = Field(
        # nas.constraints.DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE (not imported:
        # the service's specs load without the search loop); a test ties them.
        default=0.3,
        gt=0.0,
        lt=1.0,
        description=(
            "The same bound while the search explores and picks what to measure, when the "
            "answer is verified by measured latencies (a table or this worker's machine); "
            "0.5 explores at the predicted latency itself, below 0.5 also somewhat over it "
            "(default 0.3). "
            "The answer's measured latency decides, whatever this is."
        ),
    )
    max_latency_measurements: int = Field(
        default=10,
        ge=0,
        le=MAX_LATENCY_MEASUREMENTS,
        description=(
            "Distinct subnets whose latency is measured on the device to verify the answer "
            "(a table, this worker's machine, or by you for a remote device); 0: none, the "
            "answer's latency stays predicted."
        ),
    )
    prune_space: bool = Field(
        default=False,
        description=(
            "Search only the promising part of the space: choices that the GBDT's SHAP "
            "effects on the supernet's measured subnets show to hurt accuracy are removed."
        ),
    )

    @model_validator(mode="after")
    def _budgets_name_extra_devices(self) -> SearchSpec:
        unknown = sorted(set(self.extra_budgets_ms) - set(self.extra_devices))
        if unknown:
            raise ValueError(f"extra_budgets_ms names devices not in extra_devices: {unknown}")
        if self.device in self.extra_devices:
            raise ValueError(f"device {self.device!r} is also listed in extra_devices")
        for name, budget in self.extra_budgets_ms.items():
            if budget <= 0:
                raise ValueError(f"extra_budgets_ms[{name!r}] must be positive, got {budget}")
        return self


def parse_spec(data: dict[str, Any]) -> SearchSpec:
    """Validate a spec dict; the ``ValueError`` names every bad field."""
    if not isinstance(data, dict):
        raise ValueError(f"a search spec must be a JSON object, got {type(data).__name__}")
    try:
        return SearchSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid search spec: {problems}") from None
