"""The lab's connection `simrs.downtime.podman`: containers.podman.podman with pipelining, so a
module goes over `podman exec -i`'s standard input in one exec (the lab and Molecule run every task
through it)."""

from __future__ import annotations

import pytest

from tests.unit.collection import load


@pytest.fixture(scope="module")
def connection_class():
    return load("plugins/connection/podman.py", "containers/podman").Connection


def bare(connection_class, user=None):
    """A connection without a play context: only what exec_command uses, podman recorded."""
    conn = connection_class.__new__(connection_class)
    conn._connected = True
    conn.user = user
    conn._display = None
    calls = []

    def fake_podman(cmd, cmd_args=None, in_data=None, use_container_id=True):
        calls.append((cmd, cmd_args, in_data))
        return 0, b"{}", b""

    conn._podman = fake_podman
    return conn, calls


def test_pipelining_is_on(connection_class):
    assert connection_class.has_pipelining is True
    assert connection_class.transport == "simrs.downtime.podman"


def test_input_goes_over_exec_i(connection_class):
    conn, calls = bare(connection_class)
    rc, _out, _err = conn.exec_command("/bin/sh -c '/usr/bin/python3 && sleep 0'", in_data=b"module")
    assert rc == 0
    assert calls == [(["exec", "-i"], ["/bin/sh", "-c", "/usr/bin/python3 && sleep 0"], b"module")]


def test_no_input_no_i_and_the_user_kept(connection_class):
    conn, calls = bare(connection_class, user="simrs")
    conn.exec_command("echo ~")
    assert calls == [(["exec", "--user", "simrs"], ["echo", "~"], None)]


@pytest.mark.parametrize("rc", [125, 255])
def test_a_stopped_container_is_unreachable_not_failed(connection_class, rc):
    """podman's own error ("Error: ..." and 125, or 255 for a stopped container on our podman)
    means the host cannot be reached, as SSH's 255 does: the orchestrator tells a dead server from
    a failing check by that."""
    from ansible.errors import AnsibleConnectionFailure  # noqa: PLC0415 (after the collection path)

    conn, _calls = bare(connection_class)
    conn._container_id = "simrs-primary"
    conn._podman = lambda *a, **k: (rc, b"", b"Error: can only create exec sessions on running containers")
    with pytest.raises(AnsibleConnectionFailure, match="simrs-primary"):
        conn.exec_command("/bin/sh -c 'python3'", in_data=b"module")


def test_a_command_that_exits_125_is_its_own_result(connection_class):
    conn, _calls = bare(connection_class)
    conn._podman = lambda *a, **k: (125, b"", b"my own error\n")
    assert conn.exec_command("sh -c 'exit 125'")[0] == 125


def test_podman_warnings_before_its_error_still_mean_unreachable(connection_class):
    from ansible.errors import AnsibleConnectionFailure  # noqa: PLC0415 (after the collection path)

    conn, _calls = bare(connection_class)
    conn._container_id = "simrs-primary"
    stderr = b'time="2026-11-26T07:10:00Z" level=warning msg="..."\nError: container state improper\n'
    conn._podman = lambda *a, **k: (255, b"", stderr)
    with pytest.raises(AnsibleConnectionFailure):
        conn.exec_command("/bin/sh -c 'python3'", in_data=b"module")


def test_a_module_that_fails_with_its_json_is_not_unreachable(connection_class):
    conn, _calls = bare(connection_class)
    conn._podman = lambda *a, **k: (255, b'{"failed": true}', b"Error: from the module's own tool\n")
    assert conn.exec_command("/bin/sh -c 'python3'", in_data=b"module")[0] == 255
