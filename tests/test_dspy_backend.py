"""The dspy backend with fake LMs: every optimizer and module path end to end, demos kept and saved, the saved
program reloads to the same prompt, fallback to the initial program, budget stops, no test-split access, and
two concurrent runs that never share an LM."""

from __future__ import annotations

import json
import re
import threading
import typing

import dspy
import pytest

from promptomatix.backends import dspy_programs
from promptomatix.backends.base import RunContext
from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings, build_signature, load_program
from promptomatix.backends.dspy_modules import (
    PENALTY_ATTR,
    normalize_module_name,
    register_module,
    registered_modules,
    render_program,
)
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.errors import BudgetExceeded, ConfigurationError
from promptomatix.lm.boundary import Budget, LMBoundary
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import MetricsManager
from promptomatix.task.models import FieldSpec, TaskSpec
from promptomatix.task.task_types import TaskType
from tests.backend_fakes import GuardedData

SPEC = TaskSpec(
    description="Classify the sentiment of a movie review as positive or negative",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="review")],
    output_fields=[FieldSpec(name="label", labels=["positive", "negative"])],
    initial_prompt="Classify the review.",
)
INITIAL = PromptCandidate(instructions="Classify the review.")
GOOD_INSTRUCTION = "Say negative if the review complains, otherwise positive."


def rows(n, offset=0, tag=""):
    out = []
    for i in range(n):
        good = (i + offset) % 2 == 0
        words = "great wonderful" if good else "awful boring"
        out.append({"review": f"{words} {tag} film number {i + offset}", "label": "positive" if good else "negative"})
    return out


def data(tag=""):
    return GuardedData(rows(12, 0, tag), rows(9, 100, tag))


# -- fake models that answer DSPy's JSONAdapter prompts ----------------------------------------------------------


def requested_fields(messages):
    """The output fields a JSONAdapter prompt asks for, read from its last line."""
    m = re.search(r"Respond with a JSON object in the following order of fields: (.+)", messages[-1]["content"], re.S)
    return re.findall(r"`([^`]+)`", m.group(1)) if m else []


def instructions_of(messages):
    return messages[0]["content"].split("your objective is:", 1)[-1]


def task_model(rule):
    """A task model answering every requested field; `rule(messages, review_text) -> label`."""

    def answer(messages):
        out = {}
        for name in requested_fields(messages):
            if name == "label":
                out[name] = rule(messages, messages[-1]["content"])
            elif name == "next_tool_name":  # ReAct: finish at once
                out[name] = "finish"
            elif name == "next_tool_args":
                out[name] = {}
            else:  # reasoning, next_thought
                out[name] = "The review's wording decides the label."
        return json.dumps(out)

    return answer


def truth(text):
    return "negative" if "awful" in text else "positive"


def right_with_instruction_or_demos(messages, text):
    """Right when the instructions mention complaints or when demos precede the question; else 'positive'."""
    good = "complains" in instructions_of(messages) or len(messages) > 2
    return truth(text) if good else "positive"


def right_without_demos_only(messages, text):
    """Right with no demos; demos confuse it into always answering 'positive'."""
    return truth(text) if len(messages) == 2 else "positive"


def teacher_model(messages):
    """Answers MIPROv2's proposer/summarizer and GEPA's reflection prompts: every requested field gets the good
    instruction (all their output fields are strings)."""
    return json.dumps({name: GOOD_INSTRUCTION for name in requested_fields(messages)})


def make_ctx(rule=right_with_instruction_or_demos, budget=None, lam=0.0, feedback=None, tag=""):
    task = FakeLM(default=task_model(rule), model=f"fake/task{tag}")
    teacher = FakeLM(default=teacher_model, model=f"fake/teacher{tag}")
    boundary = LMBoundary({"task": task, "teacher": teacher}, budget=budget)
    mm = MetricsManager(output_fields=["label"], lambda_penalty=lam, label_set=["positive", "negative"])
    events = []
    ctx = RunContext(
        boundary=boundary,
        metrics=mm,
        spec=SPEC,
        num_threads=2,
        seed=1,
        progress=events.append,
        human_feedback=feedback or [],
    )
    return ctx, task, teacher, events


