"""Production commands never load the lab: only `simrs lab`, `simrs demo`, no inventory at all (the
built-in lab is the default) or an inventory whose hosts are the lab's podman containers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# Runs in a fresh interpreter: the unit suite itself imports the lab in other tests.
PROBE = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    import orchestrator.cli as cli
    after_import = "orchestrator.lab" in sys.modules
    {run}
    print(json.dumps({{"after_import": after_import, "after_run": "orchestrator.lab" in sys.modules}}))
    """
)


def _python(code: str, home: Path, **env: str) -> dict:
    """Run code in a fresh interpreter and read the JSON of its last line. Never the machine's
    journal or podman settings: the state goes to a folder of the test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIMRS_") and k != "CONTAINERS_CONF"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**clean, "SIMRS_HOME": str(home), **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(run: str = "", home: Path | None = None) -> dict:
    return _python(PROBE.format(run=run), home or Path(tempfile.mkdtemp(prefix="simrs-probe-")))


def test_importing_the_production_cli_does_not_import_the_lab():
    assert _probe() == {"after_import": False, "after_run": False}


def test_a_production_command_with_a_hospital_inventory_does_not_load_the_lab(tmp_path):
    # A hospital's inventory (SSH, no podman): `maintain log` reads it and journals, never the lab.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            """
            all:
              children:
                simrs_primary: {hosts: {srv-a: {simrs_mgmt_ip: 10.0.0.11, power_driver: manual}}}
                simrs_standby: {hosts: {srv-b: {simrs_mgmt_ip: 10.0.0.12, power_driver: manual}}}
                simrs_clients: {hosts: {pc-01: {}}}
              vars: {simrs_service_ip: 10.0.0.10, simrs_service_prefix: 24}
            """
        )
    )
    run = (
        f"res = CliRunner().invoke(cli.main, ['-i', {str(inventory)!r}, 'maintain', 'log', 'genset', "
        "'--note', 'test run'])\nassert res.exit_code == 0, res.output"
    )
    assert _probe(run, home=tmp_path / "simrs") == {"after_import": False, "after_run": False}
    assert (tmp_path / "simrs" / "journal.sqlite").is_file()  # it ran, and journaled here


def test_the_lab_commands_still_load_it():
    run = "res = CliRunner().invoke(cli.main, ['lab', '--help'])\nassert res.exit_code == 0, res.output"
    assert _probe(run) == {"after_import": False, "after_run": True}


def _gateway_env(inventory: Path, tmp_path: Path) -> dict:
    """The podman settings a real gateway gets once the inventory is read (ansible-inventory runs),
    on a machine whose podman needs the project's containers.conf."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "podman-needs-project-conf").write_text("yes\n")
    run = (
        "from orchestrator import settings\n"
        "from orchestrator.ansible import AnsibleGateway\n"
        "from orchestrator.cli import base\n"
        f"gw = AnsibleGateway(Path({str(inventory)!r}), Path({str(tmp_path / 'runs')!r}))\n"
        "base.load_site(gw)\n"
        "print(json.dumps({'env': gw.envvars, 'lab': 'orchestrator.lab' in sys.modules}))\n"
        "raise SystemExit(0)"
    )
    code = "import json, sys\nfrom pathlib import Path\n" + run
    return _python(code, tmp_path / "simrs", SIMRS_CACHE_DIR=str(cache))


def test_the_lab_inventory_brings_the_lab_podman_settings(tmp_path):
    from orchestrator import settings  # noqa: PLC0415

    seen = _gateway_env(settings.LAB_INVENTORY, tmp_path)
    assert seen["lab"] is True
    assert seen["env"].get("CONTAINERS_CONF", "").endswith("orchestrator/lab/containers.conf")


def test_a_hospital_inventory_gets_no_lab_settings(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n"
        "    simrs_primary: {hosts: {srv-a: {simrs_mgmt_ip: 10.0.0.11, power_driver: manual}}}\n"
        "    simrs_standby: {hosts: {srv-b: {simrs_mgmt_ip: 10.0.0.12, power_driver: manual}}}\n"
        "    simrs_clients: {hosts: {pc-01: {}}}\n"
        "  vars: {simrs_service_ip: 10.0.0.10, simrs_service_prefix: 24}\n"
    )
    assert _gateway_env(inventory, tmp_path) == {"env": {}, "lab": False}
