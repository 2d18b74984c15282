"""E2E fixtures: the real CLI against the real lab (podman containers, MariaDB, IP addresses)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIMRS = str(Path(sys.executable).with_name("simrs"))


def simrs(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIMRS, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO
    )


def simrs_json(*args: str, timeout: float = 1200) -> tuple[int, dict, str]:
    """A command with --json: (exit code, its JSON or {} when it printed none, stderr)."""
    res = simrs(*args, "--json", timeout=timeout)
    try:
        view = json.loads(res.stdout)
    except json.JSONDecodeError:
        view = {}
    return res.returncode, view, res.stderr


def status() -> dict:
    res = simrs("lab", "status", "--json", timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def clients(data: dict) -> dict[str, dict]:
    return {h["name"]: h for h in data["hosts"] if h["role"] == "client"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


# A test that leaves the lab where the next one cannot start from (the standby serving, backups on
# the disk) marks it, and the next test that needs the lab rebuilds it first: two such tests in a
# row share one rebuild instead of two (about a minute each).
_LAB = {"dirty": False}


def fresh_lab() -> None:
    assert simrs("lab", "down", timeout=300).returncode in (0, 2)
    res = simrs("lab", "up", *lab_up_options(), timeout=900)
    assert res.returncode == 0, res.stderr
    _LAB["dirty"] = False


def lab_left_dirty() -> None:
    _LAB["dirty"] = True


@pytest.fixture(autouse=True)
def _a_lab_left_dirty_is_rebuilt_first(request):
    if _LAB["dirty"] and "lab" in request.fixturenames and "fresh" not in request.fixturenames:
        fresh_lab()


def lab_up_options() -> list[str]:
    """`simrs lab up` options of the e2e lab: SIMRS_E2E_POWER picks how its servers are switched."""
    power = os.environ.get("SIMRS_E2E_POWER")
    return ["--power", power] if power else []


@pytest.fixture
def home(tmp_path, monkeypatch):
    """This test's own journal (SIMRS_HOME); the lab's state stays where it is."""
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    return tmp_path / "simrs"


@pytest.fixture(scope="session")
def lab():
    """A fresh default lab for the session; taken down afterwards unless SIMRS_E2E_KEEP_LAB=1."""
    if shutil.which("podman") is None or os.geteuid() != 0:
        pytest.skip("e2e needs podman and root (run scripts/setup)")
    simrs("lab", "down", timeout=300)  # whatever was there: start from a known lab
    res = simrs("lab", "up", *lab_up_options(), timeout=900)
    assert res.returncode == 0, f"lab up failed:\n{res.stderr}"
    yield status()
    if os.environ.get("SIMRS_E2E_KEEP_LAB") != "1":
        simrs("lab", "down", timeout=300)