SMALL = {
    "miprov2": {"num_candidates": 2, "num_trials": 3},
    "gepa": {"max_metric_calls": 30},
    "bootstrap": {},
    "labeled": {},
}


def run(optimizer="miprov2", module="predict", ctx=None, **kw):
    ctx = ctx or make_ctx()[0]
    settings = DSPySettings(optimizer=optimizer, module=module, **{**SMALL[optimizer], **kw})
    return DSPyOptimizer(settings).compile(ctx, INITIAL, data()), ctx


# -- signature, modules, settings --------------------------------------------------------------------------------


def test_signature_is_typed_from_the_spec():
    spec = TaskSpec(
        description="d",
        task_type=TaskType.CLASSIFICATION,
        input_fields=[FieldSpec(name="text", description="the text"), FieldSpec(name="n", type="int")],
        output_fields=[
            FieldSpec(name="label", labels=["a", "b"]),
            FieldSpec(name="score", type="float"),
            FieldSpec(name="ok", type="bool"),
            FieldSpec(name="tags", type="list"),
        ],
        initial_prompt="Do the task.",
    )
    sig = build_signature(spec)
    assert sig.instructions == "Do the task."
    assert list(sig.input_fields) == ["text", "n"] and sig.input_fields["n"].annotation is int
    assert typing.get_args(sig.output_fields["label"].annotation) == ("a", "b")
    assert sig.output_fields["score"].annotation is float and sig.output_fields["ok"].annotation is bool
    assert sig.output_fields["tags"].annotation == list[str]
    assert "the text" in str(sig.input_fields["text"].json_schema_extra)
    assert build_signature(spec, "Other.").instructions == "Other."


def test_module_names_accept_upstream_spellings_and_unknown_ones_fail():
    for name, key in [
        ("dspy.Predict", "predict"),
        ("Predict", "predict"),
        ("dspy.ChainOfThought", "cot"),
        ("COT", "cot"),
        ("dspy.ProgramOfThought", "pot"),
        ("dspy.ReAct", "react"),
    ]:
        assert normalize_module_name(name) == key
        assert DSPySettings(module=name).module == key
    with pytest.raises(ConfigurationError, match="known: cot, pot, predict, react"):
        DSPyOptimizer(DSPySettings(module="dspy.Nope"))
    with pytest.raises(ConfigurationError):
        DSPySettings(optimizer="simba")
    assert DSPySettings(optimizer="dspy.MIPROv2").optimizer == "miprov2"
    assert DSPySettings(optimizer="BootstrapFewShotWithRandomSearch").optimizer == "bootstrap"


def test_presets_and_estimates():
    q = DSPySettings.preset("quick_search")
    assert (q.search_type, q.auto, q.demos) == ("quick", "light", (3, 3))
    assert DSPySettings.preset("heavy").auto == "heavy"
    assert q.mipro_counts() == (None, None)  # auto mode
    explicit = DSPySettings.preset("moderate", num_candidates=4)
    n, trials = explicit.mipro_counts()
    assert n == 4 and trials == 8  # DSPy's formula: max(2·2·log2(4), 1.5·4)
    with pytest.raises(ConfigurationError):
        DSPySettings.preset("turbo")
    assert DSPySettings(optimizer="labeled").estimate_calls(12, 9) == 18  # baseline + final scoring only
    assert DSPySettings(optimizer="miprov2").estimate_calls(12, 9) > DSPySettings(optimizer="bootstrap").estimate_calls(
        12, 9
    )


