"""Picking a point of the quality-vs-length front: `sessions pick ID CANDIDATE` (or `--lambda X`) makes that
candidate a new version without model calls, its export is the candidate's prompt, a refine starts from exactly
that candidate, and `sessions show` lists the front and prints the paired verdict."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.engine import fake_clients, synthetic_rows, teacher_responder
from promptomatix.api import process_input
from promptomatix.cli.app import app
from promptomatix.errors import SessionError, UsageError
from promptomatix.followup import candidate_of
from promptomatix.lm.boundary import LMBoundary
from promptomatix.sessions import SessionStore
from promptomatix.sessions.pick import front_rows, pick_candidate, pick_for_lambda
from promptomatix.task import TaskSpec

runner = CliRunner()


LONG = ("Read the whole review with care and weigh its tone from the first sentence to the last one. Say negative "
        "if the review complains, otherwise positive. Watch for sarcasm, faint praise and mixed feelings.")


def long_teacher(messages: list[dict[str, str]]) -> str:
    """The engine's teacher, but its rewrite is right and long: the front gets a short-and-worse point too."""
    return teacher_responder(messages).replace("Say negative if the review complains, otherwise positive.", LONG)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One meta run with fake models (its front has several points), shared read-only by the tests."""
    root = tmp_path_factory.mktemp("sessions")
    clients = fake_clients(0.0)
    clients["teacher"].default = long_teacher
    r = process_input(
        raw_input="Classify the sentiment of a movie review as positive or negative",
        train_data=synthetic_rows(12), valid_data=synthetic_rows(12, 1000), test_data=synthetic_rows(20, 2000),
        input_fields=["review"], output_fields=["label"], labels=["positive", "negative"],
        task_type="classification", search_type="quick", sessions_dir=str(root), clients=clients,
    )  # fmt: skip
    return root, r.session_id


@pytest.fixture
def store(run_dir, tmp_path, monkeypatch):
    """A private copy of the run's session, so each test picks from the same starting point."""
    import shutil

    root, sid = run_dir
    shutil.copytree(root / sid, tmp_path / "s" / sid)
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))

    def no_calls(*a, **k):
        raise AssertionError("picking must not call a model")

    monkeypatch.setattr(LMBoundary, "complete", no_calls)
    return SessionStore(str(tmp_path / "s")), sid


def _off_choice(version):
    """A front candidate that is not the version's own prompt (the front of the fake run has one)."""
    return next(c for c in front_rows(version) if c["prompt"] != version.prompt)


def test_candidates_keep_what_rebuilds_them_and_the_front_excludes_dominated_ones(store):
    st, sid = store
    v = st.load(sid).latest_version()
    scored = [c for c in v.candidates if c.get("valid_raw") is not None]
    assert all(c["tokens"] > 0 and "demos" in c and "format_line" in c for c in scored)
    front = front_rows(v)
    assert len(front) >= 2
    words = {c["id"]: len(c["prompt"].split()) for c in scored}

    def covers(f: dict, c: dict) -> bool:  # f is at least as good and no longer (words, tokens) than c
        return f["valid_raw"] >= c["valid_raw"] - 1e-9 and words[f["id"]] <= words[c["id"]] and f["tokens"] <= c["tokens"]

    for c in scored:  # every candidate off the front is dominated by one on it; none on it by another
        others = [f for f in front if f["id"] != c["id"]]
        if c in front:
            assert not any(covers(f, c) and (f["valid_raw"], -words[f["id"]]) != (c["valid_raw"], -words[c["id"]])
                           for f in others)  # fmt: skip
        else:
            assert any(covers(f, c) for f in front)


