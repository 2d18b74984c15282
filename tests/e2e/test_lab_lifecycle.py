"""lab up/down are all-or-nothing: a killed `lab up` leaves nothing that blocks the next one.
Runs last (file order): it takes the session's lab down and up again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from tests.e2e.conftest import REPO, SIMRS, simrs, status


def test_killed_lab_up_is_cleared_by_the_next_one(lab):
    assert simrs("lab", "down").returncode == 0
    res = simrs("lab", "down")
    assert res.returncode == 2
    assert "not up" in res.stderr
    proc = subprocess.Popen(
        [SIMRS, "lab", "up"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if subprocess.run(["podman", "container", "exists", "kasir-01"], check=False).returncode == 0:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    res = simrs("lab", "up")
    assert res.returncode == 0, res.stderr
    assert "clearing what an earlier, unfinished `lab up` left behind" in res.stderr
    assert time.monotonic() - started < 60  # images are cached
    data = status()
    assert all(h["reaches_simrs"] for h in data["hosts"] if h["role"] == "client")
    assert json.dumps(data["service_ip_owners"]) == '["simrs-primary"]'
