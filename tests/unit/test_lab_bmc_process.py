"""The lab BMC process for real (no container behind it): it starts, serves IPMI and Redfish over
TLS on loopback with its login, reads a server that podman does not know as off, obeys a fault
file, and stops. About 3 s; needs the BMC's loopback addresses (any Linux) and pyghmi."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import urllib.error
import urllib.request

import pytest
from pyghmi.ipmi import command

from orchestrator.lab import bmc

ADDRESS = "127.0.3.11"
LOGIN = {"user": "simrs-power", "password": "test-only-bmc-secret"}


@pytest.fixture
def bmc_process(tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("the BMC reads the server's state from podman")
    config = {
        **LOGIN,
        "lab_disks": False,
        "wol_address": "127.0.3.255",
        "wol_port": 40019,
        "servers": [
            {
                "name": "no-such-server",
                "container": "simrs-test-no-such-container",
                "address": ADDRESS,
                "mac": "02:53:00:00:00:01",
                "ipmi_port": 16231,
                "redfish_port": 18443,
            }
        ],
    }
    bmc.write_config(tmp_path, config)
    state = bmc.start(tmp_path)
    yield tmp_path, state
    bmc.stop(tmp_path)


def redfish(directory, path: str, password: str, timeout: float = 10) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(directory / bmc.CA_CERT))
    request = urllib.request.Request(f"https://{ADDRESS}:18443{path}")
    token = base64.b64encode(f"{LOGIN['user']}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_bmc_process_serves_ipmi_and_redfish_with_its_login(bmc_process):
    directory, state = bmc_process
    assert state["servers"][0]["address"] == ADDRESS
    assert not (directory / bmc.CONFIG).stat().st_mode & 0o077  # the login is not world-readable

    ipmi = command.Command(bmc=ADDRESS, userid=LOGIN["user"], password=LOGIN["password"], port=16231)
    assert ipmi.get_power()["powerstate"] == "off"
    with pytest.raises(Exception, match="Incorrect password"):
        command.Command(bmc=ADDRESS, userid=LOGIN["user"], password="wrong", port=16231)  # noqa: S106

    status, system = redfish(directory, "/redfish/v1/Systems/1", LOGIN["password"])
    assert status == 200
    assert system["PowerState"] == "Off"
    status, body = redfish(directory, "/redfish/v1/Systems/1", "wrong")
    assert status == 401
    assert LOGIN["password"] not in json.dumps(body)

    # The password fault: the BMC's admin changed the password.
    bmc.set_fault(directory, "no-such-server", "password")
    assert redfish(directory, "/redfish/v1/Systems/1", LOGIN["password"])[0] == 401
    bmc.set_fault(directory, "no-such-server", "silent")
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        redfish(directory, "/redfish/v1/Systems/1", LOGIN["password"], timeout=1)
    bmc.set_fault(directory, "no-such-server", None)
    assert redfish(directory, "/redfish/v1/Systems/1", LOGIN["password"])[0] == 200


def test_stop_ends_the_process(bmc_process):
    directory, state = bmc_process
    bmc.stop(directory)
    assert not (directory / bmc.STATE).exists()
    assert bmc._zombie(state["pid"])  # gone (or only a zombie of this test's process)