def test_pick_makes_the_candidate_a_version_whose_export_and_refine_start_are_that_candidate(store):
    st, sid = store
    v1 = st.load(sid).latest_version()
    cand = _off_choice(v1)
    r = runner.invoke(app, ["sessions", "pick", sid, str(cand["id"])], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "no model calls made" in r.output
    s = st.load(sid)
    v2 = s.latest_version()
    assert (v2.version, v2.parent) == (v1.version + 1, v1.version)
    assert v2.prompt == cand["prompt"] and v2.valid.raw == cand["valid_raw"]
    assert v2.settings["picked"] == {"version": v1.version, "candidate": cand["id"]}
    exported = runner.invoke(app, ["sessions", "export", sid], catch_exceptions=False).output
    assert exported.rstrip("\n") == cand["prompt"]
    spec = TaskSpec(**s.task_spec)
    assert candidate_of(v2).render(spec) == cand["prompt"]  # refine starts from exactly this candidate
    assert candidate_of(v2).demos == cand["demos"] and candidate_of(v2).format_line == cand["format_line"]
    assert v2.test is None and v2.verdict is None  # not scored on the held-out test: no calls were made


def test_reselecting_with_another_lambda_picks_the_best_penalized_by_it(store):
    st, sid = store
    s = st.load(sid)
    v1 = s.latest_version()
    scored = [c for c in v1.candidates if c.get("valid_raw") is not None]
    best_raw = max(c["valid_raw"] for c in scored)
    v = pick_for_lambda(s, 0.0)
    assert v.valid.raw == best_raw  # λ = 0: quality alone
    shortest = min(c["length"] for c in scored)
    v = pick_for_lambda(s, 5.0, version=v1.version)  # a huge λ: the shortest scored candidate wins
    chosen = next(c for c in scored if c["prompt"] == v.prompt)
    assert chosen["length"] == shortest and v.settings["picked"]["lambda"] == 5.0
    r = runner.invoke(app, ["sessions", "pick", sid, "--lambda", "5", "--version", "1"], catch_exceptions=False)
    assert r.exit_code == 0 and "no model calls made" in r.output  # the shortest is not v1's prompt: a new version


def test_pick_refuses_unknown_candidates_and_ambiguous_requests(store):
    st, sid = store
    with pytest.raises(SessionError, match="no candidate #999"):
        pick_candidate(st.load(sid), 999)
    r = runner.invoke(app, ["sessions", "pick", sid])
    assert r.exit_code != 0
    assert len(st.load(sid).versions) == 1


def test_a_second_pick_draws_from_the_run_again_and_unscored_candidates_are_refused(store):
    """After one pick the latest version (the picked one) has no candidates: a second pick failed with "version 2
    has no candidate #N" unless --version 1 was passed. A candidate never scored on valid was picked, scoreless."""
    st, sid = store
    s = st.load(sid)
    run = s.latest_version()
    scored = [c for c in run.candidates if c.get("valid_raw") is not None]
    pick_candidate(s, scored[0]["id"])
    second = pick_candidate(s, scored[-1]["id"])
    assert second.parent == run.version and second.settings["picked"]["version"] == run.version
    run.candidates.append({"id": 77, "prompt": "screened out", "valid_raw": None})
    with pytest.raises(SessionError, match="never scored on the valid rows"):
        pick_candidate(s, 77)


@pytest.mark.parametrize("lam", ["nan", "inf", "-0.1"])
def test_pick_refuses_a_lambda_that_is_not_a_number_of_0_or_more(store, lam):
    st, sid = store
    before = st.session_file(sid).read_text()
    r = runner.invoke(app, ["sessions", "pick", sid, "--lambda", lam])
    assert isinstance(r.exception, UsageError) and "λ must be a number, 0 or more" in str(r.exception)  # exit 2
    assert st.session_file(sid).read_text() == before  # no version added, no NaN written


def test_show_lists_the_front_and_the_paired_verdict(store):
    st, sid = store
    v1 = st.load(sid).latest_version()
    out = runner.invoke(app, ["sessions", "show", sid, "--pareto"], catch_exceptions=False).output
    assert f"quality-vs-length front of v{v1.version}" in out
    for c in front_rows(v1):
        assert f"#{c['id']} " in out
    assert "verdict: " in out and "ties on 20 test rows" in out
    assert f"sessions pick {sid} CANDIDATE" in out
    pick_candidate(st.load(sid), _off_choice(v1)["id"])  # stored through the function the UI calls too


def test_show_pareto_after_a_pick_shows_the_run_pick_picks_from(store):
    """After one pick, `show --pareto` said "v2 has no candidates scored on valid" while `pick` still picked from
    v1 (the latest version with candidates): both now use that rule, and show says which version's front it is."""
    st, sid = store
    v1 = st.load(sid).latest_version()
    cand = _off_choice(v1)
    assert runner.invoke(app, ["sessions", "pick", sid, str(cand["id"])], catch_exceptions=False).exit_code == 0
    out = runner.invoke(app, ["sessions", "show", sid, "--pareto"], catch_exceptions=False).output
    assert "has no candidates scored on valid" not in out
    assert f"quality-vs-length front of v{v1.version}" in out and "(v2, the latest version, has no candidates" in out
    line = next(x for x in out.splitlines() if x.startswith(f"#{cand['id']} "))
    assert line.endswith("← v2 (latest)")  # which candidate is the current prompt
    out = runner.invoke(app, ["sessions", "show", sid, "--candidates"], catch_exceptions=False).output
    assert f"candidates of v{v1.version}" in out and f"#{cand['id']} " in out
    out = runner.invoke(app, ["sessions", "show", sid, "--pareto", "--version", "2"], catch_exceptions=False).output
    assert "v2 has no candidates scored on valid" in out
    r = runner.invoke(app, ["sessions", "show", sid, "--version", "1"])
    assert isinstance(r.exception, UsageError) and "goes with --candidates or --pareto" in str(r.exception)


def test_picking_the_latest_prompt_again_adds_no_version(store):
    """A repeated `sessions pick` (or a second click in the UI, which calls pick_candidate) made identical versions."""
    st, sid = store
    v1 = st.load(sid).latest_version()
    own = next(c for c in v1.candidates if c["prompt"] == v1.prompt and c.get("valid_raw") is not None)
    r = runner.invoke(app, ["sessions", "pick", sid, str(own["id"])], catch_exceptions=False)
    assert r.exit_code == 0 and "already the latest version, v1; no version added" in r.output
    cand = _off_choice(v1)
    for _ in range(2):
        r = runner.invoke(app, ["sessions", "pick", sid, str(cand["id"])], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    assert f"candidate #{cand['id']} of v1 is already the latest version, v2; no version added" in r.output
    r = runner.invoke(app, ["sessions", "pick", sid, str(cand["id"]), "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["version"] == 2 and "no version added" in r.stderr
    s = st.load(sid)
    assert [v.version for v in s.versions] == [1, 2]
    assert pick_candidate(s, cand["id"]).version == 2 and len(s.versions) == 2  # the UI's path
    assert pick_candidate(s, own["id"]).version == 3  # v1's own prompt is not the latest any more: a new version