# -- each optimizer end to end -----------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["miprov2", "gepa", "bootstrap", "labeled"])
def test_each_optimizer_runs_end_to_end(optimizer):
    ctx, _task, teacher, events = make_ctx()
    res, _ = run(optimizer, ctx=ctx)
    assert res.backend == "dspy" and res.stop_reason == "completed"
    assert res.initial_valid_raw == pytest.approx(0.5)  # constant 'positive' = balanced accuracy 0.5
    assert res.valid_raw == pytest.approx(1.0) and res.valid_penalized == pytest.approx(1.0)
    assert ctx.boundary.usage().total.calls <= DSPySettings(optimizer=optimizer, **SMALL[optimizer]).estimate_calls(
        12, 9
    )
    assert res.best_predict({"review": "awful boring"}) == {"label": "negative"}
    assert res.initial_predict({"review": "awful boring"}) == {"label": "positive"}
    assert res.candidates[0].origin == "initial" and res.candidates[-1].origin == optimizer
    assert res.candidates[-1].valid_raw == pytest.approx(1.0)
    assert res.program_json and res.settings["optimizer"] == optimizer
    stages = [e.stage for e in events]
    scored = next(i for i, e in enumerate(events) if e.message.startswith("initial valid score"))
    # the baseline's score is told before the compiled program's (MIPROv2 and BootstrapFewShot start beside it)
    assert stages[0] == "baseline" and scored < stages.index("candidate") and stages[-1] == "done"
    assert INITIAL.instructions == "Classify the review." and INITIAL.demos == []  # input not mutated
    if optimizer in ("miprov2", "gepa"):  # instruction optimizers: the teacher proposed the better instruction
        assert teacher.calls
    if optimizer == "gepa":
        assert res.instructions == GOOD_INSTRUCTION and res.demos == []
    else:
        assert res.demos


def test_miprov2_quick_uses_dspy_auto_light_on_tiny_data():
    ctx, *_ = make_ctx()
    res = DSPyOptimizer(DSPySettings()).compile(ctx, INITIAL, data())
    assert res.settings["dspy_auto"] == "light" and res.settings["num_trials"] is None
    assert res.valid_raw == pytest.approx(1.0)
    assert len(res.candidates) > 2  # MIPROv2's trial programs are recorded too
    assert any("DSPy full valid score" in c.note for c in res.candidates)


def test_bootstrap_moderate_uses_random_search():
    res, _ = run("bootstrap", search_type="moderate", num_candidates=2)
    assert res.settings["dspy_optimizer"] == "BootstrapFewShotWithRandomSearch"
    assert res.valid_raw == pytest.approx(1.0)


def test_gepa_feedback_and_human_feedback_reach_the_reflection_lm():
    ctx, _task, teacher, _ = make_ctx(feedback=["too vague about sarcasm"])
    run("gepa", ctx=ctx)
    reflection = "\n".join(m["content"] for call in teacher.calls for m in call["messages"])
    assert "expected 'negative', got 'positive'" in reflection  # the MetricsManager's feedback
    assert "too vague about sarcasm" in reflection


# -- modules ---------------------------------------------------------------------------------------------------


def test_chain_of_thought_module():
    res, _ = run("bootstrap", module="dspy.ChainOfThought")
    assert res.valid_raw == pytest.approx(1.0)
    assert res.demos and all("reasoning" in d for d in res.demos)  # bootstrapped traces carry the reasoning
    assert "`reasoning`" in res.prompt


def test_react_module_without_tools_runs():
    res, _ = run("labeled", module="react")
    assert res.valid_raw == pytest.approx(1.0)
    assert "### predictor: react" in res.prompt and "### predictor: extract.predict" in res.prompt


def test_program_of_thought_without_deno_is_a_clear_configuration_error(monkeypatch):
    monkeypatch.setattr(dspy_programs, "_deno_available", lambda: False)
    opt = DSPyOptimizer(DSPySettings(module="pot", optimizer="labeled"))  # checked at compile time
    ctx, task, *_ = make_ctx()
    with pytest.raises(ConfigurationError, match="Deno") as err:
        opt.compile(ctx, INITIAL, data())
    assert "dspy[deno]" in (err.value.hint or "")
    assert not task.calls


class Drafted(dspy.Module):
    def __init__(self, signature):
        super().__init__()
        self.answer = dspy.Predict(signature)

    def forward(self, **kwargs):
        return self.answer(**kwargs)


