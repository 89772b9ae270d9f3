"""The search loop: predictor-guided, hardware-aware multi-objective NAS on Optuna.

Plain library (no HTTP, no service database). The smallest use, on the
bundled NAS-Bench-201 tables (zero training)::

    from nas import TabularEvaluator, run_search

    ev = TabularEvaluator()                        # real evaluations from the table
    result = run_search(ev.space, ev, ev.latency("pixel3"), budget_ms=10.0,
                        n_evaluations=100, seed=0)
    result.best                                    # best arch with latency <= 10 ms
    result.history                                 # [(arch, accuracy, latency_ms), ...]

What the service uses:

* :func:`run_search` with ``storage=`` (an RDB URL) and ``study_name=``: every
  real evaluation is an Optuna trial there, a search resumes or extends
  without re-evaluating, and several workers can share the study;
  ``on_evaluation`` receives each :class:`Evaluation` (one trial-table row),
  ``should_stop`` cancels cleanly;
* :class:`SupernetEvaluator` (``.from_checkpoint(run_dir)``) as ``evaluate``,
  an adapted latency predictor (``DeviceLatencyPredictor``) as ``latency``;
* the answers, defined once in :mod:`nas.pareto` (the reference any other
  implementation must match): :func:`best`, :func:`closest`,
  :func:`pareto_front`, :func:`best_under_budget`, on stored records (our
  :class:`Evaluation` objects or plain dict rows with the same field names);
* :meth:`SearchResult.to_dict` (the JSON summary of a search) and
  :func:`fail_running_trials` (a restarted job's orphaned trials).

The loop itself is a :class:`Search` (state and steps) driven by
:func:`run_search` under :class:`StopRules`; ``run_search(...,
measure_latency=..., max_latency_measurements=...)`` verifies the answer's
latency on the device (:mod:`nas.verify`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.candidates import CandidateSet, FeatureCache, Featurizer
    from nas.constraints import (
        DEFAULT_FEASIBILITY_CONFIDENCE,
        DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE,
        Constraints,
        confidence_z,
    )
    from nas.correction import LatencyCorrection
    from nas.costs import ArchCosts, has_cost_model, macs_and_params
    from nas.evaluators import SupernetEvaluator, TabularEvaluator, TabularLatency
    from nas.latency import (
        ArchLatencyModel,
        BatchLatency,
        FeatureLatencyModel,
        LatencyLike,
        LatencyModel,
        UncertainLatencyModel,
    )
    from nas.loop import run_search
    from nas.pareto import (
        BudgetAnswer,
        Record,
        answer,
        best,
        best_under_budget,
        closest,
        effective_latency,
        hypervolume_2d,
        hypervolume_improvement,
        pareto_front,
        violation,
    )
    from nas.proxy import ProxyAnswer, largest_macs_under_budget
    from nas.records import Evaluation, Proposal
    from nas.result import SearchResult
    from nas.search import Search
    from nas.settings import AccuracyModel, SearchSettings
    from nas.stopping import StopRules
    from nas.study import SearchStudy, fail_running_trials

#: Where each public name lives. Imported on first use (PEP 562): the service
#: reads ``nas.pareto`` on every query and must not pay for Optuna and the
#: search loop each time a command starts.
_HOME = {
    "AccuracyModel": "nas.settings",
    "ArchCosts": "nas.costs",
    "ArchLatencyModel": "nas.latency",
    "BatchLatency": "nas.latency",
    "BudgetAnswer": "nas.pareto",
    "CandidateSet": "nas.candidates",
    "Constraints": "nas.constraints",
    "DEFAULT_FEASIBILITY_CONFIDENCE": "nas.constraints",
    "DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE": "nas.constraints",
    "Evaluation": "nas.records",
    "FeatureCache": "nas.candidates",
    "FeatureLatencyModel": "nas.latency",
    "Featurizer": "nas.candidates",
    "LatencyCorrection": "nas.correction",
    "LatencyLike": "nas.latency",
    "LatencyModel": "nas.latency",
    "Proposal": "nas.records",
    "ProxyAnswer": "nas.proxy",
    "Record": "nas.pareto",
    "Search": "nas.search",
    "SearchResult": "nas.result",
    "SearchSettings": "nas.settings",
    "SearchStudy": "nas.study",
    "StopRules": "nas.stopping",
    "SupernetEvaluator": "nas.evaluators",
    "TabularEvaluator": "nas.evaluators",
    "TabularLatency": "nas.evaluators",
    "UncertainLatencyModel": "nas.latency",
    "answer": "nas.pareto",
    "best": "nas.pareto",
    "best_under_budget": "nas.pareto",
    "closest": "nas.pareto",
    "confidence_z": "nas.constraints",
    "effective_latency": "nas.pareto",
    "fail_running_trials": "nas.study",
    "has_cost_model": "nas.costs",
    "hypervolume_2d": "nas.pareto",
    "hypervolume_improvement": "nas.pareto",
    "largest_macs_under_budget": "nas.proxy",
    "macs_and_params": "nas.costs",
    "pareto_front": "nas.pareto",
    "run_search": "nas.loop",
    "violation": "nas.pareto",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_FEASIBILITY_CONFIDENCE",
    "DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE",
    "AccuracyModel",
    "ArchCosts",
    "ArchLatencyModel",
    "BatchLatency",
    "BudgetAnswer",
    "CandidateSet",
    "Constraints",
    "Evaluation",
    "FeatureCache",
    "FeatureLatencyModel",
    "Featurizer",
    "LatencyCorrection",
    "LatencyLike",
    "LatencyModel",
    "Proposal",
    "ProxyAnswer",
    "Record",
    "Search",
    "SearchResult",
    "SearchSettings",
    "SearchStudy",
    "StopRules",
    "SupernetEvaluator",
    "TabularEvaluator",
    "TabularLatency",
    "UncertainLatencyModel",
    "answer",
    "best",
    "best_under_budget",
    "closest",
    "confidence_z",
    "effective_latency",
    "fail_running_trials",
    "has_cost_model",
    "hypervolume_2d",
    "hypervolume_improvement",
    "largest_macs_under_budget",
    "macs_and_params",
    "pareto_front",
    "run_search",
    "violation",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
