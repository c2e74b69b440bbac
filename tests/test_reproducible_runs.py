"""Same seed and command, same run: the same synthetic rows, the same candidates and the same choice (fake models,
with threads); and the local engine's sampling seed is a function of the request."""

from __future__ import annotations

import hashlib
import json
import re

from promptomatix.api import process_input
from promptomatix.lm.fake import FakeLM, prompt_text
from promptomatix.lm.local import request_seed
from tests.test_data_synthetic import obedient, relabeler

TASK = "Classify the sentiment of a movie review as positive or negative"


def teacher(messages):
    text = prompt_text(messages)
    if (answer := relabeler(messages)) is not None and "Write" not in text:
        return answer
    if "Write" in text and "new, realistic examples" in text:
        return obedient(messages)
    if '{"prompt"' in text:  # a rewrite that depends on the (seeded) advice in the meta-prompt
        tip = re.search(r"Advice: (.*)", text)
        word = hashlib.sha256((tip.group(1) if tip else text).encode()).hexdigest()[:6]
        return json.dumps({"prompt": f"Say negative if the review is dreadful, otherwise positive (rule {word})."})
    return "{}"


def task(messages):
    system, user = messages[0]["content"], messages[-1]["content"]
    wise = "dreadful" in system
    return json.dumps({"label": "negative" if wise and "dreadful" in user else "positive"})


def run(tmp_path, seed):
    clients = {"task": FakeLM(default=task, latency=0.001), "teacher": FakeLM(default=teacher, latency=0.001)}
    r = process_input(human_input=TASK, synthetic_data_size=24, seed=seed, sessions_dir=str(tmp_path),
                      clients=clients, synthetic_batch_size=4, n_parallel=4, num_threads=4,
                      input_fields=["review"], output_fields=["label"])  # fmt: skip
    return r.synthetic_data, [(c.origin, c.instructions, c.valid_raw) for c in _candidates(r, tmp_path)], r.best_prompt


def _candidates(r, tmp_path):
    from types import SimpleNamespace

    from promptomatix.sessions import SessionStore

    version = SessionStore(str(tmp_path)).load(r.session_id).latest_version()
    return [SimpleNamespace(**{k: c.get(k) for k in ("origin", "instructions", "valid_raw")}) for c in version.candidates]


def test_same_seed_same_data_candidates_and_choice(tmp_path):
    a, b, c = run(tmp_path / "a", 3), run(tmp_path / "b", 3), run(tmp_path / "c", 4)
    assert len(a[1]) > 3 and any(o == "rewrite_from_failures" for o, _, _ in a[1])
    assert a == b
    assert a[0] != c[0]  # another seed: other rows


def test_the_local_sampling_seed_follows_the_request():
    req = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0.8}
    assert request_seed(req) == request_seed(dict(req)) and 0 <= request_seed(req) < 2**31
    other = {**req, "messages": [{"role": "user", "content": "hello"}]}
    assert request_seed(other) != request_seed(req)