def test_user_modules_from_python():
    res = DSPyOptimizer(DSPySettings(module="drafted", optimizer="labeled"), modules={"drafted": Drafted}).compile(
        make_ctx()[0], INITIAL, data()
    )
    assert res.valid_raw == pytest.approx(1.0) and res.demos
    register_module("Drafted2", Drafted)
    try:
        assert DSPyOptimizer(DSPySettings(module="drafted2")).settings.module == "drafted2"
    finally:
        from promptomatix.backends import dspy_modules

        dspy_modules._USER_MODULES.pop("drafted2", None)
    with pytest.raises(ConfigurationError):
        register_module("cot", Drafted)
    empty = DSPyOptimizer(DSPySettings(module="empty", optimizer="labeled"), modules={"empty": lambda s: dspy.Module()})
    with pytest.raises(ConfigurationError, match="no predictors"):
        empty.compile(make_ctx()[0], INITIAL, data())


def test_runs_do_not_mutate_the_module_registry():
    before = registered_modules()
    DSPyOptimizer(DSPySettings(module="drafted", optimizer="labeled"), modules={"drafted": Drafted}).compile(
        make_ctx()[0], INITIAL, data()
    )
    assert registered_modules() == before


# -- demos, saving and loading ---------------------------------------------------------------------------------


def test_demos_survive_into_the_result_and_the_saved_program_which_reloads(tmp_path):
    res, _ = run("bootstrap")
    assert len(res.demos) == 3 and all(set(d) == {"review", "label"} for d in res.demos)
    state = res.program_json  # a dspy.Predict's state, as `Predict.save` writes it
    assert [{"review": d["review"], "label": d["label"]} for d in state["demos"]] == res.demos
    assert res.program_json["metadata"]["promptomatix"] == {"module": "predict", "adapter": "json"}
    for d in res.demos:
        assert f"[user]\n[[ ## review ## ]]\n{d['review']}" in res.prompt
        assert f'"label": "{d["label"]}"' in res.prompt

    saved = json.loads(json.dumps(res.program_json))  # what the session stores
    program = load_program(SPEC, DSPySettings(), saved)
    assert render_program(program, dspy.JSONAdapter()) == res.prompt
    path = tmp_path / "program.json"  # also loadable with plain DSPy
    path.write_text(json.dumps(saved))
    plain = dspy.Predict(build_signature(SPEC))
    plain.load(str(path))
    assert [{k: d[k] for k in ("review", "label")} for d in plain.demos] == res.demos
    assert plain.signature.instructions == res.instructions
    with pytest.raises(ConfigurationError):
        load_program(SPEC, DSPySettings(module="cot"), saved)


def test_instructions_and_demos_from_miprov2_are_both_kept(tmp_path):
    res, _ = run("miprov2")
    assert res.instructions == GOOD_INSTRUCTION and res.demos
    program = load_program(SPEC, DSPySettings(), res.program_json)
    assert render_program(program, dspy.JSONAdapter()) == res.prompt
    assert f"your objective is: \n        {GOOD_INSTRUCTION}" in res.prompt


def test_initial_demos_and_format_line_go_into_the_initial_program():
    initial = PromptCandidate(
        instructions="Classify.", demos=[{"review": "lovely", "label": "positive"}], format_line="Answer in JSON."
    )
    ctx, *_ = make_ctx()
    res = DSPyOptimizer(DSPySettings(optimizer="labeled")).compile(ctx, initial, data())
    assert "Classify." in res.initial_prompt and "Answer in JSON." in res.initial_prompt
    assert "[[ ## review ## ]]\nlovely" in res.initial_prompt


# -- selection, penalty, budget ----------------------------------------------------------------------------------


