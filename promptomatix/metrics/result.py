"""What every metric returns: a score in [0, 1] plus a short feedback sentence for reflective optimizers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class MetricResult:
    """One example's score.

    `score` is what an optimizer sees (length-penalized when a prompt was bound); `raw_score` is the score
    before the penalty (equal to `score` when none was applied). `details` holds secondary numbers the
    evaluator averages (e.g. exact_match, bleu, jaccard). `predicted` is the normalized label a
    classification metric read from the output ("" when it could not read one; None for other metrics).
    `user_metric` is True when the score came from a metric the user gave (`--metric`, `metric=`,
    `register_metric`, a plugin's or a task type's own metric): that metric then defines quality, so the
    evaluator reports its mean as the primary score (not balanced accuracy of the label field).
    """

    score: float
    feedback: str = ""
    raw_score: float | None = None
    details: dict[str, float] = field(default_factory=dict)
    predicted: str | None = None
    user_metric: bool = field(default=False, compare=False)  # provenance, not part of the result's value

    def __post_init__(self) -> None:
        if self.raw_score is None:
            object.__setattr__(self, "raw_score", self.score)

    def penalized(self, factor: float, note: str = "") -> MetricResult:
        """The same result with `score = raw_score * factor`, keeping the raw score."""
        raw = self.raw_score if self.raw_score is not None else self.score
        feedback = f"{self.feedback} {note}".strip() if note else self.feedback
        return replace(self, score=raw * factor, raw_score=raw, feedback=feedback)
