"""Degenerate candidates are rejected before scoring, with the reason recorded; the label line survives."""

from __future__ import annotations

import json
import random

import pytest

from promptomatix.backends.contract import is_contract_line, without_contract
from promptomatix.backends.guards import rejection
from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import DropLineStrategy, ProposalContext, TemplateStrategy
from promptomatix.task.models import FieldSpec, TaskSpec
from promptomatix.task.task_types import TaskType
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import make_ctx, rows

SPEC = TaskSpec(
    description="Classify the sentiment of a movie review as positive or negative",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="review")],
    output_fields=[FieldSpec(name="label", labels=["positive", "negative"])],
)
INITIAL = PromptCandidate(
    instructions="Classify the sentiment of a movie review.\nGiven: review. Produce: label.\n"
    "Answer with exactly one of: positive, negative."
)
LABELS = "\nAnswer with exactly one of: positive, negative."


def reason(text: str, initial: PromptCandidate = INITIAL) -> str | None:
    return rejection(PromptCandidate(instructions=text), SPEC, initial)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Write a different prompt for the same task that includes the label, which is either" + LABELS, "meta"),
        ("Decide whether the review is positive or negative, which is either" + LABELS, "fragment"),
        (
            "How to determine the sentiment of a movie review with a positive or negative sentiment label "
            "(positive or negative)," + LABELS,
            "question",
        ),
        ("How do I classify the sentiment of this review?" + LABELS, "question"),
        ("Read the [noun_1] and decide its sentiment." + LABELS, "placeholder"),
        ("Hello {name}, classify the sentiment of the review." + LABELS, "placeholder"),
        ("<placeholder> Classify the sentiment." + LABELS, "placeholder"),
        ("Reply as JSON with the improved prompt for this review task." + LABELS, "meta"),
        ("Classify the sentiment of the review.", "drops the labels positive, negative"),
        ("Say negative if the review complains.", "drops the label positive"),
        ("Label it.", "fewer than three words"),
        ("Classify the sentiment of a movie review (positive or negative" + LABELS, "unclosed"),
    ],
)
def test_each_rule_rejects_its_kind_of_degenerate_prompt(text, why):
    got = reason(text)
    assert got is not None and why in got, got


@pytest.mark.parametrize(
    "text",
    [
        "Say negative if the review complains or criticizes, otherwise positive.",
        "Is the review positive or negative? Decide from the reviewer's overall opinion.",
        "You are an expert film critic. Read the review and decide its sentiment." + LABELS,
        INITIAL.instructions,
    ],
)
def test_real_instructions_pass(text):
    assert reason(text) is None


def test_rules_only_look_at_what_the_candidate_added():
    """A user's own prompt with a placeholder or no labels is the baseline; candidates keeping it pass."""
    user = PromptCandidate(instructions="Classify {review} as good or bad")
    assert rejection(user.model_copy(update={"demos": [{"review": "x", "label": "positive"}]}), SPEC, user) is None
    assert reason("Classify the review carefully.", user) is None  # the initial named no label to drop


def test_the_output_format_line_cannot_be_dropped():
    spec = SPEC.model_copy(update={"output_format": "lowercase label only"})
    initial = PromptCandidate(instructions=INITIAL.instructions + "\nOutput format: lowercase label only")
    cand = PromptCandidate(instructions=INITIAL.instructions)
    assert rejection(cand, spec, initial) == "drops the output-format line"


def _pctx(best: PromptCandidate, teacher=None) -> ProposalContext:
    return ProposalContext(
        spec=SPEC, best=best, best_score=0.5, history=[], failures=[], feedback=[], train=[],
        rng=random.Random(0), teacher=teacher,
    )  # fmt: skip


def test_drop_line_never_drops_the_label_line_and_the_penalty_does_not_count_it():
    for seed in range(10):
        ctx = _pctx(INITIAL)
        ctx.rng = random.Random(seed)
        cand = DropLineStrategy().propose(ctx)
        assert cand is not None and "Answer with exactly one of: positive, negative." in cand.instructions
    only_contract = PromptCandidate(
        instructions="Classify the review.\nAnswer with exactly one of: positive, negative."
    )
    assert DropLineStrategy().propose(_pctx(only_contract)) is None  # nothing but the contract is left to drop
    assert is_contract_line("Answer with exactly one of: positive, negative.", SPEC)
    assert "exactly one of" not in without_contract(INITIAL.instructions, SPEC)
    assert "exactly one of" not in INITIAL.penalty_text(SPEC)
    assert "exactly one of" in INITIAL.render(SPEC)  # what is exported still names the labels


def test_a_rewrite_that_drops_the_labels_gets_the_label_line_back():
    from promptomatix.lm.fake import FakeLM

    teacher = FakeLM(default=json.dumps({"prompt": "Decide the sentiment the reviewer expresses."}))
    strategy = TemplateStrategy("t", "Task: $task\nCurrent: $current_prompt")
    cand = strategy.propose(_pctx(INITIAL, teacher))
    assert cand.instructions == "Decide the sentiment the reviewer expresses." + LABELS
    assert rejection(cand, SPEC, INITIAL) is None


