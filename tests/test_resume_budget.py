"""A resumed run continues the budget of the run it resumes: what that run spent before Ctrl-C (or a failure)
counts against its limits, so `--max-calls 150` bounds the run as a whole however often it is resumed. A resume
with nothing left is refused before it spends, and every message names the limits as the user gave them."""

from __future__ import annotations

import re

import pytest

from promptomatix import resume
from promptomatix.api import load_session
from promptomatix.errors import BudgetExceeded, ConfigurationError, RunInterrupted
from tests.test_pipeline import fakes, run
from tests.test_resume_keeps import HASTY, ResumeTask, _clients

LIMIT_S = 240
pytestmark = pytest.mark.usefixtures("time_limit")  # conftest.py: SIGALRM after LIMIT_S


def _interrupted(tmp_path, max_calls: int) -> tuple[str, int]:
    """A run under `max_calls` stopped by Ctrl-C at its 65th task call: its id and the calls it spent."""
    clients, _task, _teacher = fakes(task_interrupt=65)
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients, max_calls=max_calls)
    s = load_session(e.value.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.progress["spent_before"]["calls"] == s.total_spent().calls > 0
    return e.value.session_id, _answered(s)


def _answered(s) -> int:
    """Calls that count against a resumed run's limit: the call Ctrl-C cut off got no answer and paid nothing."""
    return s.total_spent().calls - s.total_spent().failed_calls


def test_a_resumed_run_counts_what_it_spent_before_against_its_limit(tmp_path):
    sid, before = _interrupted(tmp_path, 150)
    # new model names: nothing replays, and the resumed search would spend ~90 calls on a budget of its own
    events = []
    out = resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), progress=events.append)
    # the live display shows the run's calls against its limit (it showed this attempt's, with no limit)
    steps = [e for e in events if e.max_calls is not None]
    assert steps and all(e.max_calls == 150 and e.calls_before == before for e in steps)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.total_spent().calls <= 150  # was 160-175: the resume got all 150 again
    assert out.metrics.calls <= 150 - before
    assert f"resumed: the run had spent {before} of --max-calls 150 before it stopped" in " ".join(out.notes)
    assert s.status == "completed" and not s.progress  # a later resume of another run starts clean


def test_a_resume_with_nothing_left_is_refused_before_it_spends(tmp_path):
    sid, before = _interrupted(tmp_path, 150)
    with pytest.raises(BudgetExceeded) as e:
        resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), max_calls=before)
    assert f"spent {before} of its --max-calls {before} before it stopped" in e.value.message
    assert f"max_calls={2 * before}" in (e.value.hint or "")
    with pytest.raises(BudgetExceeded) as e:  # the advice is what was spent plus the limit: it advised 2 x 10
        resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), max_calls=10)
    assert f"max_calls={before + 10}" in (e.value.hint or "")
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.status == "interrupted" and _answered(s) == before  # nothing spent, nothing changed


def test_the_limit_a_too_small_resume_advises_is_the_whole_runs_and_it_works(tmp_path):
    sid, before = _interrupted(tmp_path, 150)
    with pytest.raises(ConfigurationError, match="no search fits the budget") as e:
        resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), max_calls=before + 20)
    advised = int(re.search(r"max_calls=(\d+)", e.value.hint or "").group(1))
    assert advised > before + 20  # it advised what is left (~40) before: less than the run had already spent
    out = resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), max_calls=advised)
    assert load_session(sid, sessions_dir=str(tmp_path / "s")).total_spent().calls <= advised
    assert out.session_id == sid


def test_each_interruption_adds_to_what_the_run_spent(tmp_path):
    sid, before = _interrupted(tmp_path, 400)
    clients = _clients(ResumeTask(), HASTY)
    clients["task"].default = _stopping(clients["task"].default, after=12)
    with pytest.raises(RunInterrupted):
        resume(sid, clients=clients, sessions_dir=str(tmp_path / "s"))
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.total_spent().calls > before
    assert s.progress["spent_before"]["calls"] == s.total_spent().calls  # both attempts, counted once each
    out = resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"))
    assert f"had spent {_answered(s)} of --max-calls 400" in " ".join(out.notes)


def _stopping(answer, after: int):
    """`answer`, with Ctrl-C on the call after `after` calls."""
    seen = {"n": 0}

    def reply(messages):
        seen["n"] += 1
        if seen["n"] > after:
            raise KeyboardInterrupt
        return answer(messages)

    return reply


def test_limit_messages_of_a_resumed_run_name_the_limits_the_user_gave():
    from promptomatix.lm.ceiling import Ceiling, limit_reason
    from promptomatix.lm.usage import Budget
    from promptomatix.run.carried import budget_left
    from promptomatix.sessions.models import Usage

    before = Usage(calls=40, prompt_tokens=2500, completion_tokens=500, cost_usd=0.3, seconds=120)
    b = budget_left(Budget(max_calls=100, max_tokens=4000, max_usd=0.5, max_seconds=600), before)
    assert (b.max_calls, b.max_tokens, b.max_usd, b.max_seconds) == (60, 1000, pytest.approx(0.2), 480)
    assert b.shown("max_calls") == 100 and b.shown("max_tokens") == 4000
    why = limit_reason(b, Ceiling(900, 0.0), Ceiling(), Ceiling(200, 0.0), (0.0, 0.0))
    assert why == ("tokens", "budget of 4000 tokens reached: 3900 used, the next call can take up to 200")
    # its first call is not "too small for one call": the limit is what is left after the earlier attempt
    why = limit_reason(b, Ceiling(), Ceiling(), Ceiling(1200, 0.0), (0.0, 0.0))
    assert why == ("tokens", "budget of 4000 tokens reached: 3000 used, the next call can take up to 1200")
    unlimited = budget_left(Budget(), before)  # no limit stays no limit; what was spent is still known (progress)
    assert unlimited.max_calls is None and unlimited.shown("max_calls") is None and unlimited.carried["max_calls"] == 40


