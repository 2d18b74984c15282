"""simrs preflight's verdict (orchestrator/preflight.py): the findings of playbooks/preflight.yml,
the inventory's validation and the schedule's times become one table; exit 2 names what to fix."""

from __future__ import annotations

import copy

from orchestrator import preflight
from orchestrator.preflight import FAIL, OK, SKIP, WARN

PRIMARY, STANDBY, PCS = "srv-01", "srv-02", ["kasir-01", "farmasi-01"]


def ready() -> dict:
    """What the playbook publishes for a ready site (the shape of roles/preflight's facts)."""
    host = {
        "checked": True,
        "reachable": True,
        "unreachable": False,
        "uid": "0",
        "user": "root",
        "become": False,
        "clock_skew": 1,
        "detail": "",
    }
    return {
        PRIMARY: {
            "group": "simrs_primary",
            "power": {
                "ok": True,
                "driver": "podman",
                "driver_state": "on",
                "answers": True,
                "detail": "running",
            },
            "host": dict(host),
            "primary": {
                "service_ip": {
                    "ok": True,
                    "address": "10.0.0.10",
                    "held": True,
                    "free": True,
                    "answered_by": [],
                    "addresses": ["10.0.0.11", "10.0.0.10"],
                },
                "drill_ip": {
                    "ok": True,
                    "address": "10.0.0.13",
                    "held": False,
                    "free": True,
                    "answered_by": [],
                },
                "disk": {
                    "ok": True,
                    "mounted": True,
                    "exists": True,
                    "mount_point": "/media/b",
                    "label": "SIMRS-BACKUP",
                    "uuid": "",
                    "device_label": "",
                    "device_uuid": "",
                    "marker": {"label": "SIMRS-BACKUP"},
                    "writable": True,
                    "options": ["rw"],
                    "free_bytes": 2**30,
                },
            },
        },
        STANDBY: {
            "group": "simrs_standby",
            "power": {
                "ok": True,
                "driver": "podman",
                "driver_state": "off",
                "answers": False,
                "detail": "exited",
            },
            "host": {"checked": False, "reachable": False, "unreachable": False},
            "primary": None,
        },
        **{pc: {"group": "simrs_clients", "power": None, "host": dict(host), "primary": None} for pc in PCS},
    }


def judge(findings: dict) -> preflight.Verdict:
    return preflight.verdict(preflight.judge(findings, PRIMARY, STANDBY, PCS))


def failing(verdict: preflight.Verdict) -> dict[tuple[str, str], preflight.Row]:
    return {(r.check, r.host): r for r in verdict.problems}


def test_a_ready_site_passes_with_every_check_in_the_table():
    verdict = judge(ready())
    assert verdict.ok
    assert verdict.exit_code == 0
    checks = {(r.check, r.host): r.status for r in verdict.rows}
    assert checks[("power", STANDBY)] == OK
    assert checks[("reach", STANDBY)] == SKIP  # a cold standby is off: not contacted
    assert checks[("service IP", PRIMARY)] == OK
    assert checks[("drill IP", PRIMARY)] == OK
    assert checks[("backup disk", PRIMARY)] == OK
    assert {checks[(c, pc)] for c in ("reach", "sudo", "clock") for pc in PCS} == {OK}


def test_each_fault_is_named_with_what_to_fix():
    f = ready()
    f[PRIMARY]["primary"]["service_ip"].update(free=False, answered_by=["aa:bb:cc:dd:ee:ff"])
    f[PRIMARY]["primary"]["drill_ip"].update(free=False, answered_by=["aa:bb:cc:dd:ee:01"])
    f[PRIMARY]["primary"]["disk"].update(mounted=False, exists=True)
    f[STANDBY]["power"] = {
        "ok": False,
        "driver": "podman",
        "driver_state": "unknown",
        "answers": False,
        "detail": "podman does not know the container simrs-standby-x",
    }
    f[STANDBY]["host"] = {"checked": True, "reachable": False, "unreachable": True, "detail": "not running"}
    verdict = judge(f)
    assert verdict.exit_code == 2
    bad = failing(verdict)
    assert set(bad) == {
        ("service IP", PRIMARY),
        ("drill IP", PRIMARY),
        ("backup disk", PRIMARY),
        ("power", STANDBY),
    }
    assert "aa:bb:cc:dd:ee:ff" in bad[("service IP", PRIMARY)].detail
    assert bad[("service IP", PRIMARY)].fix.startswith("simrs_service_ip")
    assert bad[("drill IP", PRIMARY)].fix == "simrs_drill_ip"
    assert "nothing is mounted at /media/b" in bad[("backup disk", PRIMARY)].detail
    assert "backup_disk.mount_point" in bad[("backup disk", PRIMARY)].fix
    assert bad[("power", STANDBY)].fix == f"power_podman_container ({STANDBY})"
    # The standby is silent, but its driver could not say it is on: not a second problem.
    assert next(r for r in verdict.rows if r.check == "reach" and r.host == STANDBY).status == SKIP


