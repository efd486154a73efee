"""Program evaluation over the analytics zone, gated like every study output (issue 16).

``run_evaluation(EvaluationSpec(...), ...)`` matches participants of a program (ATV, HVIP) with eligible
non-participants inside the warehouse, estimates the effect (difference-in-differences with an event study;
Kaplan-Meier and a Cox hazard ratio for re-injury; an area-level comparative interrupted time series with placebo
tests), protects every count behind the report, and writes it (HTML and JSON) under ``reports/evaluations/``.
The simulator's true effects (``truth/program_effects.json``) are never read here: only tests and bench score.
"""

from evaluation.designs import DESIGNS, PROGRAMS
from evaluation.run import EvaluationResult, EvaluationSpec, area_columns, run_evaluation

__all__ = ["DESIGNS", "PROGRAMS", "EvaluationResult", "EvaluationSpec", "area_columns", "run_evaluation"]
