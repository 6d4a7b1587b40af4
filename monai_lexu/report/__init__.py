"""Tables (CSV/Markdown) and figures (PNG) a person reads."""

from __future__ import annotations

from .analyses import analyse_run, plot_agreement_by_level, plot_qc_curves, summarize_run, write_distorted_dataset
from .compare import (
    TABLE1_METRICS,
    TABLE2_METRICS,
    bundle_inference_cost,
    expand_runs,
    fusion_table,
    load_case_maps,
    load_evaluation,
    measure_inference_cost,
    uncertainty_table,
    write_table,
)
from .cv import cross_validation_summary
from .evaluation import EvaluationSummary, evaluation_markdown, write_case_maps, write_evaluation
from .figures import plot_case, plot_method_comparison, plot_reliability_diagram, save_figure
from .html import build_report
from .tables import (
    TOO_SMALL,
    finite_mean_std,
    format_value,
    markdown_table,
    mean_std,
    too_small_cell,
    write_csv,
    write_markdown,
)

__all__ = [
    "analyse_run",
    "build_report",
    "plot_agreement_by_level",
    "plot_qc_curves",
    "summarize_run",
    "write_distorted_dataset",
    "EvaluationSummary",
    "evaluation_markdown",
    "write_case_maps",
    "write_evaluation",
    "TABLE1_METRICS",
    "TABLE2_METRICS",
    "bundle_inference_cost",
    "expand_runs",
    "fusion_table",
    "load_case_maps",
    "load_evaluation",
    "measure_inference_cost",
    "plot_case",
    "plot_method_comparison",
    "uncertainty_table",
    "write_table",
    "cross_validation_summary",
    "TOO_SMALL",
    "finite_mean_std",
    "format_value",
    "markdown_table",
    "mean_std",
    "plot_reliability_diagram",
    "save_figure",
    "too_small_cell",
    "write_csv",
    "write_markdown",
]