def test_falls_back_to_the_initial_program_when_the_compiled_one_is_worse():
    ctx, *_ = make_ctx(rule=right_without_demos_only)
    res, _ = run("labeled", ctx=ctx)
    assert res.initial_valid_raw == pytest.approx(1.0)
    assert res.valid_raw == pytest.approx(1.0) and res.demos == []
    assert "kept the initial program" in res.stop_reason
    assert res.candidates[-1].valid_raw == pytest.approx(0.5) and "not selected" in res.candidates[-1].note
    assert res.program_json["demos"] == []
    assert res.best_predict({"review": "awful"}) == {"label": "negative"}


def test_length_penalty_reaches_dspy_and_counts_instructions_not_demos():
    ctx, *_ = make_ctx(lam=0.05)
    seen = []
    score = ctx.metrics.score

    def spy(*a, prompt_text=None, **kw):
        seen.append(prompt_text)
        return score(*a, prompt_text=prompt_text, **kw)

    ctx.metrics.score = spy
    res, _ = run("bootstrap", ctx=ctx)
    dspy_calls = [p for p in seen if p is not None]
    assert dspy_calls and all(p == "Classify the review." for p in dspy_calls)  # each program's instructions
    pen = ctx.metrics.penalty("Classify the review.")
    assert res.initial_valid_penalized == pytest.approx(0.5 * pen)
    # Demos that make every answer right are kept under a strong λ: it counts instruction words (as upstream's
    # does); when demos counted, 3 demos (~40 words) at λ = 0.05 threw away a doubling of accuracy.
    assert res.demos and res.valid_raw == 1.0 and res.valid_penalized == pytest.approx(pen)


def test_demos_that_do_not_help_lose_the_tie_to_the_prompt_with_less_to_read():
    ctx, *_ = make_ctx(rule=lambda messages, text: "positive", lam=0.05)
    res, _ = run("bootstrap", ctx=ctx)
    assert res.valid_raw == res.initial_valid_raw == 0.5
    assert res.demos == [] and "kept the initial program" in res.stop_reason


def test_budget_stop_inside_dspy_keeps_the_initial_program():
    ctx, *_ = make_ctx(budget=Budget(max_calls=9 + 6))
    res, _ = run("miprov2", ctx=ctx)
    assert res.stop_reason.startswith("budget")
    assert res.valid_raw == res.initial_valid_raw and res.demos == []
    assert ctx.boundary.usage().total.calls <= 15
    with pytest.raises(BudgetExceeded):  # later calls (the pipeline's test scoring) see a plain BudgetExceeded
        res.best_predict({"review": "a new review never seen"})


def test_budget_too_small_for_the_baseline_raises():
    ctx, *_ = make_ctx(budget=Budget(max_calls=3))
    with pytest.raises(BudgetExceeded):
        run("labeled", ctx=ctx)


def test_predictions_carry_the_penalty_tag_privately():
    program = load_program(SPEC, DSPySettings(), run("labeled")[0].program_json)
    ctx, *_ = make_ctx()
    from promptomatix.lm.dspy_engine import make_dspy_lm

    with dspy.context(lm=make_dspy_lm(ctx.task_lm), adapter=dspy.JSONAdapter()):
        pred = program(review="awful")
    assert pred.label == "negative" and list(pred.keys()) == ["label"]
    assert "Classify the review." in getattr(pred, PENALTY_ATTR)


# -- isolation ---------------------------------------------------------------------------------------------------


