"""The simple_meta_prompt loop with the fake LM: rounds/K/budget, selection never below the initial prompt,
failures and human feedback reach the teacher, and the test split is never touched."""

from __future__ import annotations

import json
import re

import pytest

from promptomatix.backends.base import RunContext
from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import StrategyRegistry, TemplateStrategy
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


def rows(n, offset=0):
    out = []
    for i in range(n):
        good = (i + offset) % 2 == 0
        out.append(
            {
                "review": f"{'great wonderful' if good else 'awful boring'} film number {i + offset}",
                "label": "positive" if good else "negative",
            }
        )
    return out


def task_answer(messages):
    """A task model that is right only when the system prompt mentions 'complains'; else always 'positive'."""
    system = messages[0]["content"]
    user = messages[-1]["content"]
    if "complains" in system:
        return json.dumps({"label": "negative" if "awful" in user else "positive"})
    return json.dumps({"label": "positive"})


def make_ctx(teacher_answers, budget=None, feedback=None, seen=None):
    def teacher(messages):
        if seen is not None:
            seen.append(messages[-1]["content"])
        return teacher_answers(messages) if callable(teacher_answers) else teacher_answers

    task = FakeLM(default=task_answer, model="fake/task")
    teach = FakeLM(default=teacher, model="fake/teacher")
    boundary = LMBoundary({"task": task, "teacher": teach}, budget=budget)
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4, seed=1, human_feedback=feedback or [])
    return ctx, task, teach


def assert_no_demo_scored_against_itself(task):
    with_demos = [c["messages"] for c in task.calls if len(c["messages"]) > 2]
    assert with_demos, "no candidate with demos was scored"
    for messages in with_demos:
        demo_inputs = {m["content"] for m in messages[1:-1] if m["role"] == "user"}
        assert messages[-1]["content"] not in demo_inputs


def only_rewrites(**kw):
    return MetaSettings(strategies=["rewrite_from_failures"], **kw)


def test_loop_improves_when_the_teacher_finds_a_better_prompt():
    good = json.dumps({"prompt": "Say negative if the text complains or criticizes, otherwise positive."})
    ctx, _task, _teach = make_ctx(good)
    opt = MetaPromptOptimizer(only_rewrites(rounds=2, candidates_per_round=2, minibatch_size=4))
    initial = PromptCandidate(instructions=SPEC.initial_prompt)
    res = opt.compile(ctx, initial, GuardedData(rows(8), rows(8, 100)))
    assert res.initial_valid_raw == pytest.approx(0.5)  # constant 'positive' = balanced accuracy 0.5
    assert res.valid_raw == pytest.approx(1.0)
    assert "complains" in res.instructions
    assert initial.instructions == "Classify the review."  # input not mutated
    assert res.best_predict({"review": "awful boring"})["label"] == "negative"


def test_never_returns_a_prompt_below_the_initial_on_valid():
    bad = json.dumps({"prompt": "Always answer positive no matter what the review says."})
    ctx, *_ = make_ctx(bad)
    res = MetaPromptOptimizer(only_rewrites(rounds=3)).compile(
        ctx, PromptCandidate(instructions="Classify; negative if it complains."), GuardedData(rows(6), rows(6, 50))
    )
    assert res.valid_penalized >= res.initial_valid_penalized
    assert res.instructions == "Classify; negative if it complains."


def test_rounds_and_candidates_per_round_are_respected():
    counter = iter(range(1000))
    ctx, _, teach = make_ctx(lambda m: json.dumps({"prompt": f"Variant number {next(counter)} of the prompt here."}))
    settings = only_rewrites(rounds=3, candidates_per_round=2, patience=5)
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert len(teach.calls) == 6  # 3 rounds × 2 candidates
    assert res.rounds_completed == 3
    assert len(res.candidates) == 1 + 6
    assert {c.round for c in res.candidates} == {0, 1, 2, 3}


