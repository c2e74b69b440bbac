"""Promptomatix: prompt optimization on DSPy. Public names load lazily so `import promptomatix` stays cheap."""

from __future__ import annotations

__version__ = "0.2.0"

_LAZY = {
    "process_input": "promptomatix.api",
    "optimize_with_feedback": "promptomatix.api",
    "generate_feedback": "promptomatix.api",
    "resume": "promptomatix.api",
    "load_session": "promptomatix.api",
    "list_sessions": "promptomatix.api",
    "save_feedback": "promptomatix.api",
    "RunConfig": "promptomatix.config",
    "OptimizationResult": "promptomatix.result",
    "FakeLM": "promptomatix.lm.fake",
    "MetricsManager": "promptomatix.metrics",
    "register_metric": "promptomatix.metrics",
    "PromptomatixError": "promptomatix.errors",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> object:  # no typing import: the CLI's Ctrl-C handler is installed sooner
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    from promptomatix.main import missing

    raise missing("promptomatix", name)