def test_two_runs_in_threads_use_only_their_own_models():
    ctx_a, task_a, teacher_a, _ = make_ctx(tag="alpha")
    ctx_b, task_b, teacher_b, _ = make_ctx(rule=lambda m, t: "positive", tag="beta")  # a model that never learns
    results = {}

    def go(name, ctx, optimizer):
        settings = DSPySettings(optimizer=optimizer, **SMALL[optimizer])
        results[name] = DSPyOptimizer(settings).compile(ctx, INITIAL, data(name))

    threads = [
        threading.Thread(target=go, args=("alpha", ctx_a, "miprov2")),
        threading.Thread(target=go, args=("beta", ctx_b, "miprov2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(results) == {"alpha", "beta"}
    for fake, own, other in [
        (task_a, "alpha", "beta"),
        (teacher_a, "alpha", "beta"),
        (task_b, "beta", "alpha"),
        (teacher_b, "beta", "alpha"),
    ]:
        texts = ["\n".join(m["content"] for m in call["messages"]) for call in fake.calls]
        assert texts and not any(other in t for t in texts)
        assert any(own in t for t in texts)
    assert results["alpha"].valid_raw == pytest.approx(1.0)
    assert results["beta"].valid_raw == pytest.approx(0.5)
    assert ctx_a.boundary.usage().total.calls == len(task_a.calls) + len(teacher_a.calls)


def test_local_task_models_get_the_lean_json_adapter():
    """Small local models answer one label for everything under DSPy's full JSON format; the lean adapter shows
    them the instructions and `name: value` inputs only, and still asks for JSON under the output schema."""
    task = FakeLM(default=lambda m: json.dumps({"label": truth(m[-1]["content"])}), model="local/fake-task")
    boundary = LMBoundary({"task": task, "teacher": FakeLM(default="{}", model="local/fake-teacher")})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=2, seed=1)
    opt = DSPyOptimizer(DSPySettings(optimizer="labeled", max_labeled_demos=2))
    res = opt.compile(ctx, PromptCandidate(instructions="Say negative if the review complains."), data())
    first = task.calls[0]
    system, user = first["messages"][0]["content"], first["messages"][-1]["content"]
    assert system == "Say negative if the review complains."
    assert user.startswith("review: ") and "[[ ##" not in user
    assert first["json_schema"]["properties"]["label"]["enum"] == ["positive", "negative"]
    assert res.program_json["metadata"]["promptomatix"]["adapter"] == "lean"
    assert res.prompt.startswith("[system]\nSay negative if the review complains.")
    # DSPy's own signatures (here: a proposer-like one) keep the full JSON format.
    from promptomatix.backends.dspy_programs import LeanJSONAdapter

    class Other(dspy.Signature):
        """Propose an instruction."""

        summary: str = dspy.InputField()
        proposed_instruction: str = dspy.OutputField()

    lean = LeanJSONAdapter(["review"], ["label"])
    other = lean.format(Other, demos=[], inputs={"summary": "s"})
    assert "proposed_instruction" in other[0]["content"] and "[[ ## summary ## ]]" in other[-1]["content"]


def test_the_caching_json_adapter_sends_what_stock_json_adapter_sends():
    # It builds the response schema and system message once per signature (a sixth of a MIPROv2 run's CPU went to
    # rebuilding them per call); the messages and the schema must stay exactly DSPy's.
    from promptomatix.backends.dspy_programs import CachingJSONAdapter
    from promptomatix.lm.dspy_engine import BoundaryEngine

    sig = build_signature(SPEC, "Say negative if the review complains.")
    other = sig.with_instructions("Another instruction.")
    lm = BoundaryEngine(None)
    ours, stock = CachingJSONAdapter(), dspy.JSONAdapter()
    demos = [dspy.Example(review="awful film", label="negative"), dspy.Example(review=["not", "a", "str"], label="x")]
    for s in (sig, other, sig):
        for _ in range(2):  # the second time reads the cache
            a: dict = {}
            b: dict = {}
            ours._prepare_response_format(lm, a, s)
            stock._prepare_response_format(lm, b, s)
            assert a["response_format"].model_json_schema() == b["response_format"].model_json_schema()
            for inputs in ({"review": "great"}, {"review": 'quote " and \u00e9 and\nnewline'}, {"review": 7}):
                assert ours.format(s, demos, inputs) == stock.format(s, demos, inputs)
    # the schema reads only the outputs and the demos only the fields: one entry for both instructions
    assert len(ours._formats) == 1 and len(ours._systems) == 2 and len(ours._demos) == 1
    fewer = demos[:1]  # another demo set is formatted anew, still as stock formats it
    assert ours.format(other, fewer, {"review": "great"}) == stock.format(other, fewer, {"review": "great"})
    assert len(ours._demos) == 2
