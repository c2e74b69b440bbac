"""The web UI in a real Chromium (Debian's, driven by Playwright): select a span with the mouse and save a comment,
refine from the page and watch progress reach "done", and check that a `<script>` in a prompt does not run.

Run alone with `pytest -m browser`. Screenshots go to tmp, or to $PROMPTOMATIX_SCREENSHOTS_DIR (the README's come
from `PROMPTOMATIX_SCREENSHOTS_DIR=docs pytest -m browser`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
playwright_api = pytest.importorskip("playwright.sync_api")

from promptomatix.sessions import SessionStore  # noqa: E402
from promptomatix.ui.app import create_app  # noqa: E402
from tests.ui_support import TOKEN, fake_clients, make_session, wait_for  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PROMPTOMATIX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, timeout=TIMEOUT_MS)
        yield b
        b.close()


class SlowScript:
    """ASGI wrapper that serves the page's script 0.5 s late: a test that acts before the script has set the page
    up (a mouse drag before its mouseup handler exists) fails every time, not only on a loaded CI machine."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/app.js"):
            import asyncio

            await asyncio.sleep(0.5)
        await self.app(scope, receive, send)


class Server:
    """The app under uvicorn on 127.0.0.1 and a free port, in a thread; stopped (with its runs) at teardown."""

    def __init__(self, store: SessionStore) -> None:
        import uvicorn

        self.store = store
        app = create_app(store, token=TOKEN, clients=lambda: fake_clients(0.01), allowed_hosts=["127.0.0.1"])
        app = SlowScript(app)  # every page's script arrives late, as on a loaded machine (the race CI hit)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def page(browser):
    # CSP bypassed: the page's CSP would stop an injected inline script by itself, and the test of escaping must
    # not lean on it (the CSP header has its own test in test_ui_http.py). It also lets wait_for_function evaluate.
    context = browser.new_context(viewport={"width": 1360, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    yield pg
    context.close()
    assert errors == []


def shots_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("PROMPTOMATIX_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def wait_ready(page) -> None:
    """Wait until the page's script has attached its handlers (it marks <html data-ready>)."""
    page.wait_for_selector("html[data-ready]", state="attached")


def drag_select(page, text: str) -> None:
    """Select `text` inside the prompt with a real mouse drag, from its first to its last character, once the
    page's script has set the page up."""
    wait_ready(page)
    box = page.evaluate(
        """(needle) => {
            const pre = document.getElementById("prompt");
            const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const i = n.data.indexOf(needle);
                if (i < 0) continue;
                const r = document.createRange();
                r.setStart(n, i); r.setEnd(n, i + needle.length);
                const rects = r.getClientRects();
                const a = rects[0], b = rects[rects.length - 1];
                return {x0: a.left, y0: (a.top + a.bottom) / 2, x1: b.right, y1: (b.top + b.bottom) / 2};
            }
            return null;
        }""",
        text,
    )
    assert box is not None, f"{text!r} is not in the prompt"
    page.mouse.move(box["x0"] + 1, box["y0"])
    page.mouse.down()
    page.mouse.move(box["x1"] - 1, box["y1"], steps=8)
    page.mouse.up()


def test_select_a_span_with_the_mouse_and_save_a_comment(browser, page, store, tmp_path):
    sid = make_session(store)
    prompt = store.load(sid).get_version(1).prompt
    word = "sentiment" if "sentiment" in prompt else prompt.split()[2]
    with Server(store) as srv:
        page.goto(srv.url(f"/?token={TOKEN}"))
        assert "?token" not in page.url  # the token moved into a cookie
        page.click(f'tr[data-session="{sid}"] td.task a')
        page.wait_for_selector("#prompt")
        drag_select(page, word)
        page.wait_for_function("document.getElementById('span-quote').textContent.length > 0 && "
                               "!document.getElementById('span-save').disabled")  # fmt: skip
        assert page.text_content("#span-quote") == word
        page.fill("#span-comment", "name both labels here")
        with page.expect_navigation():
            page.click("#span-save")
        page.wait_for_selector("#feedback li.fb")
        assert page.locator("#prompt mark").first.text_content() == word
    doc = json.loads(store.session_file(sid).read_text())
    item = doc["feedback"][0]
    start = prompt.index(word)
    assert (item["text"], item["start"], item["end"]) == (word, start, start + len(word))
    assert item["comment"] == "name both labels here" and item["version"] == 1


CR_PROMPT = "Say negative if it complains.\r\nOtherwise say positive. \U0001f600 ok\r\nKeep it exact.\rLone CR.\nLast."


def test_span_feedback_on_a_prompt_with_carriage_returns(browser, page, store):
    """Prompts keep "\r\n" and lone "\r" (`--initial-prompt "$(cat windows.txt)"`, a teacher's rewrite). The HTML
    parser turned them into "\n", so every span after the first CR was refused; and a span across a line break was
    refused for any prompt, as the form sends each line break as "\r\n"."""
    sid = make_session(store)
    store.update(sid, lambda s: s.add_version(CR_PROMPT, backend="meta"))
    spans = ["Keep it exact", "Lone", "complains.\r\nOtherwise", "CR.\nLast"]
    with Server(store) as srv:
        page.goto(srv.url(f"/s/{sid}?v=2&token={TOKEN}"))
        for n, words in enumerate(spans, 1):
            page.locator("#prompt").scroll_into_view_if_needed()
            drag_select(page, words)
            page.wait_for_function("!document.getElementById('span-save').disabled")
            assert page.text_content("#span-quote") == words
            page.fill("#span-comment", f"comment {n}")
            with page.expect_navigation():
                page.click("#span-save")
            assert page.locator("#feedback li.fb").count() == n, page.text_content("main")[:300]
        assert page.text_content("#prompt") == CR_PROMPT
    items = store.load(sid).feedback
    assert [(f.text, CR_PROMPT[f.start : f.end]) for f in items] == [(w, w) for w in spans]


def test_refine_from_the_page_reaches_done_and_adds_a_version(browser, page, store, tmp_path):
    sid = make_session(store)
    other = store.new_session(description="Answer anatomy questions in two words", status="failed")
    store.save(other)
    with Server(store) as srv:
        page.goto(srv.url(f"/s/{sid}?token={TOKEN}"))
        page.fill("#general-form textarea", "Say what to do with sarcastic reviews.")
        with page.expect_navigation():
            page.click("#general-form button")
        with page.expect_navigation():
            page.click("#run-refine")
        page.wait_for_function("document.getElementById('job-status').textContent === 'done'", timeout=TIMEOUT_MS)
        assert page.is_hidden("#job-cancel")
        assert page.locator("#job-events li").count() >= 3
        page.click("#job-session")
        page.wait_for_selector('#versions tr[data-version="2"]')
        assert "v1 → v2" in page.text_content("#diff h2")
        out = shots_dir(tmp_path)
        wait_ready(page)
        point = page.locator("#candidates circle").last  # drawn last, so on top even where points coincide
        point.click()
        assert page.is_visible(f"#cand-{point.get_attribute('data-cand')}")
        page.screenshot(path=str(out / "ui-session.png"), full_page=True)
        page.goto(srv.url("/"))
        page.screenshot(path=str(out / "ui-sessions.png"), full_page=True)
    s = store.load(sid)
    assert [v.version for v in s.versions] == [1, 2] and s.feedback[0].applied_in == 2


def test_an_injected_script_in_a_prompt_does_not_run(browser, page, store):
    sid = make_session(store)
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

    def inject(s):
        s.description = f"Task {evil}"
        s.add_version(f"Classify the review. {evil}", backend="meta")

    store.update(sid, inject)
    with Server(store) as srv:
        page.goto(srv.url(f"/s/{sid}?token={TOKEN}"))
        page.wait_for_selector("#prompt")
        assert "<script>window.__pwned = 1</script>" in page.text_content("#prompt")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#prompt script, #prompt img, #task img").count() == 0
        page.goto(srv.url("/"))
        assert evil in page.text_content("#sessions")
        assert page.evaluate("window.__pwned") is None
