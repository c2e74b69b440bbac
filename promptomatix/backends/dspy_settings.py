"""DSPy backend settings: presets per search type, explicit overrides, and the dry-run call estimate.

Kept free of DSPy imports so a dry run or `--help` does not pay for importing DSPy.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promptomatix.errors import ConfigurationError

BUILTIN_MODULES = ("predict", "cot", "pot", "react")
_ALIASES = {
    "predict": "predict",
    "chainofthought": "cot",
    "cot": "cot",
    "programofthought": "pot",
    "pot": "pot",
    "react": "react",
}


def normalize_module_name(name: str) -> str:
    """'dspy.ChainOfThought', 'ChainOfThought', 'chain_of_thought', 'cot' → 'cot'; unknown names are lowercased."""
    key = name.strip()
    if key.lower().startswith("dspy."):
        key = key[5:]
    key = re.sub(r"[\s_\-]", "", key).lower()
    return _ALIASES.get(key, key)


SearchType = Literal["quick", "moderate", "heavy"]
OptimizerName = Literal["miprov2", "gepa", "bootstrap", "labeled"]
OPTIMIZERS = ("miprov2", "gepa", "bootstrap", "labeled")
_OPTIMIZER_ALIASES = {
    "miprov2": "miprov2",
    "mipro": "miprov2",
    "gepa": "gepa",
    "bootstrap": "bootstrap",
    "bootstrapfewshot": "bootstrap",
    "bootstrapfewshotwithrandomsearch": "bootstrap",
    "bootstraprs": "bootstrap",
    "labeled": "labeled",
    "labelled": "labeled",
    "labeledfewshot": "labeled",
}
AUTO = {"quick": "light", "moderate": "medium", "heavy": "heavy"}
# DSPy's own auto presets (MIPROv2/GEPA AUTO_RUN_SETTINGS), repeated here for the dry-run estimate.
_AUTO_N = {"light": 6, "medium": 12, "heavy": 18}
_AUTO_VAL = {"light": 100, "medium": 300, "heavy": 1000}
# Demo counts per search type (bootstrapped, labeled): few, because small local models have small contexts.
_DEMOS = {"quick": (3, 3), "moderate": (4, 4), "heavy": (4, 8)}
_RS_CANDIDATES = {"quick": 4, "moderate": 6, "heavy": 12}  # BootstrapFewShotWithRandomSearch programs
_MIPRO_MINIBATCH = 35  # DSPy's default minibatch_size
_GEPA_MINIBATCH = 3  # DSPy's default reflection_minibatch_size
_REACT_MAX_ITERS = 5
_POT_MAX_ITERS = 3


def normalize_optimizer_name(name: str) -> str:
    key = name.strip()
    if key.lower().startswith("dspy."):
        key = key[5:]
    key = key.replace("_", "").replace("-", "").replace(" ", "").lower()
    if key not in _OPTIMIZER_ALIASES:
        raise ConfigurationError(f"unknown DSPy optimizer '{name}'", hint=f"use one of {', '.join(OPTIMIZERS)}")
    return _OPTIMIZER_ALIASES[key]


class DSPySettings(BaseModel):
    """What `--dspy-module/--dspy-optimizer/--search-type` and the explicit counts set. None = the preset.

    Presets: MIPROv2 and GEPA use DSPy's `auto` = light/medium/heavy for quick/moderate/heavy; an explicit
    num_candidates or num_trials turns MIPROv2's auto off (DSPy forbids mixing them) and fills the other from
    DSPy's own formula; max_metric_calls does the same for GEPA. Demos (bootstrapped, labeled) are 3/3, 4/4,
    4/8. `bootstrap` is BootstrapFewShot for quick and BootstrapFewShotWithRandomSearch (num_candidates
    programs, 6/12 by default) for moderate/heavy. `labeled` is LabeledFewShot(k=max_labeled_demos).
    """

    model_config = ConfigDict(extra="forbid")

    module: str = "predict"
    optimizer: OptimizerName = "miprov2"
    search_type: SearchType = "quick"
    num_candidates: int | None = Field(default=None, ge=1)
    num_trials: int | None = Field(default=None, ge=1)
    max_bootstrapped_demos: int | None = Field(default=None, ge=0)
    max_labeled_demos: int | None = Field(default=None, ge=0)
    minibatch_size: int | None = Field(default=None, ge=1)
    max_metric_calls: int | None = Field(default=None, ge=1)  # GEPA only
    adapter: Literal["auto", "lean", "json", "chat"] = "auto"  # auto: lean for local task models
    num_threads: int | None = Field(default=None, ge=1)  # None = the run's num_threads
    teacher_temperature: float = Field(default=0.7, ge=0, le=2)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v: Any) -> Any:
        return normalize_optimizer_name(v) if isinstance(v, str) else v

    @field_validator("search_type", mode="before")
    @classmethod
    def _search_type(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower().replace("_search", "")
            if key not in AUTO:
                raise ConfigurationError(f"unknown search type '{v}'", hint="use quick, moderate or heavy")
            return key
        return v

    @field_validator("module")
    @classmethod
    def _module(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("module must not be empty")
        return normalize_module_name(v)

    @classmethod
    def preset(cls, search_type: str = "quick", **overrides: Any) -> DSPySettings:
        return cls(search_type=search_type, **{k: v for k, v in overrides.items() if v is not None})

    # -- resolved values ----------------------------------------------------------------------------------
    @property
    def auto(self) -> str:
        return AUTO[self.search_type]

    @property
    def demos(self) -> tuple[int, int]:
        boot, labeled = _DEMOS[self.search_type]
        return (
            boot if self.max_bootstrapped_demos is None else self.max_bootstrapped_demos,
            labeled if self.max_labeled_demos is None else self.max_labeled_demos,
        )

    def mipro_counts(self, n_predictors: int = 1) -> tuple[int | None, int | None]:
        """(num_candidates, num_trials) for MIPROv2 with auto off, or (None, None) to use auto."""
        if self.num_candidates is None and self.num_trials is None:
            return None, None
        n = self.num_candidates or _AUTO_N[self.auto]
        zeroshot = self.demos == (0, 0)
        num_vars = n_predictors * (1 if zeroshot else 2)
        trials = self.num_trials or int(max(2 * num_vars * math.log2(max(n, 2)), 1.5 * n))
        return n, trials

    def module_calls_per_example(self) -> int:
        """LM calls one forward pass makes, at most (1 for predict/cot, iterations for react/pot; 1 for user
        modules, which we cannot know)."""
        return {"react": _REACT_MAX_ITERS + 1, "pot": 2 * _POT_MAX_ITERS + 1}.get(self.module, 1)

    def typical_calls_per_example(self) -> int:
        """LM calls a typical forward pass makes, for the dry run's estimate: the built-in ReAct has no tool but
        `finish`, so a model that follows the format takes one step and the extract (2), not the most it may (6)."""
        return {"react": 2}.get(self.module, self.module_calls_per_example())

    def estimate_calls(self, n_train: int, n_valid: int) -> int:
        """An upper bound on LM calls (every scored row counted as a new call; cache hits are free, so real runs
        use fewer). The dry run shows a typical run's calls instead: backends/dspy_estimate.py.

        baseline + final scoring: 2·V forward passes. Then, with m = calls per forward pass:
        - miprov2: bootstrapping (N−2 candidate demo sets × T train rows × m, where N = num_candidates or auto's
          n) + instruction proposal (≈ 10 data-summary + N + 2 teacher calls) + trials (without minibatch:
          (trials+1)·V; with minibatch: trials·B + (trials//5 + 2)·V, times m). With auto, V is capped at the
          auto valset size and minibatching starts above 50 rows, as in DSPy.
        - gepa: max_metric_calls·m (auto: DSPy's auto_budget formula) + one reflection call per minibatch.
        - bootstrap: T·m (BootstrapFewShot) or (candidates + 3)·(T + V)·m (with random search).
        - labeled: no calls beyond scoring.
        """
        m = self.module_calls_per_example()
        t, v = max(0, n_train), max(1, n_valid)
        total = 2 * v * m
        boot, _labeled = self.demos
        if self.optimizer == "miprov2":
            n, trials = self.mipro_counts()
            if n is None or trials is None:
                n = _AUTO_N[self.auto]
                zeroshot = self.demos == (0, 0)
                trials = int(max(2 * (1 if zeroshot else 2) * math.log2(n), 1.5 * n))
                v_eff = min(v, _AUTO_VAL[self.auto])
                minibatch = v_eff > 50
            else:
                v_eff = v
                minibatch = self.minibatch_size is not None and self.minibatch_size < v
            b = min(self.minibatch_size or _MIPRO_MINIBATCH, v_eff)
            total += max(0, n - 2) * t * m + 10 + n + 2
            total += (trials * b + (trials // 5 + 2) * v_eff) * m if minibatch else (trials + 1) * v_eff * m
        elif self.optimizer == "gepa":
            calls = self.max_metric_calls or _gepa_auto_budget(self.auto, v)
            total += calls * m + calls // (self.minibatch_size or _GEPA_MINIBATCH) + 1
        elif self.optimizer == "bootstrap":
            if self.search_type == "quick":
                total += t * m if boot else 0
            else:
                total += ((self.num_candidates or _RS_CANDIDATES[self.search_type]) + 3) * (t + v) * m
        return total


def _gepa_auto_budget(auto: str, n_valid: int, n_predictors: int = 1) -> int:
    n = _AUTO_N[auto]
    trials = int(max(2 * (n_predictors * 2) * math.log2(n), 1.5 * n))
    fulls = (trials + 1) // 5 + 1 + (1 if trials < 5 else 0)
    return n_valid + n * 5 + trials * 35 + fulls * n_valid


# -- DSPy modules by name (the `register_dspy_modules` hook; the built-ins predict/cot/pot/react too) ---------


@functools.cache
def dspy_module_registry() -> dict[str, Any]:
    """name → factory(signature) -> dspy.Module, built on first use from every `register_dspy_modules` hook.

    Kept free of DSPy imports: factories import DSPy when called, so listing the modules stays cheap.
    """
    from promptomatix.errors import PluginError
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(dspy_module_registry.cache_clear)
    modules: dict[str, Any] = {}

    def register(name: str, factory: Any, *, plugin: str = "") -> str:
        key = normalize_module_name(name)
        if not callable(factory):
            raise PluginError(f"the DSPy module factory for {name!r} is not callable")
        if key in modules:
            raise PluginError(f"DSPy module {key!r} is already registered", hint="register it under another name")
        modules[key] = factory
        return key

    run_register_hook("register_dspy_modules", "dspy_modules", register)
    return modules
