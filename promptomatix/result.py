"""What a run returns: a typed pydantic result that is also a read-only Mapping of upstream's keys.

Upstream callers do `r["result"]`, `r["metrics"]["optimized_prompt_score"]`; new callers use `r.best_prompt`,
`r.test_score`. Both read the same object, and upstream's keys keep upstream's meaning and shape: `result` is prompt
text to use as a system prompt, `*_prompt_score` are valid scores without the length penalty, `synthetic_data`
is a list of rows. `dict(r)` is a plain JSON-serializable dict of them; `r.model_dump(mode="json")` has all fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from promptomatix.metrics.verdict import PairedVerdict
from promptomatix.sessions.models import SessionSummary


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
    """Scores and spending. `*_prompt_score` are mean valid scores without the length penalty (upstream's meaning);
    `*_prompt_score_penalized` are those times the length penalty, which is what the search selected by."""

    initial_prompt_score: float | None = None
    optimized_prompt_score: float | None = None
    initial_prompt_score_penalized: float | None = None
    optimized_prompt_score_penalized: float | None = None
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

    @computed_field  # type: ignore[prop-decorator]  # the name 0.2's callers read; same value as the upstream key
    @property
    def initial_prompt_score_raw(self) -> float | None:
        return self.initial_prompt_score

    @computed_field  # type: ignore[prop-decorator]
    @property
    def optimized_prompt_score_raw(self) -> float | None:
        return self.optimized_prompt_score


class _UpstreamKeys(Mapping[str, Any]):
    """Read like upstream's dict (`r["result"]`, `dict(r)`), from `_upstream()`. It comes before BaseModel among the
    bases, so its `__iter__` (keys, as a Mapping's) wins over BaseModel's (fields)."""

    def _upstream(self) -> dict[str, Any]:
        raise NotImplementedError

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


class OptimizationResult(_UpstreamKeys, BaseModel):
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
    best_prompt: str  # the transcript the task model reads: [system], each demo as [user]/[assistant], `{field}` slots
    prompt_text: str = ""  # `r["result"]`: instructions, output-format line and demos as worked examples, one text
    instructions: str = ""
    demos: list[dict[str, Any]] = Field(default_factory=list)
    metrics: RunMetrics
    stop_reason: str = "completed"
    rounds_completed: int = 0
    n_candidates: int = 0
    data_splits: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # the train and valid rows used
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
        """The optimized prompt's mean valid score, without the length penalty."""
        return self.metrics.optimized_prompt_score

    @property
    def synthetic_data(self) -> list[dict[str, Any]]:
        """Upstream's `synthetic_data`: the train then the valid rows, one list (given or generated alike)."""
        return [*self.data_splits.get("train", []), *self.data_splits.get("valid", [])]

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
            "result": self.prompt_text or self.best_prompt,
            "initial_prompt": self.initial_prompt,
            "session_id": self.session_id,
            "backend": self.backend,
            "metrics": {
                "initial_prompt_score": m.initial_prompt_score,
                "optimized_prompt_score": m.optimized_prompt_score,
                "initial_prompt_score_penalized": m.initial_prompt_score_penalized,
                "optimized_prompt_score_penalized": m.optimized_prompt_score_penalized,
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

    def to_json_dict(self) -> dict[str, Any]:
        """The `--json` shape: upstream's keys plus ours."""
        out = self.model_dump(mode="json", exclude={"data_splits", "data_report", "task_spec"})
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


class SessionListing(_UpstreamKeys, SessionSummary):
    """One row of `list_sessions()`: a SessionSummary that also reads like upstream's dict (`s["session_id"]`,
    `s["created_at"]`, `s["initial_input"]`, `s["latest_optimized_prompt"]`, and every summary field)."""

    initial_input: str = ""  # the task description the run started from (upstream: initial_human_input)
    latest_optimized_prompt: str | None = None  # the latest version as prompt text (what `r["result"]` held)

    @classmethod
    def of_summary(cls, summary: SessionSummary, session: Any | None) -> SessionListing:
        """The summary with upstream's two extra keys read from the session (None: left empty, e.g. unreadable)."""
        extra: dict[str, Any] = {}
        if session is not None:
            latest = session.latest_version() if session.versions else None
            extra = {"initial_input": session.raw_input, "latest_optimized_prompt": _prompt_text_of(session, latest)}
        return cls(**summary.model_dump(), **extra)

    def _upstream(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _prompt_text_of(session: Any, version: Any | None) -> str | None:
    """A saved version as `r["result"]` reads (instructions, format line, demos as examples); its stored transcript
    when the session's task spec does not read."""
    if version is None:
        return None
    try:
        from promptomatix.run_report import prompt_text
        from promptomatix.task import TaskSpec

        spec = TaskSpec(**session.task_spec)
        return prompt_text(spec, version.instructions or version.prompt, version.settings.get("format_line"),
                           list(version.demos))  # fmt: skip
    except Exception:  # a hand-edited spec: the listing still shows the prompt as stored
        return version.prompt
