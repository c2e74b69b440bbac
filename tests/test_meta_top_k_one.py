"""A bug found while splitting `MetaPromptOptimizer.compile`: `MetaSettings.top_k` accepts 1, but the pool was
trimmed to `[*pool[: top_k - 1], base]` whenever the initial prompt was not in the top `top_k`, so with top_k=1 the
pool was always just the initial prompt: a candidate that beat it on valid was dropped, the best never moved and
the run stopped on patience with the initial prompt. The best now always stays beside the initial prompt."""

from __future__ import annotations

import json

import pytest

from promptomatix.backends.meta import MetaPromptOptimizer
from promptomatix.backends.prompt import PromptCandidate
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import SPEC, make_ctx, only_rewrites, rows


def test_top_k_one_still_keeps_a_better_candidate():
    good = json.dumps({"prompt": "Say negative if the text complains or criticizes, otherwise positive."})
    ctx, *_ = make_ctx(good)
    opt = MetaPromptOptimizer(only_rewrites(rounds=2, candidates_per_round=2, minibatch_size=4, top_k=1))
    res = opt.compile(ctx, PromptCandidate(instructions=SPEC.initial_prompt), GuardedData(rows(8), rows(8, 100)))
    assert max(c.valid_penalized or 0 for c in res.candidates) == pytest.approx(1.0)  # a better one was scored...
    assert res.valid_raw == pytest.approx(1.0)  # ...and is the result (it was 0.5, the initial prompt's)
