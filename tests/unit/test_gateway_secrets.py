"""A run through the gateway leaves no secret in the runs folder: a real ansible-runner run of a
tiny playbook on localhost (connection local, no podman), with a secret as an extravar and one in
the environment, then every file under the runs folder is read. Also: the folders are the owner's
only and only the newest runs are kept."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from orchestrator import ansible as gateway_module
from orchestrator import collection
from orchestrator.ansible import AnsibleGateway

EXTRA_SECRET = "extravar-Secret-4711"  # noqa: S105 (throwaway values made up for this test)
ENV_SECRET = "envvar-Secret-0815"  # noqa: S105

PLAYBOOK = """\
- name: Use a secret the way the roles do (no_log) and publish a result
  hosts: all
  gather_facts: false
  tasks:
    - name: Use the secrets without showing them
      ansible.builtin.set_fact:
        probe_used: "{{ (probe_secret ~ lookup('ansible.builtin.env', 'PROBE_ENV_SECRET')) | length }}"
      no_log: true
    - name: Publish
      ansible.builtin.set_stats:
        data:
          simrs_probe: {used: "{{ probe_used | int }}"}
"""


@pytest.fixture
def gateway(tmp_path, monkeypatch) -> AnsibleGateway:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "probe.yml").write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    monkeypatch.setattr(collection.Collection, "playbooks", property(lambda _self: playbooks))
    return AnsibleGateway(inventory, tmp_path / "runs", envvars={"PROBE_ENV_SECRET": ENV_SECRET})


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_run_leaves_no_secret_and_no_environment_in_the_runs_folder(gateway, tmp_path):
    result = gateway.run("probe", extravars={"probe_secret": EXTRA_SECRET})
    assert result.ok, result.explanation
    assert result.data == {"used": len(EXTRA_SECRET + ENV_SECRET)}

    runs = tmp_path / "runs"
    files = all_files(runs)
    assert any(p.parent.name == "job_events" for p in files)  # the run's events are kept
    for path in files:
        text = path.read_bytes()
        assert EXTRA_SECRET.encode() not in text, path
        assert ENV_SECRET.encode() not in text, path
    assert not [p for p in files if p.parent.name == "env"]
    (command,) = runs.glob("*/artifacts/*/command")
    kept = json.loads(command.read_text())
    assert set(kept) == {"command", "cwd"}  # no "env": ansible-runner put the whole environment there
    assert not any(EXTRA_SECRET in arg for arg in kept["command"])
    assert not list(runs.glob("*/artifacts/*/fact_cache"))


def test_the_runs_folder_is_the_owners_only(gateway, tmp_path):
    assert gateway.run("probe", extravars={"probe_secret": EXTRA_SECRET}).ok
    runs = tmp_path / "runs"
    for path in [runs, *runs.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


def test_an_ended_run_that_was_never_scrubbed_is_scrubbed_by_the_next_start(gateway, tmp_path):
    """The orchestrator died after the run ended and before wait(): the next run cleans up."""
    old = tmp_path / "runs" / "20260101T000000-probe-x"
    (old / "env").mkdir(parents=True)
    (old / "env" / "extravars").write_text(json.dumps({"probe_secret": EXTRA_SECRET}))
    (old / "artifacts" / "id").mkdir(parents=True)
    (old / "artifacts" / "id" / "status").write_text("successful")
    (old / "artifacts" / "id" / "command").write_text(
        json.dumps({"command": ["ansible-playbook"], "cwd": "/", "env": {"X": ENV_SECRET}})
    )
    assert gateway.run("probe", extravars={"probe_secret": EXTRA_SECRET}).ok
    assert not (old / "env" / "extravars").exists()
    assert json.loads((old / "artifacts" / "id" / "command").read_text()) == {
        "command": ["ansible-playbook"],
        "cwd": "/",
    }


def test_only_the_newest_runs_are_kept(gateway, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    for i in range(gateway_module.KEEP_RUNS + 5):
        (runs / f"20260101T{i:06d}-probe-x").mkdir()
    gateway._prune_runs()
    kept = sorted(p.name for p in runs.iterdir())
    assert len(kept) == gateway_module.KEEP_RUNS
    assert kept[0] == "20260101T000005-probe-x"
    assert gateway_module.KEEP_RUNS <= 20


def test_the_extravars_are_never_on_the_command_line(gateway, tmp_path, monkeypatch):
    """ansible-runner puts extravars on ansible-playbook's command line (ps) unless they go by
    file (suppress_env_files would do that): the gateway keeps them in the file."""
    seen: list[list[str]] = []
    import ansible_runner  # noqa: PLC0415

    real = ansible_runner.run_async

    def spy(**kwargs):
        assert not kwargs.get("suppress_env_files")
        thread, runner = real(**kwargs)
        seen.append(list(runner.config.command))
        return thread, runner

    monkeypatch.setattr(ansible_runner, "run_async", spy)
    assert gateway.run("probe", extravars={"probe_secret": EXTRA_SECRET}).ok
    assert seen
    assert not any(EXTRA_SECRET in arg for arg in seen[0])
    assert os.environ.get("PROBE_ENV_SECRET") is None


def test_reading_the_inventory_leaves_nothing_behind(gateway, tmp_path, monkeypatch):
    """ansible-runner keeps the inventory listing (every variable, Vault's decrypted too) and the
    environment in a private folder it would leave in /tmp: the gateway removes its own."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (tmp_path / "hosts.yml").write_text(
        f"all:\n  hosts:\n    localhost:\n      probe_password: {EXTRA_SECRET}\n"
    )
    raw = gateway.inventory()
    assert raw["_meta"]["hostvars"]["localhost"]["probe_password"] == EXTRA_SECRET
    assert list(temp.iterdir()) == []
