"""The restore's passphrase never shows in a -vvv run: it goes as restore_step's no_log option.
A task's environment (how it went before) shows in the command Ansible prints at -vvv (and runs
on the host: ps, sudo's log), no_log or not; this test shows both with a real ansible-playbook on
localhost (connection local)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY = "restore-Key-for-this-test-5521"  # a throwaway value

TASK_WITH_OPTION = """
    - name: Scan with the passphrase as the module's no_log option
      simrs.downtime.restore_step:
        step: scan
        encryption_key: "{{ unit_key }}"
        params: {mount_point: /nonexistent-simrs-disk, source_host: x, methods: [dump], databases: [sik]}
      failed_when: false
"""
TASK_WITH_ENVIRONMENT = """
    - name: Scan with the passphrase in the task's environment (the old way)
      simrs.downtime.restore_step:
        step: scan
        params: {mount_point: /nonexistent-simrs-disk, source_host: x, methods: [dump], databases: [sik]}
      environment:
        SIMRS_RESTORE_KEY: "{{ unit_key }}"
      failed_when: false
      no_log: true
"""


def run_vvv(tmp_path: Path, task: str) -> str:
    if not (REPO / ".collections" / "ansible_collections" / "simrs" / "downtime").exists():
        pytest.skip("run scripts/setup first (the collection link)")
    playbook = tmp_path / "play.yml"
    playbook.write_text("- name: Restore step\n  hosts: localhost\n  gather_facts: false\n  tasks:" + task)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    proc = subprocess.run(
        [
            *("ansible-playbook", "-vvv", "-i", "localhost,", "-c", "local"),
            *("-e", "ansible_python_interpreter=" + sys.executable),
            *("-e", f"unit_key={KEY}", str(playbook)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_the_passphrase_as_a_no_log_option_is_not_in_a_vvv_run(tmp_path):
    output = run_vvv(tmp_path, TASK_WITH_OPTION)
    assert "restore_step" in output
    assert KEY not in output


def test_the_passphrase_in_a_tasks_environment_was_in_it(tmp_path):
    """Why the option: with environment:, -vvv prints the key although the task is no_log."""
    output = run_vvv(tmp_path, TASK_WITH_ENVIRONMENT)
    assert f"SIMRS_RESTORE_KEY={KEY}" in output
