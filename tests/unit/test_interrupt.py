"""Ctrl-C and SIGTERM as a clean stop (orchestrator/interrupt.py, the gateway, the engine), with a
real ansible-playbook run on the admin machine itself (connection local, no host touched): the
first signal parks the run before its next task, the second kills it at once; a run that outlives
its orchestrator is seen alive by whoever drives the incident next."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator import ansible, collection, interrupt
from orchestrator import engine as engine_mod
from orchestrator.ansible import AnsibleGateway
from orchestrator.cli.base import exit_code
from orchestrator.journal import JournalError
from orchestrator.procedure import Phase
from orchestrator.runs import process_start, run_members
from tests.unit.test_engine import make, outage_script, result

PLAYBOOK = """\
- name: Three steps on the admin machine
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: First step, slow
      ansible.builtin.shell: touch {mark}.started; sleep {first}
      changed_when: false
    - name: Second step writes a mark
      ansible.builtin.copy:
        dest: "{mark}"
        content: second
        mode: "0600"
    - name: Third step
      ansible.builtin.command: "true"
      changed_when: false
"""


@pytest.fixture(autouse=True)
def fresh_interrupt():
    interrupt.reset()
    yield
    interrupt.reset()


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    books = tmp_path / "playbooks"
    books.mkdir()
    # The test's playbooks; the collection (roles, callbacks, ansible.cfg) stays the checkout's.
    monkeypatch.setattr(collection.Collection, "playbooks", property(lambda _self: books))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_python_interpreter: " + sys.executable + "\n"
    )
    return AnsibleGateway(inventory, tmp_path / "runs"), books


def ask_after(started: Path, times: int = 1) -> threading.Thread:
    """Ctrl-C (``times`` times) once the first step has started."""

    def later() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        for _ in range(times):
            interrupt.ask()
            time.sleep(0.3)

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    return thread


def test_a_first_ctrl_c_parks_the_run_before_its_next_task(gateway, tmp_path, monkeypatch):
    gw, books = gateway
    monkeypatch.setattr(interrupt, "GRACE_SECONDS", 60.0)  # a loaded machine is slow between tasks
    mark = tmp_path / "mark"
    (books / "steps.yml").write_text(PLAYBOOK.format(first=3, mark=mark))
    ask_after(tmp_path / "mark.started")
    started = time.monotonic()
    with pytest.raises(
        interrupt.Interrupted, match="stopped before task 'Second step writes a mark'"
    ) as caught:
        gw.run("steps", timeout=60)
    assert time.monotonic() - started < 30
    assert exit_code(caught.value) == 130
    assert not mark.exists()  # the first step finished, the second never started
    assert not list((tmp_path / "runs" / "live").glob("*.json"))  # nothing left alive


def test_a_second_ctrl_c_kills_the_run_at_once(gateway, tmp_path):
    gw, books = gateway
    (books / "steps.yml").write_text(PLAYBOOK.format(first=60, mark=tmp_path / "mark"))
    ask_after(tmp_path / "mark.started", times=2)
    started = time.monotonic()
    with pytest.raises(interrupt.Interrupted, match="stopped during task 'First step, slow'"):
        gw.run("steps", timeout=120)
    assert time.monotonic() - started < 30  # not the 60 s of the step
    assert not (tmp_path / "mark").exists()


def test_without_a_signal_the_run_goes_through_and_is_journaled_by_pid(gateway, tmp_path):
    gw, books = gateway
    (books / "steps.yml").write_text(PLAYBOOK.format(first=0, mark=tmp_path / "mark"))
    seen: list[tuple[str, dict]] = []
    gw.tag, gw.on_run = "INC-1", lambda kind, data: seen.append((kind, data))
    res = gw.run("steps", timeout=60)
    assert res.ok
    assert (tmp_path / "mark").read_text() == "second"
    assert [k for k, _ in seen] == ["run_started", "run_finished"]
    started = seen[0][1]
    assert started["tag"] == "INC-1"
    assert started["pid_start"] is not None
    assert gw.live_runs("INC-1") == []


def left_run(tmp_path: Path, name: str, script: str) -> tuple[subprocess.Popen, dict]:
    """Processes of a run whose orchestrator died: in a session of their own (as ansible-playbook's
    workers are), carrying the run's stop-file path in their environment."""
    private = tmp_path / name
    private.mkdir()
    proc = subprocess.Popen(
        ["sh", "-c", script],
        start_new_session=True,
        env={**os.environ, "SIMRS_STOP_FILE": str(private / "stop")},
    )
    return proc, {
        "playbook": name,
        "pid": proc.pid,
        "pid_start": process_start(proc.pid),
        "private": str(private),
    }


def test_a_run_that_outlived_its_orchestrator_is_seen_alive_until_it_ends(gateway, tmp_path):
    gw, _ = gateway
    orphan, entry = left_run(tmp_path, "failover_restore", "exec sleep 30")
    try:
        gw.live_dir.mkdir(parents=True)
        (gw.live_dir / f"{orphan.pid}.json").write_text(json.dumps({**entry, "tag": "INC-7"}))
        stale = {"playbook": "x", "pid": 1, "private": str(tmp_path / "gone"), "tag": "INC-7"}
        (gw.live_dir / "1.json").write_text(json.dumps(stale))
        time.sleep(0.2)
        assert [r["playbook"] for r in gw.live_runs("INC-7")] == ["failover_restore"]
        assert gw.live_runs("INC-8") == []
        assert not (gw.live_dir / "1.json").exists()  # no process carries that run's mark
    finally:
        orphan.kill()
        orphan.wait()
    assert gw.live_runs("INC-7") == []


