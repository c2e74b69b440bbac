"""MetricsManager: per-run, per-task-type training and final-eval metrics, with the prompt-length penalty.

Everything is instance state (output fields, λ, judge, label set, registry), so two runs in one process never
interfere; upstream kept λ in a process global and read fields with getattr on dicts (wrong scored 1.0).
Fields are read generically (mapping access, then attribute), so dicts, dspy.Example and dspy.Prediction
all work without importing dspy here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from promptomatix.errors import MetricError
from promptomatix.metrics import structured, text
from promptomatix.metrics.custom import call_custom
from promptomatix.metrics.fields import MISSING, get_field, record_items
from promptomatix.metrics.judge import judge_score
from promptomatix.metrics.registry import MetricRegistry, default_registry, plugin_metric_registry
from promptomatix.metrics.result import MetricResult
from promptomatix.task.task_types import TaskTypeDef, normalize_task_type_name, task_type_registry

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel


class MetricsManager:
    """Metrics for one run.

    `label_set` (known classification labels) enables lenient label reading: a prediction that mentions
    exactly one known label as a word ("Sentiment: Negative.") counts as that label. Without it a
    prediction must equal the gold label after normalization, or its text after the last ':' must.
    """

    def __init__(
        self,
        output_fields: Sequence[str],
        lambda_penalty: float = 0.005,
        judge: ChatModel | None = None,
        label_set: Sequence[str] | None = None,
        *,
        input_fields: Sequence[str] | None = None,
        registry: MetricRegistry | None = None,
        judge_weight: float = 0.5,
    ) -> None:
        if isinstance(output_fields, str):
            output_fields = [output_fields]
        if not output_fields:
            raise MetricError("MetricsManager needs at least one output field", hint="pass output_fields=[...]")
        if not (math.isfinite(lambda_penalty) and lambda_penalty >= 0):
            raise MetricError(f"lambda_penalty must be >= 0, got {lambda_penalty}", hint="use 0 to disable it")
        if not 0.0 <= judge_weight <= 1.0:
            raise MetricError(f"judge_weight must be in [0, 1], got {judge_weight}")
        self.output_fields = list(output_fields)
        self.input_fields = list(input_fields) if input_fields is not None else None
        self.lambda_penalty = float(lambda_penalty)
        self.judge = judge
        self.judge_weight = judge_weight
        self.label_set = [text.normalize_label(x) for x in label_set] if label_set else None
        self.registry = registry if registry is not None else default_registry

    # --- task types ----------------------------------------------------------------------------------

    def known_task_types(self) -> list[str]:
        registered = task_type_registry().names()
        return sorted({*registered, *self.registry.names(), *plugin_metric_registry().names()})

    def resolve(self, task_type: str) -> str:
        """Canonical task-type name, or MetricError listing the known ones (no silent fallback)."""
        raw = str(task_type)
        name = normalize_task_type_name(raw)
        if task_type_registry().get(name) is not None or self._custom(name, final=True) is not None:
            return name
        raise MetricError(
            f"unknown task type {raw!r}; known: {', '.join(self.known_task_types())}",
            hint="register one with register_metric(task_type, fn) or --metric module:function",
        )

    def _custom(self, key: str, *, final: bool) -> Callable[..., Any] | None:
        """A metric registered for the type: this run's registry (user code, --metric) first, then plugins'."""
        for registry in (self.registry, plugin_metric_registry()):
            fn = registry.get(key, final=final)
            if fn is not None:
                return fn
        return None

    def _builtin(self, definition: TaskTypeDef | None, key: str, example: Any, pred: Any, final: bool) -> MetricResult:
        scoring = definition.scoring if definition is not None else "judge"
        if scoring == "extraction":
            return self._information_extraction(example, pred)
        if scoring == "judge":
            return self._open_ended(key, example, pred)
        return self._per_field(scoring, example, pred, final)

    # --- length penalty ------------------------------------------------------------------------------

    @staticmethod
    def length(prompt_text: str) -> int:
        """Whitespace-separated words of the full prompt the model reads (instructions plus demos)."""
        return len(prompt_text.split()) if prompt_text else 0

    def penalty(self, prompt_text: str) -> float:
        """exp(-λ · length(prompt_text)); 1.0 when λ is 0."""
        return math.exp(-self.lambda_penalty * self.length(prompt_text))

    # --- scoring -------------------------------------------------------------------------------------

    def score(
        self,
        task_type: str,
        example: Any,
        pred: Any,
        *,
        prompt_text: str | None = None,
        final: bool = False,
    ) -> MetricResult:
        """Score one example; with `prompt_text` the score is length-penalized (raw_score keeps the raw)."""
        key = self.resolve(task_type)
        definition = task_type_registry().get(key)
        custom = self._custom(key, final=final)
        if custom is None and definition is None:  # a custom type registered with a final metric only
            custom = self._custom(key, final=True)
        if custom is None and definition is not None:
            custom = (definition.final_metric if final else None) or definition.metric
        if custom is not None:
            result = call_custom(custom, key, example, pred)
        else:
            result = self._builtin(definition, key, example, pred, final)
        if prompt_text is None:
            return result
        factor = self.penalty(prompt_text)
        note = f"(length penalty x{factor:.2f} for {self.length(prompt_text)} prompt words)" if factor < 0.995 else ""
        return result.penalized(factor, note)

    def calls_per_row(self, task_type: str) -> int:
        """LM calls one scored row costs: 2 when the built-in judge metric scores it, so that a plan sized to
        --max-calls counts both (a custom metric's own calls are its author's to say)."""
        key = normalize_task_type_name(str(task_type))
        d = task_type_registry().get(key)
        builtin_judge = (
            d is not None and d.metric is None and d.scoring == "judge" and not self._custom(key, final=False)
        )
        return 2 if self.judge is not None and builtin_judge else 1

    def scorer(
        self, task_type: str, *, final: bool = False, prompt_text: str | None = None
    ) -> Callable[[Any, Any], MetricResult]:
        """`fn(example, pred) -> MetricResult`, the shape the Evaluator takes as score_fn."""
        key = self.resolve(task_type)

        def score_fn(example: Any, pred: Any) -> MetricResult:
            return self.score(key, example, pred, prompt_text=prompt_text, final=final)

        return score_fn

    def get_metrics_for_task(self, task_type: str) -> Callable[..., float]:
        """Training metric `fn(example, pred, instructions=None, trace=None) -> float`.

        Penalized when `instructions` is a string. Stock DSPy's bootstrapping calls `metric(ex, pred, trace)`,
        so a non-string third argument is taken as the trace, not as instructions (upstream crashed there).
        """
        key = self.resolve(task_type)

        def metric(example: Any, pred: Any, instructions: Any = None, trace: Any = None) -> float:
            prompt = instructions if isinstance(instructions, str) else None
            return self.score(key, example, pred, prompt_text=prompt).score

        return metric

    def get_final_eval_metrics(self, task_type: str) -> Callable[..., float]:
        """Per-example final-eval metric, same signature, never penalized (aggregates: the Evaluator)."""
        key = self.resolve(task_type)

        def metric(example: Any, pred: Any, instructions: Any = None, trace: Any = None) -> float:
            return self.score(key, example, pred, final=True).score

        return metric

    def bind(self, task_type: str, prompt_text: str) -> Callable[..., float]:
        """Stock-DSPy metric `fn(example, pred, trace=None, pred_name=None, pred_trace=None) -> float`,
        a closure over one candidate's prompt text, so the penalty needs no globals or forked DSPy."""
        key = self.resolve(task_type)

        def metric(example: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> float:
            return self.score(key, example, pred, prompt_text=prompt_text).score

        return metric

    def feedback_metric(self, task_type: str, prompt_text: str | None = None) -> Callable[..., Any]:
        """GEPA metric `fn(gold, pred, trace=None, pred_name=None, pred_trace=None) -> dspy.Prediction`
        with `score` and `feedback`; penalized when prompt_text is given."""
        key = self.resolve(task_type)

        def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
            import dspy

            result = self.score(key, gold, pred, prompt_text=prompt_text)
            return dspy.Prediction(score=result.score, feedback=result.feedback)

        return metric

    # --- built-in metrics ----------------------------------------------------------------------------

    def _gold(self, example: Any, name: str) -> Any:
        value = get_field(example, name)
        if value is MISSING:
            raise MetricError(
                f"gold field {name!r} is missing from the example",
                hint="check output_fields against the data's columns",
            )
        return value

    def _pred(self, pred: Any, name: str) -> Any:
        if isinstance(pred, str) and len(self.output_fields) == 1:
            return pred
        return get_field(pred, name)

    def _per_field(self, scoring: str, example: Any, pred: Any, final: bool) -> MetricResult:
        """Score each output field with the type's metric and average them."""
        fn = {
            "classification": self._classification,
            "multi_label": self._multi_label,
            "qa": self._qa,
            "reasoning": self._reasoning,
            "summarization": self._summarization,
            "translation": self._translation,
        }[scoring]
        results: list[tuple[str, MetricResult]] = []
        for name in self.output_fields:
            gold = self._gold(example, name)
            value = self._pred(pred, name)
            res = MetricResult(0.0, f"missing field {name}", predicted="") if value is MISSING else None
            results.append((name, res or fn(gold, value, final)))
        if len(results) == 1:
            return results[0][1]
        keys = {k for _, r in results for k in r.details}
        return MetricResult(
            score=sum(r.score for _, r in results) / len(results),
            feedback="; ".join(f"{n}: {r.feedback}" for n, r in results),
            details={k: sum(r.details.get(k, 0.0) for _, r in results) / len(results) for k in keys},
        )

    def read_label(self, value: Any, gold: str = "") -> tuple[str, str]:
        """(normalized label read from a prediction, or "" with a reason when it cannot be read)."""
        pred = text.normalize_label(value)
        known = (set(self.label_set) | ({gold} if gold else set())) if self.label_set else None
        if pred == gold or (known is not None and pred in known):
            return pred, ""
        if known is None:
            tail = text.normalize_label(text.as_text(value).rsplit(":", 1)[-1])
            return (tail, "") if tail == gold else (pred, "")
        padded, found = f" {pred} ", []
        for label in sorted(known, key=len, reverse=True):  # longest first: "very negative" before "negative"
            if label and f" {label} " in padded:
                found.append(label)
                padded = padded.replace(f" {label} ", "  ")
        if len(found) == 1:
            return found[0], ""
        if found:
            return "", f"mentions several labels: {', '.join(sorted(found))}"
        return "", f"not one of the labels: {', '.join(sorted(known))}"

    def _classification(self, gold: Any, value: Any, final: bool) -> MetricResult:
        g = text.normalize_label(gold)
        label, reason = self.read_label(value, g)
        if label == g:
            return MetricResult(1.0, f"correct: {g!r}", predicted=label)
        got = label or text.shorten(value)
        return MetricResult(0.0, f"expected {g!r}, got {got!r}" + (f" ({reason})" if reason else ""), predicted=label)

    def _multi_label(self, gold: Any, value: Any, final: bool) -> MetricResult:
        g, p = structured.label_set(gold), structured.label_set(value)
        _, _, f1, jaccard = structured.set_scores(p, g)
        return MetricResult(f1, structured.set_feedback(p, g), details={"f1": f1, "jaccard": jaccard})

    def _qa(self, gold: Any, value: Any, final: bool) -> MetricResult:
        golds = list(gold) if isinstance(gold, (list, tuple)) and gold else [gold]  # several acceptable answers
        em = max(text.exact_match(value, g) for g in golds)
        f1 = max(text.token_f1(value, g) for g in golds)
        details = {"exact_match": em, "f1": f1}
        if em:
            return MetricResult(1.0, "exact match", details=details)
        feedback = f"expected {text.shorten(golds[0])!r}, got {text.shorten(value)!r} (token F1 {f1:.2f})"
        return MetricResult(f1, feedback, details=details)

    def _reasoning(self, gold: Any, value: Any, final: bool) -> MetricResult:
        expected = text.extract_number(gold)
        if expected is None:  # non-numeric final answer ("yes", "B"): compare the normalized answer part
            g, p = text.extract_final_answer(gold), text.extract_final_answer(value)
            if text.exact_match(p, g):
                return MetricResult(1.0, f"correct: {text.shorten(g)!r}")
            return MetricResult(0.0, f"expected {text.shorten(g)!r}, got {text.shorten(p)!r}")
        got = text.extract_number(value)
        want = text.format_number(expected)
        if got is None:
            return MetricResult(0.0, f"no number found in the answer; expected {want}")
        if text.numbers_equal(got, expected):
            return MetricResult(1.0, f"correct: {want}")
        return MetricResult(0.0, f"expected {want}, got {text.format_number(got)}")

    def _summarization(self, gold: Any, value: Any, final: bool) -> MetricResult:
        r = text.rouge_l(value, gold)
        feedback = f"ROUGE-L {r:.2f} against the reference"
        n_pred, n_gold = len(text.as_text(value).split()), len(text.as_text(gold).split())
        if n_gold and (n_pred > 2 * n_gold or 2 * n_pred < n_gold):
            feedback += f"; output is {n_pred} words, reference {n_gold}"
        return MetricResult(r, feedback, details={"rouge_l": r})

    def _translation(self, gold: Any, value: Any, final: bool) -> MetricResult:
        c = text.chrf(value, gold)
        details = {"chrf": c}
        feedback = f"chrF {c:.2f}"
        if final:
            details["bleu"] = text.bleu(value, gold)
            feedback += f", BLEU {details['bleu']:.2f}"
        if c < 1.0:
            feedback += f"; reference: {text.shorten(gold, 100)!r}"
        return MetricResult(c, feedback, details=details)

    def _information_extraction(self, example: Any, pred: Any) -> MetricResult:
        """Field-level F1: over the JSON object in the single output field, or over the output fields."""
        if len(self.output_fields) == 1:
            name = self.output_fields[0]
            gold_raw = self._gold(example, name)
            gold = structured.parse_json_object(gold_raw)
            if gold is None:
                raise MetricError(f"gold field {name!r} is not a JSON object: {text.shorten(gold_raw)!r}")
            value = self._pred(pred, name)
            if value is MISSING:
                return MetricResult(0.0, f"missing field {name}")
            got = structured.parse_json_object(value)
            if got is None:
                return MetricResult(0.0, f"output is not a JSON object: {text.shorten(value)!r}")
        else:
            gold = {name: self._gold(example, name) for name in self.output_fields}
            got = {n: v for n in self.output_fields if (v := self._pred(pred, n)) is not MISSING}
        precision, recall, f1, feedback = structured.field_f1(got, gold)
        return MetricResult(f1, feedback, details={"precision": precision, "recall": recall})

    def _open_ended(self, key: str, example: Any, pred: Any) -> MetricResult:
        """LLM-judge rubric, mixed with ROUGE-L when the example has a reference."""
        values = {n: self._pred(pred, n) for n in self.output_fields}
        missing = [n for n, v in values.items() if v is MISSING]
        if missing:
            return MetricResult(0.0, "; ".join(f"missing field {n}" for n in missing))
        golds = {n: get_field(example, n) for n in self.output_fields}
        if len(self.output_fields) == 1:
            response = text.as_text(next(iter(values.values())))
            gold = next(iter(golds.values()))
            reference = None if gold is MISSING else text.as_text(gold)
        else:
            response = "\n".join(f"{n}: {text.as_text(v)}" for n, v in values.items())
            has_all = all(g is not MISSING for g in golds.values())
            reference = "\n".join(f"{n}: {text.as_text(g)}" for n, g in golds.items()) if has_all else None
        if self.input_fields is not None:
            inputs = {n: get_field(example, n) for n in self.input_fields}
        else:
            inputs = {k: v for k, v in record_items(example).items() if k not in self.output_fields}
        task_input = "\n".join(f"{k}: {text.as_text(v)}" for k, v in inputs.items() if v is not MISSING)
        return judge_score(
            self.judge,
            task_input=task_input,
            response=response,
            reference=reference,
            task_type=key,
            judge_weight=self.judge_weight,
        )