def test_patience_stops_early():
    ctx, _, _teach = make_ctx(json.dumps({"prompt": "A prompt that does not help at all here."}))
    res = MetaPromptOptimizer(only_rewrites(rounds=5, candidates_per_round=1, patience=1)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert res.rounds_completed == 1 and "no improvement" in res.stop_reason


def test_failures_and_human_feedback_reach_the_meta_prompt():
    seen: list[str] = []
    ctx, *_ = make_ctx(
        json.dumps({"prompt": "Another attempt at a prompt text."}), feedback=["too vague about sarcasm"], seen=seen
    )
    MetaPromptOptimizer(only_rewrites(rounds=1, candidates_per_round=1)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert seen, "teacher never called"
    meta = seen[0]
    assert "too vague about sarcasm" in meta
    assert "expected: negative" in meta and "got: positive" in meta  # a failing train example with feedback


def test_budget_stops_the_loop_and_keeps_the_best_so_far():
    good = json.dumps({"prompt": "Say negative if the text complains or criticizes, otherwise positive."})
    ctx, _task, _teach = make_ctx(good, budget=Budget(max_calls=6 + 4 + 1 + 4 + 6 + 3))
    settings = only_rewrites(rounds=4, candidates_per_round=1, minibatch_size=4, confirm_top_k=0)  # loop only
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert "fitted to the budget: rounds 4 → " in " ".join(res.settings["search_plan"])  # the plan fitted rounds
    assert res.rounds_completed <= 4 and "budget" in res.stop_reason  # more rounds only while the budget paid
    assert ctx.boundary.usage().total.calls <= 6 + 4 + 1 + 4 + 6 + 3
    assert res.valid_raw >= res.initial_valid_raw


def test_budget_too_small_for_the_baseline_is_refused_before_any_call():
    ctx, *_ = make_ctx("{}", budget=Budget(max_calls=2))
    with pytest.raises(ConfigurationError, match="no search fits the budget"):
        MetaPromptOptimizer(only_rewrites(rounds=1)).compile(
            ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(4), rows(6))
        )


def test_junk_teacher_answers_are_rejected_not_crashing():
    ctx, *_ = make_ctx("lol not json")
    res = MetaPromptOptimizer(only_rewrites(rounds=1, candidates_per_round=2)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(4), rows(4, 7))
    )
    assert res.instructions == "Classify."
    assert all("unusable" in c.note for c in res.candidates[1:])


