"""Where the collection is (checkout or installed wheel), `simrs --version`, `python -m orchestrator`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import collection
from orchestrator.cli import main
from orchestrator.errors import SimrsError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_collection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMRS_COLLECTIONS_PATH", raising=False)
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)


def test_a_checkout_is_its_own_collection(no_collection_env: None) -> None:
    found = collection.locate()
    assert found.checkout
    assert found.root == REPO
    assert found.playbooks == REPO / "playbooks"
    env = found.env()
    assert env["ANSIBLE_CONFIG"] == str(REPO / "ansible.cfg")
    assert env["ANSIBLE_ROLES_PATH"] == str(REPO / "roles")
    assert env["ANSIBLE_COLLECTIONS_PATH"].split(os.pathsep)[0] == str(REPO / ".collections")


def test_an_installed_copy_wins_over_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_collection_env: None
) -> None:
    root = tmp_path / "ansible_collections" / "simrs" / "downtime"
    (root / "playbooks").mkdir(parents=True)
    (root / "galaxy.yml").write_text("namespace: simrs\nname: downtime\nversion: 9.8.7\n")
    monkeypatch.setattr(collection, "INSTALLED", tmp_path)
    found = collection.locate()
    assert not found.checkout
    assert found.root == root
    assert found.version() == "9.8.7"
    assert found.collections_path()[0] == tmp_path
    assert found.env()["ANSIBLE_CONFIG"] == str(root / "ansible.cfg")


def test_extra_collections_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    found = collection.locate()
    monkeypatch.delenv("SIMRS_COLLECTIONS_PATH", raising=False)
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", f"/opt/a{os.pathsep}/opt/b")
    assert found.collections_path()[1:] == [Path("/opt/a"), Path("/opt/b")]
    monkeypatch.setenv("SIMRS_COLLECTIONS_PATH", "/opt/simrs")  # wins over Ansible's own variable
    assert found.collections_path()[1:] == [Path("/opt/simrs")]
    monkeypatch.delenv("SIMRS_COLLECTIONS_PATH")
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH")
    assert found.collections_path()[1:] == [Path(p).expanduser() for p in collection.ANSIBLE_DEFAULT_PATHS]


def test_no_collection_anywhere_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collection, "INSTALLED", tmp_path / "none")
    monkeypatch.setattr(collection, "CHECKOUT", tmp_path)
    with pytest.raises(SimrsError, match="neither in this installation"):
        collection.locate()


def test_version_names_simrs_the_collection_and_ansible_core() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("simrs 0.")
    galaxy_version = collection.locate().version()
    assert lines[1] == f"simrs.downtime {galaxy_version} ({REPO})"
    assert lines[2].startswith("ansible-core 2.19.")


def test_python_dash_m_orchestrator_is_simrs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.splitlines()[0].startswith("simrs ")
    helped = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert helped.startswith("Usage: simrs ")


def test_the_gateway_runs_ansible_with_the_located_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_collection_env: None
) -> None:
    from orchestrator.ansible import AnsibleGateway  # noqa: PLC0415

    root = tmp_path / "ansible_collections" / "simrs" / "downtime"
    (root / "playbooks").mkdir(parents=True)
    (root / "galaxy.yml").write_text("version: 1.2.3\n")
    monkeypatch.setattr(collection, "INSTALLED", tmp_path)
    monkeypatch.setenv("SIMRS_COLLECTIONS_PATH", "/opt/extra")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {}\n")
    env = AnsibleGateway(inventory, tmp_path / "runs")._env()
    assert env["ANSIBLE_CONFIG"] == str(root / "ansible.cfg")
    assert env["ANSIBLE_ROLES_PATH"] == str(root / "roles")
    assert env["ANSIBLE_COLLECTIONS_PATH"] == f"{tmp_path}{os.pathsep}/opt/extra"
    with pytest.raises(FileNotFoundError, match=str(root / "playbooks" / "nope.yml")):
        AnsibleGateway(inventory, tmp_path / "runs").start("nope")


def test_the_commands_do_not_import_the_labs_mail_server() -> None:
    """aiosmtpd is the extra 'lab': a hospital's install has no need of it."""
    code = "import sys; import orchestrator.cli; assert 'aiosmtpd' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_requires_ansible_is_the_tested_ansible_core() -> None:
    """meta/runtime.yml promises the ansible-core versions pyproject.toml installs and CI tests."""
    import re  # noqa: PLC0415
    import tomllib  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    core = next(d for d in deps if d.startswith("ansible-core"))
    low, high = re.fullmatch(r"ansible-core>=(\d+\.\d+),<(\d+\.\d+)", core).groups()
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == f">={low}.0,<{high}.0"