def test_the_engine_journals_where_it_stopped_and_resume_goes_on(tmp_path):
    guard_look = result(
        "ip_guard", {"simrs-primary": {"answers": False}, "simrs-standby": {"answers": False}}
    )
    engine, _gw, _ = make(tmp_path, {**outage_script(), "ip_guard": [guard_look]})
    incident_id = engine.open("kasir-01")
    interrupt.ask(signal.SIGTERM)
    with pytest.raises(interrupt.Interrupted) as caught:
        engine.drive(incident_id)
    assert exit_code(caught.value) == 143
    assert f"simrs incident resume {incident_id}" in str(caught.value)
    stop = next(e for e in engine.journal.events(incident_id) if e.kind == "interrupted")
    assert stop.data["signal"] == "SIGTERM"
    assert stop.data["phase"] == "TRIAGE"
    assert stop.data["hosts"]["simrs-primary"]["answers"] is False
    interrupt.reset()
    inc = engine.drive(incident_id)
    assert inc.phase in (Phase.SERVER_REPAIR, Phase.FAILOVER_PENDING)


def test_what_is_left_of_a_run_is_ended_after_the_wait_and_said(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_mod, "ORPHAN_WAIT_S", 0)
    engine, gw, _ = make(tmp_path, outage_script())
    stuck = {"playbook": "failover_verify", "pid": 4242, "since": "03:00:00"}
    ended: list[dict] = []
    gw.live_runs = lambda tag: [] if ended else [stuck]
    gw.end_run = ended.append
    incident_id = engine.open("kasir-01")
    engine.drive(incident_id)
    assert ended == [stuck]
    kinds = [e.kind for e in engine.journal.events(incident_id)]
    assert kinds.index("ended_earlier_run") < kinds.index("action_started")


def test_the_gateway_ends_what_is_left_of_a_run_workers_and_all(gateway, tmp_path):
    gw, _ = gateway
    leader, entry = left_run(tmp_path, "x", "sleep 60 & sleep 60")
    gw.live_dir.mkdir(parents=True)
    (gw.live_dir / f"{leader.pid}.json").write_text(json.dumps({**entry, "tag": "INC-9"}))
    time.sleep(0.3)
    marker = str(Path(entry["private"]) / "stop")
    assert len(run_members(marker)) >= 2  # the shell and its sleeps
    assert gw.live_runs("INC-9")
    gw.end_run(entry)
    leader.wait(timeout=20)
    assert gw.live_runs("INC-9") == []
    assert run_members(marker) == []  # the child sleep too


def test_a_killed_run_leaves_no_worker_behind(gateway, tmp_path):
    gw, books = gateway
    (books / "steps.yml").write_text(PLAYBOOK.format(first=60, mark=tmp_path / "mark"))
    handle = gw.start("steps", timeout=120)
    deadline = time.monotonic() + 60
    while not (tmp_path / "mark.started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_members(str(handle.stop_file))  # the run and its worker
    interrupt.ask()
    interrupt.ask()  # forced
    with pytest.raises(interrupt.Interrupted):
        handle.wait()
    assert run_members(str(handle.stop_file)) == []  # ansible-playbook's workers lead their own sessions


def test_the_engine_waits_for_an_earlier_run_of_the_incident(tmp_path):
    engine, gw, _ = make(tmp_path, outage_script())
    alive = [[{"playbook": "failover_restore", "pid": 4242, "since": "03:00:00"}], []]
    gw.live_runs = lambda tag: alive.pop(0) if alive else []
    incident_id = engine.open("kasir-01")
    inc = engine.drive(incident_id)
    kinds = [e.kind for e in engine.journal.events(incident_id)]
    assert kinds.index("waited_for_earlier_run") < kinds.index("action_started")  # nothing ran beside it
    assert inc.phase == Phase.FAILOVER_PENDING
    gw.live_runs = lambda tag: [{"playbook": "failover_restore", "pid": 4242}]
    with pytest.raises(JournalError, match="a run still going: failover_restore"):
        engine.guard()


def test_a_long_step_says_it_still_runs_and_every_run_has_a_bound(gateway, tmp_path, monkeypatch):
    gw, books = gateway
    (books / "steps.yml").write_text(PLAYBOOK.format(first=4, mark=tmp_path / "mark"))
    monkeypatch.setattr(ansible, "HEARTBEAT_S", 1)
    said: list[str] = []
    res = gw.run("steps", progress=lambda kind, host, task: said.append(task) if kind == "running" else None)
    assert res.ok
    assert any("steps: First step, slow (" in line and "of at most 900 s)" in line for line in said), said
    # No bound given: the default one stops a run that hangs.
    monkeypatch.setattr(ansible, "DEFAULT_TIMEOUT_S", 3)
    (books / "hangs.yml").write_text(PLAYBOOK.format(first=120, mark=tmp_path / "mark2"))
    started = time.monotonic()
    res = gw.run("hangs")
    assert res.status == "timeout"
    assert time.monotonic() - started < 60
