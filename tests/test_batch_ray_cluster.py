"""A two-node Ray cluster on 127.0.0.1 (`ray start --head` and `ray start --address`), and `promptomatix batch
--executor ray --ray-address` from a separate process: the jobs run on both nodes and their sessions come back to
the driver's store. Run alone with `pytest -m ray`; teardown stops the cluster (`ray stop --force`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from promptomatix.sessions import SessionStore
from tests.batch_helpers import SCRIPT, write_jobs, write_script

pytest.importorskip("ray")
pytestmark = pytest.mark.ray
RAY = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cluster(tmp_path):
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        head = _run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                     "--include-dashboard=false", "--disable-usage-stats"], env, 180)  # fmt: skip
        assert head.returncode == 0, head.stderr[-2000:]
        worker = _run([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--disable-usage-stats"],
                      env, 180)  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_jobs_run_on_both_nodes_of_a_cluster(cluster, tmp_path):
    address, env = cluster
    slow = {**SCRIPT, "task": {**SCRIPT["task"], "latency": 0.03}}
    jobs = write_jobs(tmp_path, "matrix: {seed: [0, 1, 2, 3]}\n")
    env = {**env, "PROMPTOMATIX_FAKE_LM": str(write_script(tmp_path, slow)),
           "PROMPTOMATIX_SESSIONS_DIR": str(tmp_path / "sessions")}  # fmt: skip
    r = _run([sys.executable, "-m", "promptomatix", "batch", str(jobs), "--executor", "ray", "--ray-address", address,
              "--json", "-q"], env, 300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert [j["status"] for j in out["jobs"]] == ["completed"] * 4
    assert len({j["node"] for j in out["jobs"]}) == 2  # both nodes ran jobs
    store = SessionStore(tmp_path / "sessions")
    assert {s.session_id for s in store.list()} == {j["session_id"] for j in out["jobs"]}
