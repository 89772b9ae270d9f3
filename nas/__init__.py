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
* :func:`pareto_front` / :func:`best_under_budget` on stored records (our
  :class:`Evaluation` objects or plain dict rows with the same field names).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.candidates import CandidateSet, Featurizer
    from nas.constraints import Constraints
    from nas.costs import ArchCosts, has_cost_model, macs_and_params
    from nas.evaluators import SupernetEvaluator, TabularEvaluator, TabularLatency
    from nas.latency import BatchLatency, LatencyModel
    from nas.loop import AccuracyModel, SearchResult, SearchSettings, run_search
    from nas.pareto import (
        BudgetAnswer,
        best_under_budget,
        hypervolume_2d,
        hypervolume_improvement,
        pareto_front,
    )
    from nas.records import Evaluation, Proposal
    from nas.study import SearchStudy

#: Where each public name lives. Imported on first use (PEP 562): the service
#: reads ``nas.pareto`` on every query and must not pay for Optuna and the
#: search loop each time a command starts.
_HOME = {
    "AccuracyModel": "nas.loop",
    "ArchCosts": "nas.costs",
    "BatchLatency": "nas.latency",
    "BudgetAnswer": "nas.pareto",
    "CandidateSet": "nas.candidates",
    "Constraints": "nas.constraints",
    "Evaluation": "nas.records",
    "Featurizer": "nas.candidates",
    "LatencyModel": "nas.latency",
    "Proposal": "nas.records",
    "SearchResult": "nas.loop",
    "SearchSettings": "nas.loop",
    "SearchStudy": "nas.study",
    "SupernetEvaluator": "nas.evaluators",
    "TabularEvaluator": "nas.evaluators",
    "TabularLatency": "nas.evaluators",
    "best_under_budget": "nas.pareto",
    "has_cost_model": "nas.costs",
    "hypervolume_2d": "nas.pareto",
    "hypervolume_improvement": "nas.pareto",
    "macs_and_params": "nas.costs",
    "pareto_front": "nas.pareto",
    "run_search": "nas.loop",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AccuracyModel",
    "ArchCosts",
    "BatchLatency",
    "BudgetAnswer",
    "CandidateSet",
    "Constraints",
    "Evaluation",
    "Featurizer",
    "LatencyModel",
    "Proposal",
    "SearchResult",
    "SearchSettings",
    "SearchStudy",
    "SupernetEvaluator",
    "TabularEvaluator",
    "TabularLatency",
    "best_under_budget",
    "has_cost_model",
    "hypervolume_2d",
    "hypervolume_improvement",
    "macs_and_params",
    "pareto_front",
    "run_search",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
