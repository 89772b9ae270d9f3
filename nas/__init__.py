"""The hardware-aware search loop over Optuna, evaluators, constraints and Pareto queries."""
