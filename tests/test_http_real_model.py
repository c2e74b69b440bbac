"""The keyed-user path for real: `optimize --model openai/… --api-base …` against an OpenAI-compatible server.

The server is llama.cpp's own HTTP server (xllamacpp) serving the embedded GGUF on 127.0.0.1, in a child process
whose lifetime is bounded (it exits when the test closes its stdin, or after MAX_LIFETIME seconds at most).
Each run is small (12 synthetic rows, at most 80 calls) and has a wall-clock timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.smoke

MAX_LIFETIME = 1800  # seconds: the server exits by itself even if teardown never runs
RUN_TIMEOUT = 600  # seconds per optimize run
SERVED_NAME = "smollm2-served"
TASK = "Classify the sentiment of a movie review as positive or negative"

SERVER = r"""
import os, socket, sys, threading
import xllamacpp as xlc
path, lifetime = sys.argv[1], float(sys.argv[2])
threading.Timer(lifetime, lambda: os._exit(3)).start()
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
p = xlc.CommonParams()
p.model.path = path
p.n_parallel = 4
p.n_ctx = 4096 * p.n_parallel
threads = int(os.environ.get("PROMPTOMATIX_THREADS", "1"))
p.cpuparams.n_threads = threads
p.cpuparams_batch.n_threads = threads
p.hostnames = ["127.0.0.1"]
p.port = port
p.verbosity = -1
server = xlc.Server(p)
print("READY", port, flush=True)
sys.stdin.read()  # until the test closes our stdin (or dies)
os._exit(0)
"""


def _gguf_path() -> str:
    pytest.importorskip("xllamacpp")
    from promptomatix.lm.catalog import DEFAULT_LOCAL_MODEL, resolve_local_model

    return str(resolve_local_model(f"local/{DEFAULT_LOCAL_MODEL}"))


@pytest.fixture(scope="module")
def api_base() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, _gguf_path(), str(MAX_LIFETIME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout=120)
    try:
        if not line or not line[0].startswith("READY"):
            pytest.fail(f"the llama.cpp server did not start (got {line!r}, exit code {proc.poll()})")
        yield f"http://127.0.0.1:{int(line[0].split()[1])}/v1"
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


GOOD = ["A moving, beautifully acted film.", "Sharp, funny and warm.", "A triumph from start to finish.",
        "Delightful and clever.", "The best film of the year.", "Gorgeous and heartfelt.", "I loved every minute.",
        "A joy to watch."]  # fmt: skip
BAD = ["A dull, boring mess.", "Tedious and far too long.", "The plot makes no sense at all.",
       "Flat acting and a lazy script.", "I walked out halfway.", "A waste of a good cast.", "Painfully slow.",
       "Ugly, loud and stupid."]  # fmt: skip


def optimize(api_base: str, tmp_path, *extra: str) -> dict:
    """One small run over HTTP. A 135M model cannot fill 5-example batches (what a remote teacher is asked
    for), so the rows come from a file; spec inference, the search and every task call still go over HTTP."""
    data = tmp_path / "reviews.jsonl"
    rows = [{"text": t, "sentiment": "positive"} for t in GOOD] + [{"text": t, "sentiment": "negative"} for t in BAD]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["optimize", TASK, "--model", f"openai/{SERVED_NAME}", "--api-base", api_base, "--api-key", "x",
            "--data", str(data), "--input-fields", "text", "--output-fields", "sentiment",
            "--synthetic-data-size", "12", "--max-calls", "80", "--request-timeout", "60", "--quiet", "--json",
            "--sessions-dir", str(tmp_path / "sessions"), *extra]  # fmt: skip
    code = "import sys\nfrom promptomatix.cli.app import main\nmain(sys.argv[1:])\n"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("OPENAI_API_KEY", None)
    r = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)  # stdout is one JSON document and nothing else
    return out


def _task_calls(out: dict) -> int:
    usage = out["metrics"]["usage_by_role"]
    return int(usage["task"]["calls"])


def test_meta_backend_over_http(api_base, tmp_path):
    out = optimize(api_base, tmp_path, "--backend", "simple_meta_prompt")
    assert out["result"].strip()
    assert _task_calls(out) > 0 and out["metrics"]["usage_by_role"]["teacher"]["calls"] > 0
    total = sum(int(u["calls"]) for u in out["metrics"]["usage_by_role"].values())
    assert total <= 80


def test_dspy_bootstrap_over_http(api_base, tmp_path):
    out = optimize(api_base, tmp_path, "--backend", "dspy", "--dspy-optimizer", "bootstrap")
    assert out["result"].strip()
    assert _task_calls(out) > 0
    total = sum(int(u["calls"]) for u in out["metrics"]["usage_by_role"].values())
    assert total <= 80