def test_demo_strategy_adds_balanced_train_demos_and_demos_that_do_not_help_are_not_kept():
    ctx, *_ = make_ctx("{}")
    settings = MetaSettings(strategies=["add_demos"], rounds=1, candidates_per_round=1, max_demos=2)
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    demo_cands = [c for c in res.candidates if c.origin == "add_demos"]
    assert demo_cands and demo_cands[0].n_demos == 2
    # Demos do not help this fake model: at equal quality the prompt with less to read is kept, whatever λ.
    ctx2, *_ = make_ctx("{}")
    ctx2.metrics = MetricsManager(output_fields=["label"], lambda_penalty=0.05, label_set=["positive", "negative"])
    res2 = MetaPromptOptimizer(settings).compile(
        ctx2, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert res2.demos == []


def test_user_template_must_show_the_current_prompt(tmp_path):
    reg = StrategyRegistry.default()
    bad = tmp_path / "bad.txt"
    bad.write_text("Write a prompt for $task")
    with pytest.raises(ConfigurationError):
        reg.register_template_file(bad)
    good = tmp_path / "mine.txt"
    good.write_text('Improve: $current_prompt for $task. Reply as JSON {"prompt": "..."}')
    name = reg.register_template_file(good)
    assert isinstance(reg.get(name), TemplateStrategy)
    with pytest.raises(ConfigurationError):
        MetaPromptOptimizer(MetaSettings(strategies=["nosuch"]))


def test_presets_and_dry_run_estimate():
    q = MetaSettings.preset("quick")
    h = MetaSettings.preset("heavy_search", rounds=3)
    assert (q.rounds, q.candidates_per_round) == (3, 4)
    assert h.rounds == 3 and h.candidates_per_round == 6
    # baseline + rounds × (teacher + minibatches + valid) + confirmation (the 2 other pool members and the
    # initial prompt, on train)
    assert q.estimate_calls(n_train=12, n_valid=9) == 9 + 3 * (4 + 5 * 6 + 4 * 9) + 3 * 12
    assert MetaSettings.preset("quick", confirm_top_k=0).estimate_calls(12, 9) == 9 + 3 * (4 + 5 * 6 + 4 * 9)
    with pytest.raises(ConfigurationError):
        MetaSettings.preset("turbo")


def test_prompt_as_the_model_sees_it_includes_demos_and_format():
    cand = PromptCandidate(
        instructions="Classify.", demos=[{"review": "good", "label": "positive"}], format_line="Answer in JSON."
    )
    text = cand.render(SPEC)
    assert "[system]\nClassify.\n\nAnswer in JSON." in text
    assert "review: good" in text and '{"label": "positive"}' in text and "review: {review}" in text


def test_meta_prompts_are_reproducible_for_a_seed_and_vary_their_advice():
    def run_once():
        seen: list[str] = []
        ctx, *_ = make_ctx(json.dumps({"prompt": "Another attempt at a prompt text."}), seen=seen)
        settings = MetaSettings(strategies=["rewrite_from_failures", "rephrase"], rounds=2, candidates_per_round=2,
                                patience=5)  # fmt: skip
        MetaPromptOptimizer(settings).compile(
            ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
        )
        return seen

    first, second = run_once(), run_once()
    assert sorted(first) == sorted(second)  # threads may finish in any order; the prompts are the same
    advice = {line for prompt in first for line in prompt.splitlines() if "Advice:" in line}
    assert len(advice) >= 2


def test_default_strategies_stay_within_the_dry_run_estimate():
    counter = iter(range(1000))
    ctx, *_ = make_ctx(lambda m: json.dumps({"prompt": f"Variant {next(counter)}: say negative if it complains."}))
    settings = MetaSettings.preset("quick", patience=9)
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify the review.\nAnswer positive or negative."),
        GuardedData(rows(12), rows(9, 40)),
    )  # fmt: skip
    assert ctx.boundary.usage().total.calls <= settings.estimate_calls(12, 9)
    # a slot whose strategy gave nothing to score is filled by another, which says whose slot it took
    owners = {c.origin for c in res.candidates} | {m.group(1) for c in res.candidates
                                                   if (m := re.match(r"in the slot of (\S+),", c.note))}  # fmt: skip
    assert owners >= {"add_demos", "drop_line", "format_line", "combine"}


def lucky_task(messages):
    """Right on rows numbered >= 100 (valid) whenever the prompt says 'lucky'; wrong on train rows. A junk
    candidate like this wins on valid by chance and must lose the confirmation on the train rows."""
    system, user = messages[0]["content"], messages[-1]["content"]
    number = int(user.rsplit(" ", 1)[-1])
    truth = "negative" if "awful" in user else "positive"
    if "lucky" in system:
        return json.dumps({"label": truth if number >= 100 else ("positive" if truth == "negative" else "negative")})
    if "complains" in system:
        return json.dumps({"label": truth})
    return json.dumps({"label": "positive" if number % 4 == 1 else truth})  # the initial prompt: mostly right


def confirm_ctx(teacher_prompt):
    task = FakeLM(default=lucky_task, model="fake/task")
    teach = FakeLM(default=json.dumps({"prompt": teacher_prompt}), model="fake/teacher")
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    boundary = LMBoundary({"task": task, "teacher": teach})
    return RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4, seed=1)


