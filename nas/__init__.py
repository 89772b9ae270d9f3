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
from nas.proxy import ProxyAnswer, largest_macs_under_budget
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
    "ProxyAnswer",
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
    "largest_macs_under_budget",
    "macs_and_params",
    "pareto_front",
    "run_search",
]
