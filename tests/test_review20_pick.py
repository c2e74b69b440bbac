"""Review 20, findings 6, 7, 8 and 11: scores compared across λs after `sessions pick --lambda`, a Pareto listing
whose "words" were not the length the front is decided on, control characters printed raw to the terminal, and a
duplicate candidate said to be "screened out".

The session is built by hand like the review's `front_backup`: v1's own prompt (#1) reads more words than #2 (it
carries demos) though the λ penalty counts fewer, and #4 is a duplicate of #2 that was never scored.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.errors import SessionError
from promptomatix.sessions import SessionStore
from promptomatix.sessions.models import Score, SessionSummary, TestScore
from promptomatix.sessions.pick import pick_candidate

runner = CliRunner()
LAM = 0.005
ESC = "\x1b]0;PWNED-TITLE\x07\x1b[2K\x1b[1A\x9b2J"  # set the title, erase the line, go up; a C1 CSI
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

SHORT = "Classify the sentiment of a movie review as positive or negative. Answer with one label."
DEMOS = "\n".join(f"review: film number {i} was great fun\nlabel: positive" for i in range(4))
OWN = f"[system]\n{SHORT}\n\n{DEMOS}\n\n[user]\nreview: {{review}}"  # 11 words counted by λ, many more read
LONG = ("Read the whole review with care and weigh its tone from the first sentence to the last one. Say negative if "
        "it complains.")  # fmt: skip
OTHER = f"[system]\n{LONG}\n\n[user]\nreview: {{review}}"
WORSE = "[system]\nClassify it.\n\n[user]\nreview: {review}"


def _cand(i: int, prompt: str, length: int, raw: float | None, tokens: int, note: str = "") -> dict:
    pen = None if raw is None else raw * math.exp(-LAM * length)
    return {"id": i, "round": 1, "origin": "rewrite", "prompt": prompt, "instructions": prompt.split("\n")[1],
            "n_demos": 4 if prompt == OWN else 0, "length": length, "minibatch_score": pen, "valid_raw": raw,
            "valid_penalized": pen, "confirm_score": None, "note": note, "demos": [], "format_line": None,
            "minibatch_raw": raw, "confirm_raw": None, "tokens": tokens}  # fmt: skip


@pytest.fixture
def store(tmp_path, monkeypatch) -> SessionStore:
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    return SessionStore(tmp_path / "sessions")


def _session(store: SessionStore, *, text: str = "") -> str:
    """v1 of a run with λ = 0.005 and four candidates (#4 a duplicate of #2); `text` goes into every field a model
    or a user writes."""
    s = store.new_session(raw_input="Classify reviews", description=f"reviews{text}", status="completed",
                          run_config={"lambda_penalty": LAM, "model": "m"})  # fmt: skip
    own, other, worse = OWN + text, OTHER + text, WORSE + text
    cands = [_cand(1, own, 11, 1.0, 117), _cand(2, other, 26, 1.0, 59), _cand(3, worse, 2, 0.5, 12),
             _cand(4, other, 26, None, 59, "duplicate of an earlier candidate")]  # fmt: skip
    s.add_version(own, backend="simple_meta_prompt", valid=Score(raw=1.0, penalized=math.exp(-LAM * 11)),
                  initial_valid=Score(raw=0.5, penalized=0.5 * math.exp(-LAM * 15)), test=TestScore(mean=1.0, n=20),
                  candidates=cands, pareto=[2, 3])  # fmt: skip
    store.save(s)
    return s.session_id


def _cli(*args: str) -> str:
    r = runner.invoke(app, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


# --- finding 6: one scale for valid scores ------------------------------------------------------------------------


def test_a_pick_under_another_lambda_keeps_the_runs_score_and_best_stays_on_one_scale(store):
    sid = _session(store)
    out = _cli("sessions", "pick", sid, "--lambda", "0")  # λ = 0: #2 (same quality, fewer words read) is chosen
    assert "candidate #2 of v1, the best under λ=0" in out and "penalized 0.878 under the session's λ=0.005" in out
    v2 = store.load(sid).get_version(2)
    assert v2.valid.penalized == pytest.approx(math.exp(-LAM * 26))  # the run's λ, not 1.000 under λ = 0
    assert v2.settings["picked"]["lambda"] == 0.0
    [row] = json.loads(_cli("sessions", "list", "--json"))
    assert (row["best_version"], row["best_score"]) == (1, pytest.approx(math.exp(-LAM * 11)))  # not 1.000
    show = _cli("sessions", "show", sid)
    assert "valid scores: raw / penalized by length under λ=0.005" in show
    assert "picked candidate #2 of v1 (the best under λ=0): valid score from the run; not scored on the" in show


def test_a_version_picked_under_another_lambda_before_the_fix_is_ranked_on_the_runs_scale(store):
    """A file written before: v2's stored penalized score is under λ = 0 (1.000); its candidate kept the run's."""
    sid = _session(store)
    s = store.load(sid)
    v2 = pick_candidate(s, 2)
    v2.settings["picked"]["lambda"] = 0.0
    v2.valid = Score(raw=1.0, penalized=1.0)
    store.save(s)
    s = store.load(sid)
    assert s.best_version().version == 1
    assert SessionSummary.of(s).best_score == pytest.approx(math.exp(-LAM * 11))
    assert "valid raw/penalized 1.000 / 0.878" in _cli("sessions", "show", sid)


def test_the_ui_states_the_lambda_and_says_why_a_picked_version_has_no_verdict(store):
    pytest.importorskip("starlette")
    pytest.importorskip("multipart")
    from starlette.testclient import TestClient

    from promptomatix.ui.app import create_app
    from promptomatix.ui.security import cookie_name
    from tests.ui_support import TOKEN

    sid = _session(store)
    s = store.load(sid)
    v2 = pick_candidate(s, 2)
    v2.settings["picked"]["lambda"] = 0.0
    v2.valid = Score(raw=1.0, penalized=1.0)  # stored under λ = 0 by the old pick
    store.save(s)
    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as c:
        c.cookies.set(cookie_name(TOKEN), TOKEN)
        page = c.get(f"/s/{sid}?v=2").text
    assert "valid (penalized, λ=0.005)" in page and "Valid raw / penalized (λ=0.005)" in page
    assert "<td>1.000 / 0.878</td>" in page and "<td>1.000 / 1.000</td>" not in page
    note = "picked candidate #2 of v1 (the best under λ=0): valid score from the run; not scored on the held-out test"
    assert f'id="verdict-note">({note})' in page and f'<div class="muted small verdict-note">{note}</div>' in page


# --- finding 7: the front's lengths are the ones shown -------------------------------------------------------------


def test_pareto_shows_the_lengths_the_front_is_decided_on_and_why_the_versions_prompt_is_off_it(store):
    from promptomatix.ui.views import chart

    sid = _session(store)
    out = _cli("sessions", "show", sid, "--pareto")
    line = next(x for x in out.splitlines() if x.startswith("#2 "))
    assert f"reads {len(OTHER.split())} words, ≈59 tokens (λ counts 26)" in line
    off = next(x for x in out.splitlines() if x.startswith("off the front: #1 ← v1"))
    assert f"reads {len(OWN.split())} words, ≈117 tokens (λ counts 11)" in off
    assert f"#2 scores 1.000 and reads {len(OTHER.split())} words, ≈59 tokens: at least as good, and no longer" in off
    labels = {p["id"]: p["label"] for p in chart(store.load(sid).get_version(1))["points"]}
    assert labels[1] == f"#1: 1.000 at {len(OWN.split())} words read, ≈117 tokens"  # the chart's x axis too


# --- finding 8: control characters are shown, not sent to the terminal ------------------------------------------


def test_model_and_user_text_reaches_the_terminal_with_control_characters_made_visible(store, capsys):
    sid = _session(store, text=ESC)
    _cli("feedback", "add", sid, "--comment", f"fine{ESC}")
    outputs = [
        _cli("sessions", "show", sid, "--pareto"),
        _cli("sessions", "show", sid, "--candidates"),
        _cli("sessions", "show", sid, "--diff", "1", "1"),
        _cli("sessions", "list"),
        _cli("feedback", "list", sid),
        _cli("feedback", "add", sid, "--comment", f"again{ESC}"),
    ]
    for out in outputs:
        assert not CONTROL.search(out), repr(out)
        assert "\\x1b]0;PWNED-TITLE\\x07\\x1b[2K" in out or out.startswith("added fb2")
    assert "fine\\x1b]0;PWNED-TITLE\\x07\\x1b[2K\\x1b[1A\\x9b2J" in outputs[0]
    doc = json.loads(_cli("sessions", "show", sid, "--json"))  # JSON stays exact
    assert doc["feedback"][0]["comment"] == f"fine{ESC}" and doc["versions"][0]["prompt"] == OWN + ESC
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # an error quoting what was typed
        main(["feedback", "dismiss", sid, f"fb9{ESC}"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and not CONTROL.search(err) and "no feedback 'fb9\\x1b]0;PWNED" in err


# --- finding 11: a duplicate says so --------------------------------------------------------------------------------


def test_picking_a_duplicate_names_the_candidate_it_repeats_and_the_one_to_pick(store):
    sid = _session(store)
    with pytest.raises(SessionError) as e:
        pick_candidate(store.load(sid), 4)
    dup = "candidate #4 of version 1 is a duplicate of candidate #2 (the same prompt), so it was never scored"
    assert e.value.message == dup
    assert "screened out" not in str(e.value) and e.value.hint.startswith("pick candidate #2 instead")
    s = store.load(sid)
    s.versions[0].candidates.append(_cand(5, WORSE, 2, None, 12, "minibatch 0.40 < best 0.90 on the same rows"))
    with pytest.raises(SessionError, match=r"never scored on the valid rows \(minibatch 0.40 < best 0.90"):
        pick_candidate(s, 5)
