"""Metrics: per-task-type scores with feedback, the prompt-length penalty, custom metrics and the Evaluator.

Importing this package does not import dspy or litellm.
"""

from __future__ import annotations

from promptomatix.metrics.evaluator import EvalReport, Evaluator, ExampleRecord, LabelStats, bootstrap_ci
from promptomatix.metrics.manager import MetricsManager, get_field
from promptomatix.metrics.registry import (
    MetricRegistry,
    default_registry,
    load_metric_spec,
    register_metric,
)
from promptomatix.metrics.result import MetricResult

__all__ = [
    "EvalReport",
    "Evaluator",
    "ExampleRecord",
    "LabelStats",
    "MetricRegistry",
    "MetricResult",
    "MetricsManager",
    "bootstrap_ci",
    "default_registry",
    "get_field",
    "load_metric_spec",
    "register_metric",
]