def test_confirmation_rejects_a_candidate_that_only_wins_on_valid():
    ctx = confirm_ctx("Be lucky and classify the review by whatever feels right today.")
    settings = only_rewrites(rounds=1, candidates_per_round=1, minibatch_size=1)
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(12), rows(12, 100))
    )
    lucky = next(c for c in res.candidates if "lucky" in c.instructions)
    assert lucky.valid_raw == pytest.approx(1.0) and lucky.valid_raw > res.initial_valid_raw
    assert lucky.confirm_score is not None and "confirmation" in lucky.note
    assert res.instructions == "Classify."  # the lucky one lost on the train rows
    assert "no finalist beat the initial prompt" in res.stop_reason
    # without the confirmation stage the lucky candidate would have been returned
    off = MetaPromptOptimizer(only_rewrites(rounds=1, candidates_per_round=1, minibatch_size=1, confirm_top_k=0))
    res_off = off.compile(
        confirm_ctx("Be lucky and classify the review by whatever feels right today."),
        PromptCandidate(instructions="Classify."),
        GuardedData(rows(12), rows(12, 100)),
    )
    assert "lucky" in res_off.instructions


@pytest.mark.parametrize(
    ("out_of_time", "reason"),
    [(False, "beat the initial prompt"), (True, "chosen on valid alone, before the confirmation")],
)
def test_confirmation_keeps_a_candidate_that_also_wins_on_train(monkeypatch, out_of_time, reason):
    """...and when a time budget stops the confirmation itself, the valid winner is kept and the reason says so."""
    if out_of_time:

        def stop(*args, **kwargs):
            raise BudgetExceeded("time budget of 1 min spent")

        monkeypatch.setattr(MetaPromptOptimizer, "_confirm_each", staticmethod(stop))
    ctx = confirm_ctx("Say negative if the text complains or criticizes, otherwise positive.")
    res = MetaPromptOptimizer(only_rewrites(rounds=1, candidates_per_round=1)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(12), rows(12, 100))
    )
    assert "complains" in res.instructions
    assert reason in res.stop_reason


def test_demo_rows_are_never_scored_against_themselves():
    ctx, task, _ = make_ctx("{}")
    settings = MetaSettings(strategies=["add_demos"], rounds=2, candidates_per_round=2, patience=5)
    MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(8), rows(6, 50))
    )
    assert_no_demo_scored_against_itself(task)


def test_a_procedural_strategy_with_nothing_new_is_recorded_as_such():
    ctx, *_ = make_ctx("{}")
    res = MetaPromptOptimizer(MetaSettings(strategies=["drop_line"], rounds=1, candidates_per_round=1)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert [c.note for c in res.candidates[1:]] == ["nothing new to propose"]


def test_a_user_template_runs_in_every_round(tmp_path):
    from promptomatix.backends.registry import make_backend
    from promptomatix.config import RunConfig

    mine = tmp_path / "mine.txt"
    mine.write_text('Improve this prompt: $current_prompt (task: $task). Reply as JSON {"prompt": "..."}')
    opt = make_backend(RunConfig(raw_input="Classify reviews", meta_prompts=[str(mine)], search_type="quick"))
    seen: list[str] = []
    ctx, *_ = make_ctx(lambda m: json.dumps({"prompt": f"Variant {len(seen)} says negative if it complains."}),
                       seen=seen)  # fmt: skip
    opt.settings.patience = 9
    res = opt.compile(ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(12), rows(9, 40)))
    # its answers are off the task here: a slot whose answer is refused may be filled by another strategy, which
    # says whose slot it took
    rounds_with_mine = {c.round for c in res.candidates if c.origin == "user:mine" or "slot of user:mine" in c.note}
    assert rounds_with_mine == {1, 2, 3}
    assert sum("Improve this prompt:" in m for m in seen) == 3


