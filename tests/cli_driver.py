"""Run the `promptomatix` CLI in a subprocess with the scripted fake models slowed down (FAKE_LATENCY seconds per
call, FAKE_LATENCY_ROLE to slow one role only), so tests can send real signals while a call is in flight.

Usage: python tests/cli_driver.py optimize "..." --data file.csv
"""

from __future__ import annotations

import os
import sys

sys.argv[0] = "promptomatix"  # behave as the installed command (e.g. leave at once on Ctrl-C during a hung call)

from promptomatix.cli import fakes, optimize_cmd  # noqa: E402


def slow_clients() -> dict | None:
    clients = fakes.clients_from_env()
    latency = float(os.environ.get("FAKE_LATENCY", "0"))
    only = os.environ.get("FAKE_LATENCY_ROLE")
    for role, client in (clients or {}).items():
        if only in (None, role):
            client.latency = latency
    return clients


optimize_cmd.clients_from_env = slow_clients

from promptomatix.cli.app import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
