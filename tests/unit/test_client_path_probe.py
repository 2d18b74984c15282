"""simrs.downtime.client_path_probe: the findings it draws from each check's raw result (the checks
themselves run for real in Molecule client_probe and the e2e triage)."""

from __future__ import annotations

import json

from tests.unit.collection import load

PARAMS = {
    "service_ip": "198.18.0.10",
    "server_name": "simrs-server",
    "interface": "eth0",
    "address": "198.18.0.21",
    "ping": True,
    "timeout": 2,
}
IFACE = [
    {
        "operstate": "UP",
        "flags": ["BROADCAST", "UP", "LOWER_UP"],
        "addr_info": [{"family": "inet", "local": "198.18.0.21", "prefixlen": 24}],
    }
]
APP_OK = {
    "ok": True,
    "served_by": "simrs-primary",
    "checks": [{"name": "login", "ok": True, "detail": ""}, {"name": "web", "ok": True, "detail": ""}],
}


def cmd(rc: int, stdout: str = "", stderr: str = "") -> dict:
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def healthy() -> dict:
    return {
        "ip_address": cmd(0, json.dumps(IFACE)),
        "ip_route": cmd(0, json.dumps([{"dev": "eth0", "prefsrc": "198.18.0.21"}])),
        "getent": cmd(0, "198.18.0.10     STREAM simrs-server\n198.18.0.10     DGRAM\n"),
        "ping": cmd(0, "64 bytes from 198.18.0.10: icmp_seq=1 ttl=64 time=0.081 ms\n"),
        "tcp_db": {"ok": True, "detail": "198.18.0.10:3306 open"},
        "tcp_web": {"ok": True, "detail": "198.18.0.10:80 open"},
        "app": cmd(0, json.dumps(APP_OK)),
    }


def test_a_healthy_path_names_every_hop_in_order():
    mod = load("plugins/modules/client_path_probe.py")
    found = mod.summarise(PARAMS, healthy())
    assert found["ok"]
    assert found["failed_check"] is None
    assert found["served_by"] == "simrs-primary"
    assert list(found["checks"]) == [
        "link",
        "address",
        "route",
        "resolve",
        "ping",
        "tcp_db",
        "tcp_web",
        "app",
    ]
    assert found["checks"]["resolve"]["detail"] == "simrs-server -> 198.18.0.10"
    assert found["checks"]["route"]["detail"] == "198.18.0.10 dev eth0 src 198.18.0.21"
    assert found["checks"]["ping"]["detail"] == "reply from 198.18.0.10, time=0.081 ms"
    assert found["checks"]["app"]["detail"] == "served by simrs-primary: login, web ok"


def test_a_missing_route_is_the_first_broken_hop_and_the_rest_is_still_measured():
    mod = load("plugins/modules/client_path_probe.py")
    raw = healthy()
    raw["ip_route"] = cmd(2, stderr="RTNETLINK answers: Network is unreachable\n")
    raw["ping"] = cmd(2, stderr="ping: connect: Network is unreachable")
    raw["tcp_db"] = {"ok": False, "detail": "198.18.0.10:3306 Network is unreachable"}
    raw["app"] = cmd(
        1, json.dumps({"ok": False, "checks": [{"name": "login", "ok": False, "detail": "no route"}]})
    )
    found = mod.summarise(PARAMS, raw)
    assert found["failed_check"] == "route"
    assert found["checks"]["route"]["detail"] == "RTNETLINK answers: Network is unreachable"
    assert not found["checks"]["ping"]["ok"]
    assert found["checks"]["app"]["detail"] == "login failed: no route"
    assert found["served_by"] is None


def test_a_wrong_address_and_a_wrong_name_are_said_as_such():
    mod = load("plugins/modules/client_path_probe.py")
    raw = healthy()
    raw["getent"] = cmd(0, "198.18.0.99     STREAM simrs-server\n")
    found = mod.summarise({**PARAMS, "address": "198.18.0.22", "ping": False}, raw)
    assert found["failed_check"] == "address"
    assert found["checks"]["address"]["detail"] == "eth0 has 198.18.0.21/24, not 198.18.0.22"
    assert (
        found["checks"]["resolve"]["detail"] == "simrs-server -> 198.18.0.99, not the service IP 198.18.0.10"
    )
    assert "ping" not in found["checks"]
    raw["getent"] = cmd(2)
    assert (
        mod.summarise(PARAMS, raw)["checks"]["resolve"]["detail"]
        == "simrs-server is not known (hosts file or DNS)"
    )
