"""Pick a backend and its settings from a RunConfig. The dspy backend (and DSPy itself) is imported lazily."""

from __future__ import annotations

from typing import Any

from promptomatix.config import RunConfig


def backend_settings(cfg: RunConfig) -> Any:
    """The backend's hyperparameters: the search preset, with explicit values overriding it."""
    if cfg.backend == "dspy":
        from promptomatix.backends.dspy_backend import DSPySettings

        return DSPySettings.preset(
            cfg.search_type,
            module=cfg.dspy_module,
            optimizer=cfg.dspy_optimizer,
            num_threads=cfg.num_threads,
        )
    from promptomatix.backends.meta import MetaSettings

    return MetaSettings.preset(
        cfg.search_type,  # type: ignore[arg-type]
        rounds=cfg.rounds,
        candidates_per_round=cfg.candidates_per_round,
        minibatch_size=cfg.minibatch_size,
    )


def make_backend(cfg: RunConfig) -> Any:
    settings = backend_settings(cfg)
    if cfg.backend == "dspy":
        from promptomatix.backends.dspy_backend import DSPyOptimizer

        return DSPyOptimizer(settings)
    from promptomatix.backends.meta import MetaPromptOptimizer
    from promptomatix.backends.strategies import StrategyRegistry

    registry = StrategyRegistry.default()
    for path in cfg.meta_prompts:
        name = registry.register_template_file(path)
        settings.pinned_strategies = [*settings.pinned_strategies, name]  # the user's template runs every round
    return MetaPromptOptimizer(settings, registry)
