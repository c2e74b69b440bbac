"""The web UI over HTTP (Starlette's TestClient): the token and cookie, CSRF, headers, escaping, every page, and the
feedback, pick, export and delete actions, checked against the session file the CLI reads."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient

from promptomatix.sessions import SessionStore
from promptomatix.sessions.models import Score, TestScore
from promptomatix.ui.app import create_app
from promptomatix.ui.security import cookie_name, csrf_for
from tests.ui_support import TOKEN, make_session

CSRF = csrf_for(TOKEN)


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def sid(store) -> str:
    return make_session(store)


@pytest.fixture
def client(store):
    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as c:
        c.cookies.set(cookie_name(TOKEN), TOKEN)
        yield c


@pytest.fixture
def anon(store):
    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as c:
        yield c


def doc(store: SessionStore, sid: str) -> dict:
    return json.loads(store.session_file(sid).read_text())


# --- token, cookie, headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/new", "/static/app.js", "/s/20261122-043012-3f9a1c"])
def test_every_request_needs_the_token(anon, path):
    assert anon.get(path).status_code == 403
    assert anon.get(path + "?token=wrong").status_code == 403
    anon.cookies.set(cookie_name(TOKEN), "wrong")
    assert anon.get(path).status_code == 403


def test_token_in_url_sets_a_cookie_and_is_dropped_from_the_url(anon, sid):
    r = anon.get(f"/s/{sid}?v=1&token={TOKEN}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/s/{sid}?v=1"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(TOKEN)}={TOKEN}") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert anon.get(f"/s/{sid}?v=1").status_code == 200  # the cookie now carries it


def test_security_headers_and_no_inline_script(client, sid):
    r = client.get(f"/s/{sid}")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert re.search(r"<script>[^<]", r.text) is None  # all script comes from /static
    assert client.get("/static/app.js").status_code == 200


def test_host_check_blocks_dns_rebinding(store):
    app = create_app(store, token=TOKEN, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://evil.example:8765", follow_redirects=False) as c:
        assert c.get(f"/?token={TOKEN}").status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as c:
        assert c.get(f"/?token={TOKEN}").status_code == 303


# --- CSRF ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [{}, {"csrf": "nope"}])
def test_posts_without_the_csrf_token_change_nothing(client, store, sid, extra):
    before = doc(store, sid)
    for path, form in [
        (f"/s/{sid}/feedback", {"comment": "x y", "version": "1"}),
        (f"/s/{sid}/delete", {"confirm": sid}),
        (f"/s/{sid}/pick", {"version": "1", "candidate": "0"}),
        (f"/s/{sid}/run/refine", {}),
    ]:
        r = client.post(path, data={**form, **extra})
        assert r.status_code == 403, path
        assert "CSRF" in r.text
    assert doc(store, sid) == before


def test_csrf_header_is_accepted(client, store, sid):
    r = client.post(f"/s/{sid}/feedback", data={"comment": "be shorter"}, headers={"X-CSRF-Token": CSRF})
    assert r.status_code == 303
    assert doc(store, sid)["feedback"][0]["comment"] == "be shorter"


# --- pages -----------------------------------------------------------------------------------------------------


def test_sessions_page_lists_filters_and_sorts(client, store, sid):
    other = store.new_session(description="Summarize a news article", status="failed")
    page = client.get("/").text
    assert sid in page and "Classify the sentiment" in page and other.session_id in page
    assert "simple_meta_prompt" in page and "n=6" in page  # best held-out score with its CI and size
    assert client.get("/?q=news").text.count('data-session="') == 1
    assert other.session_id in client.get("/?status=failed").text
    assert sid not in client.get("/?status=failed").text
    by_score = client.get("/?sort=score&order=desc").text
    assert by_score.index(sid) < by_score.index(other.session_id)
    assert "No sessions match" in client.get("/?q=zzz-nothing").text


def test_session_page_shows_versions_prompt_scores_candidates(client, store, sid):
    s = store.load(sid)
    v = s.get_version(1)
    page = client.get(f"/s/{sid}").text
    assert 'id="prompt"' in page and 'data-version="1"' in page
    assert v.test is not None and f"{v.test.mean:.3f}" in page
    assert 'id="chart"' in page and page.count('class="cand-detail"') == len(v.candidates) > 0
    # the run stored its paired verdict, its Pareto front and the per-row held-out results
    assert re.search(r'id="verdict">(improved|no_detectable_difference|worse|unreliable)', page)
    assert "wins /" in page and "Pareto front: marked" in page
    assert "stored no per-example results" not in page and v.test_examples[0]["expected"]["label"] in page
    # the prompt in <pre> is exactly the stored prompt (the leading newline is eaten by the HTML parser)
    pre = re.search(r'<pre id="prompt"[^>]*>\n(.*?)</pre>', page, re.S).group(1)
    assert pre.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&") == v.prompt


def test_unknown_and_invalid_sessions_are_404(client):
    assert client.get("/s/20261122-043012-3f9a1c").status_code == 404
    for bad in ["a.b", "%2e%2e", "..%2fetc", "con", "x" * 65]:
        assert client.get(f"/s/{bad}").status_code == 404, bad
    assert client.get("/s/20261122-043012-3f9a1c/export").status_code == 404


def test_what_does_not_exist_is_404_and_json_asks_get_json(client, sid):
    """A missing version, candidate or run was 409 (a conflict), an export of a missing version 200, and the run
    status poll answered a missing run with an HTML page."""
    assert client.get(f"/s/{sid}?v=999").status_code == 404
    assert client.get(f"/s/{sid}/export?format=json&v=999").status_code == 404
    assert client.get(f"/s/{sid}/export?format=text&v=999").status_code == 404
    missing = client.get("/jobs/nope/status")
    assert missing.status_code == 404 and "no such run" in missing.json()["error"]


def test_verdict_pareto_and_examples_render(client, store, sid):
    def add(s):
        v = s.get_version(1)
        ids = [c["id"] for c in v.candidates]
        v.verdict = {"outcome": "improved", "delta": 0.25, "p_value": 0.012}
        v.pareto = ids[:1]
        v.test_examples = [
            {"input": {"review": "awful film"}, "expected": "negative", "got": "positive", "score": 0.0},
            {"input": {"review": "great film"}, "expected": "positive", "got": "positive", "score": 1.0},
        ]

    store.update(sid, add)
    page = client.get(f"/s/{sid}").text
    assert 'id="verdict">improved' in page and "p_value: 0.012" in page
    assert "Pareto front: marked" in page and "on-front" in page
    assert "awful film" in page and "great film" in page
    failures = client.get(f"/s/{sid}?failures=1").text
    assert "awful film" in failures and "great film" not in failures
    assert "improved" in client.get("/").text


def test_diff_of_two_versions(client, store, sid):
    store.update(sid, lambda s: s.add_version(s.get_version(1).prompt + "\nAnswer in one word.", backend="meta"))
    page = client.get(f"/s/{sid}?v=2&a=1&b=2").text
    assert "Diff v1 → v2" in page
    assert re.search(r'<tr class="add">.*Answer in one word\.', page)


def test_new_job_and_delete_pages_render(client, sid):
    assert 'name="task"' in client.get("/new").text
    assert "Type the session id" in client.get(f"/s/{sid}/delete").text
    assert client.get("/jobs/nope").status_code == 404


# --- escaping --------------------------------------------------------------------------------------------------


def test_script_in_prompt_description_and_feedback_is_text(client, store, sid):
    evil = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'

    def inject(s):
        s.description = evil
        s.add_version(f"Classify. {evil}", backend="meta")

    store.update(sid, inject)
    r = client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": evil, "version": "2"})
    assert r.status_code == 303
    for page in (client.get(f"/s/{sid}").text, client.get("/").text):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page


# --- feedback --------------------------------------------------------------------------------------------------


def test_span_feedback_lands_in_the_session_file(client, store, sid):
    prompt = store.load(sid).get_version(1).prompt
    word = "sentiment" if "sentiment" in prompt else prompt.split()[1]
    start = prompt.index(word)
    form = {"csrf": CSRF, "version": "1", "start": str(start), "end": str(start + len(word)), "text": word}
    r = client.post(f"/s/{sid}/feedback", data={**form, "comment": "name the two labels"})
    assert r.status_code == 303 and r.headers["location"] == f"/s/{sid}?v=1#feedback"
    item = doc(store, sid)["feedback"][0]
    assert (item["start"], item["end"], item["text"], item["version"]) == (start, start + len(word), word, 1)
    assert item["comment"] == "name the two labels" and item["status"] == "open"
    assert "<mark" in client.get(f"/s/{sid}").text  # the span is highlighted


def test_span_offsets_from_the_browser_are_utf16(client, store, sid):
    store.update(sid, lambda s: s.add_version("Emoji 😀 then the word target here.", backend="meta"))
    # the browser counts 😀 as two units: "target" starts at unit 23, code point 22
    form = {"csrf": CSRF, "version": "2", "start": "23", "end": "29", "text": "target", "comment": "clearer"}
    assert client.post(f"/s/{sid}/feedback", data=form).status_code == 303
    item = doc(store, sid)["feedback"][0]
    assert (item["start"], item["end"], item["text"]) == (22, 28, "target")
    inside = {**form, "start": "7", "end": "9", "text": " t"}  # unit 7 is the middle of the emoji
    assert client.post(f"/s/{sid}/feedback", data=inside).status_code == 400


def test_span_offsets_on_a_prompt_with_carriage_returns(client, store, sid):
    """The page writes each CR as `&#13;` (a raw one becomes "\n" in the DOM, shifting every offset after it), and
    the text a form sends with its line breaks as "\r\n" still matches (the browser test selects with a mouse)."""
    prompt = "Say negative.\r\nKeep it exact.\rLone CR.\nLast line."
    store.update(sid, lambda s: s.add_version(prompt, backend="meta"))
    page = client.get(f"/s/{sid}?v=2").text
    assert "Say negative.&#13;\nKeep it exact.&#13;<br>Lone CR.\nLast line.</pre>" in page
    for words, sent in [("Keep it exact", "Keep it exact"), ("exact.\rLone", "exact.\r\nLone"),
                        ("CR.\nLast", "CR.\r\nLast")]:  # fmt: skip
        start = prompt.index(words)
        form = {"csrf": CSRF, "version": "2", "start": str(start), "end": str(start + len(words)), "text": sent}
        assert client.post(f"/s/{sid}/feedback", data={**form, "comment": "why"}).status_code == 303, words
    assert [(f["text"], f["start"]) for f in doc(store, sid)["feedback"]] == [
        (w, prompt.index(w)) for w in ("Keep it exact", "exact.\rLone", "CR.\nLast")
    ]
    form = {"csrf": CSRF, "version": "2", "start": "0", "end": "15", "text": "Say negative.\n\nK", "comment": "x"}
    assert client.post(f"/s/{sid}/feedback", data=form).status_code == 400  # a different text is still refused


def test_span_that_does_not_match_is_refused(client, store, sid):
    form = {"csrf": CSRF, "version": "1", "start": "0", "end": "4", "text": "nope", "comment": "x y"}
    r = client.post(f"/s/{sid}/feedback", data=form)
    assert r.status_code == 400 and "does not match" in r.text
    assert doc(store, sid)["feedback"] == []


def test_edit_resolve_reopen_delete(client, store, sid):
    client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": "first one"})
    client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": "second one"})

    def act(fid, action, **extra):
        data = {"csrf": CSRF, "action": action, **extra}
        return client.post(f"/s/{sid}/feedback/{fid}", data=data)

    assert act("fb1", "edit", comment="first, edited").status_code == 303
    assert act("fb1", "resolve").status_code == 303
    assert act("fb2", "delete").status_code == 303
    items = doc(store, sid)["feedback"]
    assert [(f["id"], f["comment"], f["status"]) for f in items] == [("fb1", "first, edited", "dismissed")]
    assert act("fb1", "reopen").status_code == 303
    assert doc(store, sid)["feedback"][0]["status"] == "open"
    assert act("fb1", "explode").status_code == 400
    assert act("fb9", "resolve").status_code == 404  # no such item
    assert act("fb1", "edit", comment="   ").status_code == 400


def test_applied_feedback_is_history(client, store, sid):
    client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": "be shorter"})
    store.update(sid, lambda s: s.add_version("Shorter.", backend="meta", feedback_applied=["fb1"]))
    for action in ("edit", "delete", "resolve"):
        r = client.post(f"/s/{sid}/feedback/fb1", data={"csrf": CSRF, "action": action, "comment": "x y"})
        assert r.status_code == 409, action
    assert doc(store, sid)["feedback"][0]["status"] == "applied"
    assert "applied in v2" in client.get(f"/s/{sid}").text


# --- pick, export, delete --------------------------------------------------------------------------------------


def test_pick_a_candidate_makes_a_new_version(client, store, sid):
    cand = store.load(sid).get_version(1).candidates[0]
    r = client.post(f"/s/{sid}/pick", data={"csrf": CSRF, "version": "1", "candidate": str(cand["id"])})
    assert r.status_code == 303 and r.headers["location"] == f"/s/{sid}?v=2"
    v2 = store.load(sid).get_version(2)
    assert v2.prompt == cand["prompt"] and v2.parent == 1
    assert v2.settings["picked"] == {"version": 1, "candidate": cand["id"]}
    assert v2.valid == Score(raw=cand["valid_raw"], penalized=cand["valid_penalized"])
    bad = client.post(f"/s/{sid}/pick", data={"csrf": CSRF, "version": "1", "candidate": "999"})
    assert bad.status_code == 404 and len(store.load(sid).versions) == 2  # no such candidate
    again = client.post(f"/s/{sid}/pick", data={"csrf": CSRF, "version": "1", "candidate": str(cand["id"])})
    assert again.headers["location"] == f"/s/{sid}?v=2&picked=same" and len(store.load(sid).versions) == 2
    page = client.get(again.headers["location"]).text  # it redirected to v2 without a word
    assert "already is the latest version, v2: no version added" in page
    assert "no version added" not in client.get(f"/s/{sid}?v=2&picked=<b>x</b>").text  # only the fixed notice


def test_exports(client, store, sid):
    text = client.get(f"/s/{sid}/export?format=text&v=1")
    assert text.text == store.load(sid).get_version(1).prompt
    assert f'filename="{sid}-v1-text.txt"' in text.headers["content-disposition"]
    as_json = client.get(f"/s/{sid}/export?format=json").json()
    assert as_json["session_id"] == sid
    assert client.get(f"/s/{sid}/export?format=dspy").status_code == 409  # meta versions have no DSPy program
    assert client.get(f"/s/{sid}/export?format=exe").status_code == 400


def test_delete_needs_the_typed_id(client, store, sid):
    assert client.post(f"/s/{sid}/delete", data={"csrf": CSRF, "confirm": "yes"}).status_code == 400
    assert store.exists(sid)
    r = client.post(f"/s/{sid}/delete", data={"csrf": CSRF, "confirm": sid})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert not store.exists(sid)


def test_a_corrupt_session_can_be_deleted_from_the_page(client, store, sid):
    """Its error says to delete it; the page loaded it first and answered 409 (the CLI's delete does not load)."""
    store.session_file(sid).write_text("{ not json")
    assert f'href="/s/{sid}/delete"' in client.get("/").text  # listed as unreadable, with a delete link
    page = client.get(f"/s/{sid}/delete")
    assert page.status_code == 200 and "is corrupt" in page.text and "Type the session id" in page.text
    r = client.post(f"/s/{sid}/delete", data={"csrf": CSRF, "confirm": sid})
    assert r.status_code == 303 and not store.session_dir(sid).exists()
    assert client.get(f"/s/{sid}/delete").status_code == 404


def test_scores_render_na_when_missing(client, store):
    s = store.new_session(description="hand made")
    s.add_version("Do it.", backend="initial", test=TestScore(mean=0.5, n=4))
    store.save(s)
    page = client.get(f"/s/{s.session_id}").text
    assert "0.500 n=4" in page and "recorded no candidates" in page


# --- the command -----------------------------------------------------------------------------------------------


def test_cli_refuses_a_remote_host_without_the_flag():
    code = "from promptomatix.cli.app import main; main(['ui', '--host', '0.0.0.0', '--port', '0'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--allow-remote" in r.stderr


def test_help_does_not_import_the_web_stack():
    code = "import sys, promptomatix.cli.app; print(any(m in sys.modules for m in ('starlette', 'uvicorn', 'jinja2')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_a_failed_runs_spending_is_listed_with_the_session(client, store, sid):
    """The sessions page's calls and cost summed the versions only: a run that failed (or was interrupted, or kept
    the previous version) cost nothing there. A session's `spent` counts every run."""
    from promptomatix.sessions.models import Usage

    failed = store.new_session(description="Summarize a news article", status="failed")
    failed.add_spent(Usage(calls=37, prompt_tokens=900, cost_usd=0.0123))
    store.save(failed)
    row = re.search(rf'data-session="{failed.session_id}".*?</tr>', client.get("/").text, re.S)
    assert row is not None and ">37<" in row.group(0).replace(" ", "")
    assert "spent in all runs: 37 calls" in client.get(f"/s/{failed.session_id}").text
    old = store.new_session(description="saved before spent existed", status="completed")
    old.add_version("Classify.", backend="simple_meta_prompt", usage=Usage(calls=12, cost_usd=0.001))
    store.save(old)  # spent is None: its versions' usage is what it has
    row = re.search(rf'data-session="{old.session_id}".*?</tr>', client.get("/").text, re.S)
    assert row is not None and ">12<" in row.group(0).replace(" ", "")