def test_degenerate_teacher_answers_are_recorded_and_never_scored():
    junk = [
        "Write a different prompt for the same task that includes the label, which is either",
        "How to determine the sentiment of a movie review with a positive or negative sentiment label "
        "(positive or negative),",
        "Read the [noun_1] carefully and label the review.",
    ]
    answers = iter(junk * 3)
    ctx, task, _teach = make_ctx(lambda _m: json.dumps({"prompt": next(answers)}))
    settings = MetaSettings(strategies=["rewrite_from_failures"], rounds=1, candidates_per_round=3, confirm_top_k=0)
    initial = PromptCandidate(instructions=INITIAL.instructions)
    res = MetaPromptOptimizer(settings).compile(ctx, initial, GuardedData(rows(12), rows(8, 40)))
    rejected = [c for c in res.candidates if c.note.startswith("rejected before scoring")]
    assert len(rejected) == 3 and {c.valid_raw for c in rejected} == {None}
    notes = " | ".join(c.note for c in rejected)
    assert "meta-prompt" in notes and "question" in notes and "placeholder" in notes
    scored_systems = {c["messages"][0]["content"] for c in task.calls}
    assert not any(j[:30] in s for j in junk for s in scored_systems)  # the task model never saw them
    assert res.instructions == initial.instructions


def test_the_exported_text_names_the_labels_even_when_dropping_them_would_score_higher(tmp_path):
    """A grammar-constrained task model does not need the label line, and a long one costs length penalty; the
    run still exports a prompt that names every label, and the export is the prompt that was scored."""
    from promptomatix.api import process_input
    from promptomatix.lm.fake import FakeLM
    from promptomatix.sessions import SessionStore
    from tests.test_reproducible_runs import teacher

    def task(messages):  # right on every row, whatever the prompt says
        return json.dumps({"label": "negative" if "dreadful" in messages[-1]["content"] else "positive"})

    clients = {"task": FakeLM(default=task), "teacher": FakeLM(default=teacher)}
    r = process_input(human_input="Classify the sentiment of a movie review as positive or negative",
                      synthetic_data_size=24, synthetic_batch_size=4, clients=clients, sessions_dir=str(tmp_path),
                      input_fields=["review"], output_fields=["label"], lambda_penalty=0.05, rounds=3)  # fmt: skip
    exported = SessionStore(str(tmp_path)).export(r.session_id, "text")
    assert "positive" in exported and "negative" in exported
    assert exported == r.best_prompt
    version = SessionStore(str(tmp_path)).load(r.session_id).latest_version()
    dropped = [c for c in version.candidates if c.get("origin") == "drop_line" and c.get("valid_raw") is not None]
    assert dropped and all("exactly one of: positive, negative" in c["prompt"] for c in dropped)


INTENTS = ["add_to_playlist", "book_restaurant", "get_weather", "play_music", "search_creative_work", "rate_book"]
INTENT_SPEC = TaskSpec(
    description="Classify the intent of a voice-assistant request as one of: " + ", ".join(INTENTS),
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="utterance")],
    output_fields=[FieldSpec(name="intent", labels=INTENTS)],
)
INTENT_LABELS = "\nAnswer with exactly one of: " + ", ".join(INTENTS) + "."


@pytest.mark.parametrize(
    ("text", "rejected"),
    [
        # won the intent benchmark's seed 0 (benchmarks/results/suite/intent-s0-meta.json) before this rule
        ("To create a better world, we must protect our planet and promote creativity and freedom.", True),
        ("Play some music and rate the book you like.", True),  # only the labels' words
        ("Classify the user's request by what it wants done.", False),
        ("Decide which of these the utterance asks for.", False),
        ("Read the voice command carefully.", False),
    ],
)
def test_a_rewrite_that_says_nothing_about_the_task_is_rejected(text, rejected):
    initial = PromptCandidate(instructions=INTENT_SPEC.description + "." + INTENT_LABELS)
    got = rejection(PromptCandidate(instructions=text + INTENT_LABELS), INTENT_SPEC, initial)
    assert (got is not None and "off the task" in got) if rejected else got is None, got


def test_a_short_generic_instruction_is_not_judged_off_the_task():
    """Too few words to be about something else: a plugin's "Checklist: 1. Read it." passed before the rule too."""
    yesno = TaskSpec(description="Answer the question yes or no", task_type=TaskType.CLASSIFICATION,
                     input_fields=[FieldSpec(name="question")],
                     output_fields=[FieldSpec(name="answer", labels=["yes", "no"])])  # fmt: skip
    initial = PromptCandidate(instructions="Answer the question yes or no.")
    cand = PromptCandidate(instructions="Checklist: 1. Read it. 2. Answer with exactly yes or no.")
    assert rejection(cand, yesno, initial) is None
