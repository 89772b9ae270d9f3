"""The search loop: predictor-guided, hardware-aware multi-objective NAS on Optuna.

Plain library (no HTTP, no service database): the service calls
:func:`run_search` with a storage URL, a study name and an ``on_evaluation``
hook, and answers queries with :func:`pareto_front` / :func:`best_under_budget`
on the records it stored.
"""

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