def test_a_tie_in_the_confirmation_goes_to_the_wording_closest_to_the_users():
    from dataclasses import dataclass

    @dataclass
    class Fixed:
        name: str
        text: str
        uses_teacher: bool = False

        def propose(self, ctx):
            return ctx.best.model_copy(update={"instructions": self.text, "origin": self.name})

    user = "Classify the review. Say positive or negative."
    close = user + " Negative if it complains."  # both are right on every row; `junk` is 5 words shorter
    junk = "Review complains. Say positive or negative."  # the label sentence is not counted by the penalty

    def chosen(lam):
        ctx, *_ = make_ctx("{}")
        ctx.metrics = MetricsManager(output_fields=["label"], lambda_penalty=lam, label_set=["positive", "negative"])
        reg = StrategyRegistry.default()
        reg.register(Fixed("junk", junk))
        reg.register(Fixed("close", close))
        settings = MetaSettings(strategies=["junk", "close"], rounds=1, candidates_per_round=2)
        return (
            MetaPromptOptimizer(settings, reg)
            .compile(ctx, PromptCandidate(instructions=user), GuardedData(rows(12), rows(6, 50)))
            .instructions
        )

    assert chosen(0.002) == close  # 0.02 apart on 18 rows: less than one row, so the user's wording wins
    assert chosen(0.02) == junk  # a real difference: the length penalty decides


def test_zero_rounds_scores_only_the_initial_prompt():
    ctx, task, teach = make_ctx("{}")
    res = MetaPromptOptimizer(MetaSettings(rounds=0)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(4, 9))
    )
    assert res.stop_reason == "completed" and res.rounds_completed == 0
    assert len(task.calls) == 4 and not teach.calls  # the valid rows only


@pytest.mark.parametrize("max_calls", [30, 45, 80])
def test_a_calls_budget_never_skips_the_confirmation(max_calls):
    """Rounds stop while there are still calls for the confirmation, so a candidate picked from several is never
    returned unconfirmed because the budget ran out. A budget with no room for a confirmation tries exactly one
    candidate, judged by the paired-evidence rule on the valid rows (it was refused before)."""
    ctx = confirm_ctx("Be lucky and classify the review by whatever feels right today.")
    ctx.boundary.set_budget(Budget(max_calls=max_calls))
    settings = only_rewrites(rounds=3, candidates_per_round=1, minibatch_size=1, patience=9)
    data = GuardedData(rows(12), rows(12, 100))
    if max_calls == 30:  # one candidate fits, its confirmation does not
        res = MetaPromptOptimizer(settings).compile(ctx, PromptCandidate(instructions="Classify."), data)
        assert sum(c.origin != "initial" for c in res.candidates) == 1
        assert "one candidate, valid rows as its test" in res.stop_reason
        assert ctx.boundary.usage().total.calls <= max_calls
        return
    res = MetaPromptOptimizer(settings).compile(ctx, PromptCandidate(instructions="Classify."), data)
    assert "lucky" not in res.instructions
    assert ctx.boundary.usage().total.calls <= max_calls


def test_without_a_valid_split_selection_uses_held_back_train_rows():
    ctx, task, _ = make_ctx("{}")
    settings = MetaSettings(strategies=["add_demos"], rounds=2, candidates_per_round=2, patience=5)
    MetaPromptOptimizer(settings).compile(ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(12), []))
    assert_no_demo_scored_against_itself(task)


def test_settings_need_at_least_one_strategy():
    with pytest.raises(ValueError, match="at least one meta-prompt strategy"):
        MetaSettings(strategies=[])


def test_rejected_teacher_answers_say_why():
    ctx, *_ = make_ctx(json.dumps({"prompt": "Tell me a story about dragons and castles."}))
    res = MetaPromptOptimizer(only_rewrites(rounds=1, candidates_per_round=1)).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(6), rows(6, 9))
    )
    assert res.candidates[1].note == "teacher answer rejected: no word in common with the task"


def test_a_plan_cut_to_one_candidate_tries_the_demo_set_first():
    """A small budget keeps only round 1's first slot: it is the demo set (one example per label), the candidate
    that wins most often on small models, not a teacher rewrite (RESULTS §7, meta under a third of MIPROv2's calls)."""
    ctx, _task, teach = make_ctx(json.dumps({"prompt": "Classify the review carefully."}))
    res = MetaPromptOptimizer(MetaSettings(rounds=1, candidates_per_round=1)).compile(
        ctx, PromptCandidate(instructions=SPEC.initial_prompt), GuardedData(rows(8), rows(8, 100))
    )
    tried = [c.origin for c in res.candidates if c.origin != "initial"]
    assert tried == ["add_demos"] and not teach.calls