def test_resuming_a_refine_continues_the_refines_own_limit(tmp_path):
    from promptomatix.followup import refine

    done = run(tmp_path, clients=fakes()[0], max_calls=400)
    sid = done.session_id
    clients = _clients(ResumeTask(), HASTY)
    clients["task"].default = _stopping(clients["task"].default, after=30)
    with pytest.raises(RunInterrupted):
        refine(sid, clients=clients, sessions_dir=str(tmp_path / "s"), max_calls=150)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    before = s.progress["spent_before"]["calls"] - s.progress["spent_before"]["failed_calls"]
    out = resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"))
    assert f"had spent {before} of --max-calls 150" in " ".join(out.notes)  # the optimize's 400 before
    assert out.metrics.calls <= 150 - before


def test_the_progress_of_an_unlimited_resume_counts_the_runs_earlier_calls(tmp_path):
    sid, before = _interrupted(tmp_path, None)  # no limit
    events = []
    resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"), progress=events.append)
    assert load_session(sid, sessions_dir=str(tmp_path / "s")).status == "completed"
    # the live line adds the earlier attempt's calls: it showed this attempt's alone when the run had no limit
    assert events and {e.calls_before for e in events} == {before} and {e.max_calls for e in events} == {None}


def test_a_limit_given_to_resume_is_the_runs_from_then_on(tmp_path):
    sid, _ = _interrupted(tmp_path, 100)
    clients = _clients(ResumeTask(), HASTY)
    clients["task"].default = _stopping(clients["task"].default, after=12)
    with pytest.raises(RunInterrupted):
        resume(sid, clients=clients, sessions_dir=str(tmp_path / "s"), max_calls=400)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    out = resume(sid, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"))
    assert f"had spent {_answered(s)} of --max-calls 400" in " ".join(out.notes)  # was refused: "... of its 100"


def test_a_refine_refused_before_it_spends_leaves_the_session_completed(tmp_path):
    from promptomatix.followup import refine

    sid = run(tmp_path, clients=fakes()[0]).session_id
    with pytest.raises(ConfigurationError, match="no search fits the budget"):
        refine(sid, clients=fakes()[0], sessions_dir=str(tmp_path / "s"), max_calls=5)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.status == "completed" and not s.progress  # was `failed`, and `resume` ran it with no limit
    assert s.events[-1]["kind"] == "refused"


def test_calls_that_got_no_answer_do_not_use_up_a_resumed_runs_calls(tmp_path):
    from promptomatix.errors import LMCallError

    clients, _task, _teacher = fakes()
    calls = {"n": 0}
    answer = clients["task"].default

    def outage(messages):  # calls 41-50 get no answer (the provider is down), then Ctrl-C
        calls["n"] += 1
        if calls["n"] > 50:
            raise KeyboardInterrupt
        if calls["n"] > 40:
            raise LMCallError("HTTP 400 from the provider")
        return answer(messages)

    clients["task"].default = outage
    with pytest.raises(RunInterrupted) as e:
        run(tmp_path, clients=clients, max_calls=200)
    s = load_session(e.value.session_id, sessions_dir=str(tmp_path / "s"))
    assert s.total_spent().failed_calls >= 10
    out = resume(s.session_id, clients=_clients(ResumeTask(), HASTY), sessions_dir=str(tmp_path / "s"))
    notes = " ".join(out.notes)
    assert f"had spent {_answered(s)} of --max-calls 200" in notes  # counted all its calls before
    assert f"({s.total_spent().failed_calls} calls that got no answer not counted)" in notes


def test_a_time_limited_run_that_used_its_time_is_resumed_to_finish_it(tmp_path):
    sid, _ = _interrupted(tmp_path, 400)
    s = load_session(sid, sessions_dir=str(tmp_path / "s"))
    assert s.total_spent().seconds > 0.001 * 60  # the run passed --max-minutes 0.001 before it stopped
    # the same models: what the run asked before replays free, and the first new call finds no time left
    out = resume(sid, clients=fakes()[0], sessions_dir=str(tmp_path / "s"), max_minutes=0.001)
    assert out.metrics.optimized_test_score is not None  # was refused: "spent 0.0 min of its --max-minutes 0.0 min"
    assert "of --max-minutes 0.001 min before it stopped" in " ".join(out.notes)


def test_a_limit_given_to_a_resume_that_stops_before_its_search_is_kept(tmp_path):
    from promptomatix import process_input
    from tests.test_pipeline import TASK

    sessions = str(tmp_path / "s")
    clients, _task, _teacher = fakes(teacher_interrupt=3)  # Ctrl-C while the teacher writes rows: no search yet
    with pytest.raises(RunInterrupted) as e:
        process_input(clients=clients, human_input=TASK, sessions_dir=sessions, synthetic_data_size=12, max_calls=4)
    sid = e.value.session_id
    with pytest.raises(RunInterrupted):
        resume(sid, clients=fakes(teacher_interrupt=3)[0], sessions_dir=sessions, max_calls=500)
    # the next plain resume continues with 500 (it was refused against the first run's 4)
    assert load_session(sid, sessions_dir=sessions).progress["limits"]["max_calls"] == 500