def test_a_service_ip_the_primary_does_not_hold_is_named():
    f = ready()
    f[PRIMARY]["primary"]["service_ip"].update(held=False, address="10.0.0.99", addresses=["10.0.0.11"])
    row = failing(judge(f))[("service IP", PRIMARY)]
    assert "10.0.0.99 is not on srv-01 (its interface has 10.0.0.11)" in row.detail


def test_the_disk_must_be_the_hospitals_own():
    for change, words in (
        ({"marker": None}, "no .simrs-backup-disk marker"),
        ({"marker": {"label": "OTHER"}}, "marked 'OTHER', not 'SIMRS-BACKUP'"),
        ({"device_label": "USBSTICK"}, "is 'USBSTICK', not 'SIMRS-BACKUP'"),
        ({"writable": False}, "read-only"),
    ):
        f = ready()
        f[PRIMARY]["primary"]["disk"].update(change)
        assert words in failing(judge(f))[("backup disk", PRIMARY)].detail, change


def test_unreachable_hosts_sudo_and_clocks():
    f = ready()
    f["kasir-01"]["host"] = {
        "checked": True,
        "reachable": False,
        "unreachable": True,
        "detail": "ssh: timed out",
    }
    f["farmasi-01"]["host"].update(uid="1000", user="simrs-ops")
    f[PRIMARY]["host"].update(clock_skew=300)
    bad = failing(judge(f))
    assert "ssh: timed out" in bad[("reach", "kasir-01")].detail
    assert "ansible_become: true" in bad[("sudo", "farmasi-01")].fix
    assert "simrs-ops" in bad[("sudo", "farmasi-01")].detail
    assert "300 s off" in bad[("clock", PRIMARY)].detail


def test_a_failing_become_is_a_sudo_problem_not_an_unreachable_host():
    f = ready()
    f["kasir-01"]["host"] = {
        "checked": True,
        "reachable": False,
        "unreachable": False,
        "detail": "Missing sudo password",
    }
    verdict = judge(f)
    bad = failing(verdict)
    assert list(bad) == [("sudo", "kasir-01")]
    assert "Missing sudo password" in bad[("sudo", "kasir-01")].detail


def test_a_primary_that_does_not_answer_leaves_its_checks_failing_not_passing():
    f = ready()
    f[PRIMARY]["host"] = {"checked": True, "reachable": False, "unreachable": True, "detail": "no route"}
    f[PRIMARY]["primary"] = None
    bad = failing(judge(f))
    assert {
        ("reach", PRIMARY),
        ("service IP", PRIMARY),
        ("drill IP", PRIMARY),
        ("backup disk", PRIMARY),
    } <= set(bad)


def test_missing_findings_never_pass():
    f = copy.deepcopy(ready())
    del f["farmasi-01"]
    f[STANDBY]["power"] = None
    bad = failing(judge(f))
    assert ("reach", "farmasi-01") in bad
    assert ("power", STANDBY) in bad


def test_drivers_that_cannot_read_the_power_warn_and_an_unset_drill_ip_warns():
    f = ready()
    f[STANDBY]["power"] = {
        "ok": True,
        "driver": "wol",
        "driver_state": "unknown",
        "answers": False,
        "detail": "wol: the driver cannot see the power",
    }
    f[STANDBY]["host"] = {"checked": True, "reachable": False, "unreachable": True, "detail": "timed out"}
    f[PRIMARY]["primary"]["drill_ip"] = None
    verdict = judge(f)
    assert verdict.ok
    rows = {(r.check, r.host): r for r in verdict.rows}
    assert rows[("power", STANDBY)].status == WARN
    assert rows[("reach", STANDBY)].status == SKIP
    assert rows[("drill IP", PRIMARY)].status == WARN


def test_an_inventory_that_cannot_be_read_or_is_wrong_stops_before_any_host():
    vault = preflight.unreadable_inventory(
        "inventory x holds vault-encrypted secrets and the vault password in /p does not open them", "/p"
    )
    assert vault.exit_code == 2
    assert vault.problems[0].check == "vault"
    assert "/p" in vault.problems[0].fix
    assert vault.rows[-1].check == "hosts"
    assert vault.rows[-1].status == SKIP
    bad = preflight.bad_inventory(
        ["simrs_service_ip (srv-01): 'x' is not an IPv4 address", "notify_lang: must be"]
    )
    assert [(r.host, r.fix) for r in bad.problems] == [
        ("srv-01", "simrs_service_ip (srv-01)"),
        ("-", "notify_lang"),
    ]


def test_schedule_times_are_checked_each():
    rows = preflight.schedule_rows(
        {"backup_dump": "*-*-* 01:30", "drill": "Sunday-ish"}, lambda e: "bad" if "ish" in e else None
    )
    assert [(r.status, r.fix) for r in rows] == [(FAIL, "simrs_schedule.drill")]
    assert preflight.schedule_rows({"backup_dump": "*-*-* 01:30"}, None)[0].status == OK
    assert preflight.schedule_rows("simrs_schedule has unknown job(s) x", None)[0].status == FAIL
