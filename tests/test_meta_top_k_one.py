"""A latent bug found while splitting `MetaPromptOptimizer.compile` (not fixed: the refactor changes no behaviour).

`MetaSettings.top_k` accepts 1, but the pool is trimmed to `[*pool[: top_k - 1], base]` whenever the initial
prompt is not in the top `top_k`, so with top_k=1 the pool is always just the initial prompt: a candidate that
beats it on valid is dropped, the best never moves and the run stops on patience with the initial prompt."""

from __future__ import annotations

import json

import pytest

from promptomatix.backends.meta import MetaPromptOptimizer
from promptomatix.backends.prompt import PromptCandidate
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import SPEC, make_ctx, only_rewrites, rows


@pytest.mark.xfail(strict=True, reason="top_k=1 keeps only the initial prompt in the pool (known bug, not fixed)")
def test_top_k_one_still_keeps_a_better_candidate():
    good = json.dumps({"prompt": "Say negative if the text complains or criticizes, otherwise positive."})
    ctx, *_ = make_ctx(good)
    opt = MetaPromptOptimizer(only_rewrites(rounds=2, candidates_per_round=2, minibatch_size=4, top_k=1))
    res = opt.compile(ctx, PromptCandidate(instructions=SPEC.initial_prompt), GuardedData(rows(8), rows(8, 100)))
    assert max(c.valid_penalized or 0 for c in res.candidates) == pytest.approx(1.0)  # a better one was scored...
    assert res.valid_raw == pytest.approx(1.0)  # ...and should be the result (it is 0.5, the initial prompt's)
