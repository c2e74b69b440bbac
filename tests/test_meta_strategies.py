"""The procedural meta strategies: label-covering demo sets, line ablation, and joining kept candidates."""

from __future__ import annotations

import itertools
import random

from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import (
    CombineStrategy,
    DemoStrategy,
    DropLineStrategy,
    FormatStrategy,
    ProposalContext,
)
from promptomatix.task.models import FieldSpec, TaskSpec
from promptomatix.task.task_types import TaskType

LABELS = ["abbreviation", "description", "entity", "human", "location", "number"]
TREC = TaskSpec(
    description="Classify a question by the type of answer it asks for",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="question")],
    output_fields=[FieldSpec(name="category", labels=LABELS)],
)
TRAIN = [{"question": f"question {i}?", "category": LABELS[i % 6]} for i in range(24)]


def ctx(best, pool=(), seen=(), seed=0, max_demos=8):
    return ProposalContext(
        spec=TREC, best=best, best_score=0.5, history=[], failures=[], feedback=[], train=TRAIN,
        rng=random.Random(seed), max_demos=max_demos, pool=list(pool), seen=frozenset(seen),
    )  # fmt: skip


def test_demo_sets_show_every_label_when_labels_are_few():
    best = PromptCandidate(instructions="Classify the question.")
    for seed in range(5):
        cand = DemoStrategy().propose(ctx(best, seed=seed))
        assert cand is not None
        assert sorted(d["category"] for d in cand.demos) == sorted(LABELS)  # one of each
        assert cand.instructions == best.instructions
    a, b = (DemoStrategy().propose(ctx(best, seed=s)) for s in (1, 2))
    assert a.demos != b.demos  # each proposal draws a fresh set
    # max_demos is a cap: with fewer slots than labels the set is smaller, and 0 means no demos at all
    assert all(len(DemoStrategy().propose(ctx(best, seed=s, max_demos=3)).demos) <= 3 for s in range(5))
    assert DemoStrategy().propose(ctx(best, max_demos=0)) is None


SPAM = TaskSpec(
    description="Classify an SMS message as spam or ham",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="text")],
    output_fields=[FieldSpec(name="label", labels=["spam", "ham"])],
)


def test_few_label_demo_sets_show_several_of_each_label_balanced_and_interleaved():
    """One example per label was all a two-label task ever got; qwen2.5-0.5b needed three of each on spam."""
    train = [{"text": f"message {i}", "label": "spam" if i % 3 == 0 else "ham"} for i in range(30)]
    best = PromptCandidate(instructions="Classify the message.")
    sizes = set()
    for seed in range(20):
        c = ProposalContext(spec=SPAM, best=best, best_score=0.5, history=[], failures=[], feedback=[], train=train,
                            rng=random.Random(seed), max_demos=8, pool=[], seen=frozenset())  # fmt: skip
        labels = [d["label"] for d in DemoStrategy().propose(c).demos]
        per = labels.count("spam")
        assert per == labels.count("ham") and 1 <= per <= 4  # balanced, never more than 4 of a label
        assert all(a != b for a, b in itertools.pairwise(labels))  # interleaved: spam, ham, spam, ham, ...
        sizes.add(per)
    assert sizes == {1, 2, 3, 4}
    # max_demos still caps the set: 3 slots for 2 labels is one of each
    c = ProposalContext(spec=SPAM, best=best, best_score=0.5, history=[], failures=[], feedback=[], train=train,
                        rng=random.Random(0), max_demos=3, pool=[], seen=frozenset())  # fmt: skip
    assert len(DemoStrategy().propose(c).demos) == 2


def test_a_rare_label_caps_the_others_so_demo_sets_stay_balanced():
    """With two spam rows in train, a set never shows three or four ham beside them (it biased small models)."""
    train = [{"text": f"message {i}", "label": "spam" if i in (0, 7) else "ham"} for i in range(20)]
    best = PromptCandidate(instructions="Classify the message.")
    for seed in range(20):
        c = ProposalContext(spec=SPAM, best=best, best_score=0.5, history=[], failures=[], feedback=[], train=train,
                            rng=random.Random(seed), max_demos=8, pool=[], seen=frozenset())  # fmt: skip
        labels = [d["label"] for d in DemoStrategy().propose(c).demos]
        assert labels.count("spam") == labels.count("ham") <= 2


def test_demo_strategy_skips_sets_already_tried():
    best = PromptCandidate(instructions="Classify the question.")
    first = DemoStrategy().propose(ctx(best, seed=3))
    again = DemoStrategy().propose(ctx(best, seed=3, seen={first.key()}))
    assert again is not None and again.key() != first.key()


