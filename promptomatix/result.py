"""What a run returns: a typed pydantic result that is also a read-only Mapping of upstream's keys.

Upstream callers do `r["result"]`, `r["metrics"]["optimized_prompt_score"]`; new callers use `r.best_prompt`,
`r.test_score`. Both read the same object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptomatix.metrics.verdict import PairedVerdict


class ScoreCI(BaseModel):
    """A held-out test score with its bootstrap 95% CI (classification: balanced accuracy under the built-in
    metric; under a metric the user gave, its mean)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    accuracy: float | None = None
    macro_f1: float | None = None
    balanced_accuracy: float | None = None
    n_errors: int = 0


class RunMetrics(BaseModel):
    initial_prompt_score: float | None = None  # valid, penalized (what selection used)
    optimized_prompt_score: float | None = None
    initial_prompt_score_raw: float | None = None
    optimized_prompt_score_raw: float | None = None
    initial_test_score: ScoreCI | None = None
    optimized_test_score: ScoreCI | None = None
    test_split: str = "test"  # "valid" when there was no held-out test data
    calls: int = 0
    cached_calls: int = 0
    #: of `calls`: answered without readable token counts, so `tokens` and `cost` hold estimates for them
    estimated_calls: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    time_taken: float = 0.0
    usage_by_role: dict[str, dict[str, Any]] = Field(default_factory=dict)


class OptimizationResult(BaseModel, Mapping[str, Any]):
    """The outcome of `process_input` / `promptomatix optimize`."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    version: int | None = None
    backend: str
    task_type: str
    input_fields: list[str]
    output_fields: list[str]
    labels: list[str] | None = None
    initial_prompt: str
    best_prompt: str
    instructions: str = ""
    demos: list[dict[str, Any]] = Field(default_factory=list)
    metrics: RunMetrics
    stop_reason: str = "completed"
    rounds_completed: int = 0
    n_candidates: int = 0
    synthetic_data: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    data_report: dict[str, Any] = Field(default_factory=dict)
    task_spec: dict[str, Any] = Field(default_factory=dict)
    assumptions: list[str] = Field(default_factory=list)
    feedback_applied: list[str] = Field(default_factory=list)
    kept_version: int | None = None  # refine: the result scored lower (or is unchanged), so this version stays latest
    candidate_prompt: str | None = None  # with kept_version: the search's result the held-out test rejected
    no_change: bool = False  # refine: the result is the prompt it started from; no version made, no feedback applied
    notes: list[str] = Field(default_factory=list)  # held-out errors, an unreliable comparison, a kept version
    verdict: PairedVerdict | None = None  # initial vs optimized on the same held-out rows, with an exact test
    pareto: list[int] = Field(default_factory=list)  # candidate ids on the quality-vs-length front

    # -- typed conveniences ---------------------------------------------------------------------------------------
    @property
    def test_score(self) -> float | None:
        t = self.metrics.optimized_test_score
        return t.mean if t else None

    @property
    def initial_test_score(self) -> float | None:
        t = self.metrics.initial_test_score
        return t.mean if t else None

    @property
    def valid_score(self) -> float | None:
        return self.metrics.optimized_prompt_score

    @property
    def improved(self) -> bool:
        """The paired held-out test says the prompt the result hands out (`best_prompt`, the latest version) is better
        than the initial prompt, and no row errored. A refine that keeps its parent carries a same-prompt verdict
        (never an improvement); a resume that keeps its saved version carries that version's verdict against the
        initial prompt."""
        if self.verdict is not None:
            return self.verdict.improved
        if self.kept_version is not None:
            return False
        a, b = self.metrics.initial_test_score, self.metrics.optimized_test_score
        if a is None or b is None or a.n_errors or b.n_errors:
            return False
        return b.mean > a.mean + 1e-9

    # -- upstream's mapping ---------------------------------------------------------------------------------------
    def _upstream(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "result": self.best_prompt,
            "initial_prompt": self.initial_prompt,
            "session_id": self.session_id,
            "backend": self.backend,
            "metrics": {
                "initial_prompt_score": m.initial_prompt_score,
                "optimized_prompt_score": m.optimized_prompt_score,
                "initial_test_score": m.initial_test_score.model_dump() if m.initial_test_score else None,
                "optimized_test_score": m.optimized_test_score.model_dump() if m.optimized_test_score else None,
                "cost": m.cost,
                "time_taken": m.time_taken,
                "calls": m.calls,
                "tokens": m.tokens,
            },
            "synthetic_data": self.synthetic_data,
            "llm_cost": m.cost,
            "input_fields": self.input_fields,
            "output_fields": self.output_fields,
            "task_type": self.task_type,
        }

    def __getitem__(self, key: str) -> Any:
        return self._upstream()[key]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # Mapping iterates keys, BaseModel fields
        return iter(self._upstream())

    def __len__(self) -> int:
        return len(self._upstream())

    def __contains__(self, key: object) -> bool:
        return key in self._upstream()

    def keys(self):  # type: ignore[override]
        return self._upstream().keys()

    def to_json_dict(self) -> dict[str, Any]:
        """The `--json` shape: upstream's keys plus ours."""
        out = self.model_dump(mode="json", exclude={"synthetic_data", "data_report", "task_spec"})
        out.update({k: v for k, v in self._upstream().items() if k not in ("synthetic_data",)})
        out["metrics"] = {**self.metrics.model_dump(mode="json"), **out["metrics"]}
        out["data_report"] = self.data_report
        return out


class DryRunReport(BaseModel):
    """What `--dry-run` shows: the spec, the rows it would use, and the estimated LM calls."""

    session_id: str | None = None
    task_type: str
    input_fields: list[str]
    output_fields: list[str]
    labels: list[str] | None
    initial_prompt: str
    assumptions: list[str]
    rows: dict[str, list[dict[str, Any]]]
    data_report: dict[str, Any]
    estimated_calls: dict[str, int]
    search_plan: list[str] = Field(default_factory=list)  # the search sized to the data and the budget
    calls_so_far: int
    task_spec: dict[str, Any]
