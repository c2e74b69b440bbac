"""The hostile-input sweep: bad files, bad flags, bad ids, provider faults, interrupts and concurrent commands.

Each case runs the real CLI in a subprocess (fake models through PROMPTOMATIX_FAKE_LM, or a real HTTP fault server
on 127.0.0.1) in its own sessions dir, and is judged on what a user relies on:

- crashed: a traceback, "unexpected error", or no exit within the case's time bound;
- exit 0 after failing: the case must fail and the command said it succeeded;
- leaked: a planted secret appears in the sessions dir, stdout or stderr;
- lost data: rows were dropped and neither the exit code nor the output says so;
- left running: a session is left with status `running` after the command ended;
- clean: the expected exit code and a one-line message with the expected words.

    python -m benchmarks.hostile [--only NAME,NAME] [--json out.json]

Prints one line per case and the counts (tried / clean / crashed / exit-0-after-failing / lost / leaked).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptomatix.testing.fault_server import FaultServer

SECRET = "sk-SECRET0xyz"  # planted in keys and URLs; must never be written or printed
TASK = "Classify the sentiment of a movie review as positive or negative"
FIELDS = ["--input-fields", "review", "--output-fields", "label", "--task-type", "classification",
          "--labels", "positive,negative"]  # fmt: skip
SCRIPT = {
    "task": {"rules": [[["awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Say negative if the review is awful, else positive."}]],
                "default": {}},
}  # fmt: skip


@dataclass
class Case:
    name: str
    argv: list[str]
    expect_exit: tuple[int, ...]
    expect_text: str = ""
    server: str | None = None  # fault-server mode; "{BASE}" in argv becomes its URL
    fake: bool = True  # use the scripted fake models
    must_fail: bool = True
    data_loss: bool = False  # exit 0 without expect_text means rows were lost silently
    interrupt_after: float | None = None
    timeout: float = 120.0
    json_stdout: bool = False
    env: dict[str, str] = field(default_factory=dict)
    # commands run while the main one is live ("{SID}" = its session); each must refuse (exit 1, "busy")
    while_running: list[list[str]] = field(default_factory=list)


def _write_files(root: Path) -> dict[str, str]:
    good = ["review,label"] + [
        f"{'great wonderful' if i % 2 else 'awful boring'} film {i},{'positive' if i % 2 else 'negative'}"
        for i in range(24)
    ]
    bad_quote = list(good)
    bad_quote[5] = '"awful boring film 4,negative'  # opens a quote at the start of a field, never closed
    files = {
        "good": "\n".join(good) + "\n",
        "bad_quote": "\n".join(bad_quote) + "\n",
        "one_row": "review,label\ngreat film,positive\n",
        "empty": "",
        "missing_col": "text,stars\nnice,5\n",
        "bad_jsonl": '{"review": "ok film", "label": "positive"}\n{"review": broken\n',
        "binary": "\x00\x01\x02PK\x03\x04",
    }
    out = {}
    for name, text in files.items():
        ext = "jsonl" if "jsonl" in name else "csv"
        path = root / f"{name}.{ext}"
        path.write_text(text, encoding="latin-1" if name == "binary" else "utf-8")
        out[name] = str(path)
    (root / "bad.gguf").write_bytes(b"not a gguf at all" * 10)
    (root / "metric_raises.py").write_text("def metric(gold, pred, trace=None):\n    raise RuntimeError('boom')\n")
    (root / "metric_sig.py").write_text("def metric():\n    return 1.0\n")
    (root / "script.json").write_text(json.dumps(SCRIPT))
    out.update(gguf=str(root / "bad.gguf"), metric_raises=str(root / "metric_raises.py"),
               metric_sig=str(root / "metric_sig.py"), script=str(root / "script.json"))  # fmt: skip
    return out


def cases(f: dict[str, str]) -> list[Case]:
    opt = ["optimize", TASK, "--quiet", "--synthetic-data-size", "0"]
    http = ["--model", "openai/fault", "--api-base", "{BASE}", "--api-key", SECRET, "--request-timeout", "3"]
    data = ["--data", f["good"], *FIELDS]
    # fmt: off
    return [
        Case("unknown model", [*opt, *data, "--model", "nosuch/model-x"], (2,), "model", fake=False),
        Case("unknown local model", [*opt, *data, "--model", "local/nosuch"], (2,), "nosuch", fake=False),
        Case("invalid gguf", [*opt, *data, "--model", f"local:{f['gguf']}"], (1,), "gguf", fake=False),
        Case("connection refused", [*opt, *data, "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1",
                                    "--api-key", SECRET], (1,), "refused", fake=False),
        Case("http 500", [*opt, *data, *http, "--max-calls", "80"], (1,), "500", server="500", fake=False),
        Case("http 429", [*opt, *data, *http, "--max-calls", "80"], (1,), "429", server="429", fake=False),
        Case("http 401", [*opt, *data, *http], (1,), "401", server="401", fake=False),
        Case("malformed json", [*opt, *data, *http, "--max-calls", "80"], (1,), "", server="malformed", fake=False),
        Case("hung provider", [*opt, *data, *http, "--max-calls", "80"], (1,), "within", server="hang", fake=False,
             timeout=90),
        Case("missing api key", [*opt, *data, "--model", "openai/gpt-4o-mini"], (1,), "key", fake=False,
             env={"OPENAI_API_KEY": ""}, timeout=30),
        Case("secret in api-base query", [*opt, *data, "--model", "openai/fault", "--api-base",
             "{BASE}?code=" + SECRET + "&api-version=1", "--api-key", SECRET], (0,), server="ok", fake=False,
             must_fail=False),
        Case("secret in api-base userinfo", [*opt, *data, "--model", "openai/fault", "--api-base",
             "{BASE}".replace("http://", "http://user:" + SECRET + "@")], (0, 1), server="ok", fake=False,
             must_fail=False),
        Case("metric raises", [*opt, *data, "--metric", f"{f['metric_raises']}:metric"], (1,), "metric"),
        Case("metric bad signature", [*opt, *data, "--metric", f"{f['metric_sig']}:metric"], (1,), "metric"),
        Case("malformed sample data", [*opt, "--sample-data", '[{"review": "x",'], (1, 2), "sample"),
        Case("csv unbalanced quote", [*opt, "--data", f["bad_quote"], *FIELDS], (0, 1), "line", data_loss=True),
        Case("one row", [*opt, "--data", f["one_row"], *FIELDS], (1,), "row"),
        Case("empty file", [*opt, "--data", f["empty"], *FIELDS], (1,), "empty"),
        Case("missing column", [*opt, "--data", f["missing_col"], *FIELDS], (1,), "review"),
        Case("bad jsonl", [*opt, "--data", f["bad_jsonl"], *FIELDS], (0, 1), "line", data_loss=True),
        Case("binary file", [*opt, "--data", f["binary"], *FIELDS], (1,), ""),
        Case("missing file", [*opt, "--data", "/nonexistent/x.csv", *FIELDS], (1, 2), "x.csv"),
        Case("no task", ["optimize", "--quiet"], (2,), "task"),
        Case("bad search type", [*opt, *data, "--search-type", "bogus"], (2,), "search"),
        Case("unknown dspy module", [*opt, *data, "--backend", "dspy", "--dspy-module", "nosuch"], (2,), "nosuch"),
        Case("missing meta-prompt", [*opt, *data, "--meta-prompt", "/nonexistent/m.txt"], (2,), "meta-prompt"),
        Case("zero max-calls", [*opt, *data, "--max-calls", "0"], (2,), "max-calls"),
        Case("zero threads", [*opt, *data, "--threads", "0"], (2,), "threads"),
        Case("bad backend", [*opt, *data, "--backend", "nosuch"], (2,), "backend"),
        Case("session id traversal", ["sessions", "show", "../../etc/passwd"], (1, 2), "session"),
        Case("session id absolute", ["sessions", "export", "/etc/passwd"], (1, 2), "session"),
        Case("session id missing", ["sessions", "show", "20990101-000000-abcdef"], (1,), "no session"),
        Case("export bad format", ["sessions", "export", "x", "--format", "pdf"], (1, 2), "format"),
        Case("refine unknown", ["refine", "nosuch-session"], (1,), "session"),
        Case("json pure (meta)", [*opt, *data, "--json"], (0,), must_fail=False, json_stdout=True),
        Case("json pure (dspy bootstrap)", [*opt, *data, "--json", "--backend", "dspy", "--dspy-optimizer",
             "bootstrap"], (0,), must_fail=False, json_stdout=True),
        Case("ctrl-c at 0.3 s", [*opt, *data, *http], (130,), "interrupt", server="slow", fake=False,
             interrupt_after=0.3),
        Case("ctrl-c at 3 s", [*opt, *data, *http], (130,), "interrupt", server="slow", fake=False,
             interrupt_after=3.0),
        Case("concurrent resume/refine/delete", [*opt, *data, *http], (130,), "interrupt", server="slow",
             fake=False, interrupt_after=8.0, while_running=[["resume", "{SID}", "--quiet"],
             ["refine", "{SID}", "--quiet"], ["sessions", "delete", "{SID}", "--yes"]]),
        Case("ctrl-c during hung call", [*opt, *data, *http[:-1], "60"], (130,), "interrupt", server="hang",
             fake=False, interrupt_after=6.0),
    ]
    # fmt: on


def _run(case: Case, files: dict[str, str], root: Path) -> dict[str, Any]:
    sessions = root / "sessions"
    env = {**os.environ, "PROMPTOMATIX_SESSIONS_DIR": str(sessions), **case.env}
    env.pop("PROMPTOMATIX_DEBUG", None)
    if case.fake:
        env["PROMPTOMATIX_FAKE_LM"] = files["script"]
    else:
        env.pop("PROMPTOMATIX_FAKE_LM", None)
    server = FaultServer(case.server, delay=2.0 if case.server == "slow" else 60.0) if case.server else None
    argv = list(case.argv)
    if server is not None:
        server.__enter__()
        argv = [a.replace("{BASE}", server.base_url) for a in argv]
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "promptomatix", *argv], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    timed_out = False
    refusals: list[str] = []
    try:
        if case.while_running:
            refusals = _while_running(case, env, root, sessions)
        if case.interrupt_after is not None:
            time.sleep(max(0.0, case.interrupt_after - (time.monotonic() - start)))
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=case.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    finally:
        if server is not None:
            server.close()
    result = _judge(case, proc.returncode, out, err, sessions, timed_out, time.monotonic() - start)
    result["problems"].extend(refusals)
    return result


def _while_running(case: Case, env: dict[str, str], root: Path, sessions: Path) -> list[str]:
    """Run each command against the live session; anything but a refusal naming the busy session is a problem."""
    deadline = time.monotonic() + 10
    while not list(sessions.glob("*/session.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    found = list(sessions.glob("*/session.json"))
    if not found:
        return ["no session appeared for the concurrent commands"]
    time.sleep(2.0)  # let the run take its lock
    sid = found[0].parent.name
    problems = []
    for argv in case.while_running:
        cmd = [a.replace("{SID}", sid) for a in argv]
        r = subprocess.run([sys.executable, "-m", "promptomatix", *cmd], env=env, cwd=root, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
        if r.returncode != 1 or "busy" not in r.stderr:
            problems.append(f"`{' '.join(argv[:2])}` during a live run: exit {r.returncode}, {r.stderr.strip()[-120:]!r}")
    return problems


def _judge(case: Case, code: int, out: str, err: str, sessions: Path, timed_out: bool, secs: float) -> dict[str, Any]:
    text = out + err
    problems: list[str] = []
    if timed_out:
        problems.append("crashed: no exit within the time bound")
    if "Traceback" in err or "unexpected error" in text:
        problems.append("crashed: traceback / unexpected error")
    if case.must_fail and code == 0:
        problems.append("exit 0 after failing")
    if case.data_loss and code == 0 and case.expect_text.lower() not in text.lower():
        problems.append("lost data: rows dropped without a message")
    stored = "".join(p.read_text(errors="replace") for p in sessions.rglob("*") if p.is_file() and
                     p.suffix in (".json", ".txt", ".py", ".jsonl", ".log")) if sessions.exists() else ""  # fmt: skip
    if SECRET in stored or SECRET in text:
        problems.append("leaked: the planted secret was written or printed")
    for p in sessions.glob("*/session.json") if sessions.exists() else []:
        if json.loads(p.read_text()).get("status") == "running":
            problems.append("left running: a session still says running")
    if code not in case.expect_exit and not timed_out:
        problems.append(f"exit {code}, expected {'/'.join(map(str, case.expect_exit))}")
    elif case.expect_text and not case.data_loss:
        # a failure must name its cause in its own one-line message, not somewhere in the progress output
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        where = errors[-1] if case.must_fail and errors else text
        if case.expect_text.lower() not in where.lower():
            problems.append(f"message lacks {case.expect_text!r}")
    if case.json_stdout:
        try:
            json.loads(out)
        except ValueError:
            problems.append("stdout is not one JSON document")
    last = (err.strip().splitlines() or [""])[-1][:160]
    return {"case": case.name, "exit": code, "seconds": round(secs, 1), "problems": problems, "message": last}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated case names")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = _write_files(Path(tmp))
        for i, case in enumerate(cases(files)):
            if only and case.name not in only:
                continue
            root = Path(tmp) / f"case{i}"
            root.mkdir()
            r = _run(case, files, root)
            results.append(r)
            status = "clean" if not r["problems"] else "; ".join(r["problems"])
            print(f"{r['case']:<30} exit {r['exit']:>3}  {r['seconds']:>5.1f}s  {status}  | {r['message']}")
    counts = {"tried": len(results), "clean": sum(not r["problems"] for r in results)}
    for kind in ("crashed", "exit 0 after failing", "lost data", "leaked", "left running"):
        counts[kind] = sum(any(p.startswith(kind) for p in r["problems"]) for r in results)
    print(json.dumps(counts))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "results": results}, indent=2))
    return 0 if counts["clean"] == counts["tried"] else 1


if __name__ == "__main__":
    sys.exit(main())