def test_drop_line_removes_one_line_but_never_the_users_sentence_nor_the_format_line():
    best = PromptCandidate(instructions="Classify the question.\nGiven: question.\nOutput format: json\nBe brief.")
    results = {DropLineStrategy().propose(ctx(best, seed=s)).instructions for s in range(12)}
    assert results == {
        "Classify the question.\nOutput format: json\nBe brief.",
        "Classify the question.\nGiven: question.\nOutput format: json",
    }
    one_line = PromptCandidate(instructions="Classify the question. Be brief.")
    assert DropLineStrategy().propose(ctx(one_line)).instructions == "Classify the question."
    assert DropLineStrategy().propose(ctx(PromptCandidate(instructions="Classify the question."))) is None


def test_combine_joins_instructions_and_demos_of_kept_candidates():
    demos = [{"question": "What does NASA stand for?", "category": "abbreviation"}]
    best = PromptCandidate(instructions="Better instructions for the task.")
    other = PromptCandidate(instructions="Classify the question.", demos=demos)
    cands = {CombineStrategy().propose(ctx(best, pool=[best, other], seed=s)).key() for s in range(20)}
    assert PromptCandidate(instructions="Better instructions for the task.", demos=demos).key() in cands
    assert PromptCandidate(instructions="Classify the question.").key() in cands
    tried = {best.key(), other.key(), *cands}
    assert CombineStrategy().propose(ctx(best, pool=[best, other], seen=tried)) is None


def test_format_line_is_added_then_can_be_dropped_again():
    best = PromptCandidate(instructions="Classify the question.")
    added = FormatStrategy().propose(ctx(best))
    assert "exactly one of: abbreviation" in added.format_line
    assert FormatStrategy().propose(ctx(added, seen={best.key()})) is None  # dropping it again = the initial
    assert FormatStrategy().propose(ctx(added)).format_line is None


def test_teacher_answers_that_echo_the_meta_prompt_are_rejected():
    from promptomatix.backends.strategies import parse_prompt_answer

    echoed = (
        '{"prompt": "What values are allowed for the addition or subtraction question? | expected: 0-9 | got: 0-9"}'
    )
    assert parse_prompt_answer(echoed) is None
    assert parse_prompt_answer('{"prompt": "input: the film was dull | expected: negative"}') is None
    assert parse_prompt_answer('{"prompt": "<short version of prompt>"}') is None
    assert parse_prompt_answer('{"prompt": "Reply as JSON: {\\"prompt\\": \\"x\\"} and more words"}') is None
    good = '{"prompt": "Decide whether the review praises or criticizes the film; answer positive or negative."}'
    assert parse_prompt_answer(good).startswith("Decide whether")


def test_teacher_proposals_that_echo_the_template_are_rejected():
    from promptomatix.backends.strategies import _builtin_template, echoes

    add_format = _builtin_template("add_format")
    assert echoes("Which values are allowed, in what form, and nothing else?", add_format)
    rewrite = _builtin_template("rewrite_from_failures")  # shows advice ($tip), so copying a tip is an echo
    assert echoes("Give the model a role, such as an expert reviewer, then classify.", rewrite)
    assert not echoes("Give the model a role, such as an expert reviewer, then classify.", add_format)
    # a short borrowed phrase in an otherwise new prompt is fine
    assert not echoes("Keep it short and direct: output positive or negative for each review.", rewrite)
    assert not echoes("You are a sentiment classifier for a small language model pipeline.", rewrite)
    # and so is text the meta-prompt took from the task or the current prompt
    assert not echoes(
        "Improve prompts for a small language model", rewrite, allowed="Improve prompts for a small language model"
    )
    # words from the task or the current prompt are fine: they are placeholders, not the template's text
    assert not echoes("Classify the sentiment of a movie review as positive or negative.", add_format)
    assert not echoes("Answer with exactly one of: positive, negative. Nothing else.", add_format)


def test_rewrites_that_share_no_word_with_the_task_are_off_task():
    from promptomatix.backends.strategies import off_task

    assert off_task("Describe a task using this prompt,", TREC)
    assert off_task("Tell me a joke about your favorite city.", TREC)
    assert not off_task("Decide what kind of thing the question wants: a person, a place or a number.", TREC)
    assert not off_task("Which category fits? Pick one.", TREC)  # the output field's name counts
    assert not off_task("Questions starting with 'who' ask about people; others by their subject.", TREC)
    sentiment = TaskSpec(description="Classify the sentiment of a movie review as positive or negative",
                         task_type=TaskType.CLASSIFICATION, input_fields=[FieldSpec(name="text")],
                         output_fields=[FieldSpec(name="sentiment", labels=["positive", "negative"])])  # fmt: skip
    assert not off_task("Decide whether the reviewer liked the film or not.", sentiment)
    assert not off_task("If the input is unclear or mixed, choose what fits best overall.", sentiment)
    assert off_task("Tell me a story about dragons and castles.", sentiment)
    chinese = TaskSpec(description="判断影评情感", task_type=TaskType.CLASSIFICATION,
                       input_fields=[FieldSpec(name="文本")], output_fields=[FieldSpec(name="情感")])  # fmt: skip
    assert not off_task("判断这条评论是正面还是负面", chinese)  # no words to compare: nothing is rejected
