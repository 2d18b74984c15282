"""SOP 5 decisions (orchestrator/maintenance.py): quiet times, what is due, the record, the restart's
refusals and journal. The gateway is faked; the lab runs the real thing (tests/e2e/test_maintain.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator import ledger, maintenance
from orchestrator.ansible import HostOutcome, PlayResult
from orchestrator.cli.base import exit_code
from orchestrator.interrupt import Interrupted
from orchestrator.journal import DRILL_LOCK, Event, Journal
from orchestrator.maintenance import MaintenanceError, Policy
from tests.unit.test_engine import FakeGateway

NOW = dt.datetime(2026, 11, 26, 10, 30)  # a Thursday, 10:30 local time


def inventory(settings: dict | None = None, **hostvars) -> dict:
    common = {"simrs_maintenance": settings or {}}
    return {
        "_meta": {
            "hostvars": {
                "simrs-primary": {
                    **common,
                    "simrs_in_service_since": "2020-09",
                    **hostvars.get("primary", {}),
                },
                "simrs-standby": {**common, **hostvars.get("standby", {})},
                "kasir-01": common,
            }
        },
        "all": {"children": ["simrs_primary", "simrs_standby", "simrs_clients"]},
        "simrs_primary": {"hosts": ["simrs-primary"]},
        "simrs_standby": {"hosts": ["simrs-standby"]},
        "simrs_clients": {"hosts": ["kasir-01"]},
    }


POLICY = Policy.from_inventory(
    inventory(
        {"quiet_hours": ["01:00-04:00", "22:30-00:30"], "quiet_weekdays": ["Sun"], "holidays": ["2026-12-25"]}
    )
)


# ---- settings ----------------------------------------------------------------------------------------


def test_defaults_and_the_inventorys_dates():
    policy = Policy.from_inventory(inventory())
    assert policy.primary == "simrs-primary"
    assert policy.servers == ("simrs-primary", "simrs-standby")
    assert policy.quiet_hours == ((60, 240),)
    assert policy.restart_every_days == 30
    assert policy.every_days == {"server": 90, "ups": 90, "genset": 30}
    assert policy.in_service == {"simrs-primary": dt.date(2020, 9, 1)}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"quiet_hour": ["01:00-04:00"]}, "unknown setting(s) quiet_hour"),
        ({"quiet_hours": ["1-4"]}, "write each window as HH:MM-HH:MM"),
        ({"quiet_hours": ["25:00-04:00"]}, "write each window as HH:MM-HH:MM"),
        ({"quiet_hours": ["04:00-04:00"]}, "the window is empty"),
        ({"quiet_weekdays": ["Minggu"]}, "use day names"),
        ({"holidays": ["25-12-2026"]}, "write a date as YYYY-MM-DD"),
        ({"restart_every_days": 0}, "restart_every_days is 0"),
        ({"restart_every_days": True}, "restart_every_days is True"),
        ({"every_days": {"ac": 30}}, "every_days knows server, ups, genset, not ac"),
        ({"every_days": {"ups": "often"}}, "every_days.ups is 'often'"),
        ({"disk_warn_pct": 95, "disk_due_pct": 90}, "must be below disk_due_pct"),
        ({"announce_minutes": 500}, "announce_minutes is 500"),
    ],
)
def test_bad_settings_say_what_to_fix(settings, message):
    with pytest.raises(MaintenanceError, match=message.replace("(", r"\(").replace(")", r"\)")) as bad:
        Policy.from_inventory(inventory(settings))
    assert exit_code(bad.value) == 2


def test_a_bad_in_service_date_names_the_host():
    with pytest.raises(MaintenanceError, match="simrs_in_service_since of simrs-standby is 'lama'"):
        Policy.from_inventory(inventory(standby={"simrs_in_service_since": "lama"}))


# ---- quiet times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (dt.datetime(2026, 11, 26, 0, 59), False),  # after 22:30-00:30, before 01:00-04:00
        (dt.datetime(2026, 11, 26, 1, 0), True),
        (dt.datetime(2026, 11, 26, 3, 59), True),
        (dt.datetime(2026, 11, 26, 4, 0), False),
        (dt.datetime(2026, 11, 26, 10, 30), False),
        (dt.datetime(2026, 11, 26, 22, 30), True),  # a window across midnight
        (dt.datetime(2026, 11, 27, 0, 15), True),
        (dt.datetime(2026, 11, 29, 14, 0), True),  # Sunday
        (dt.datetime(2026, 12, 25, 11, 0), True),  # a holiday
    ],
)
def test_quiet_times(local, quiet):
    assert (maintenance.quiet_reason(local, POLICY) is not None) is quiet


def test_the_reason_names_the_setting():
    assert "holiday" in maintenance.quiet_reason(dt.datetime(2026, 12, 25, 11, 0), POLICY)
    assert "Sun is a quiet day" in maintenance.quiet_reason(dt.datetime(2026, 11, 29, 14, 0), POLICY)
    assert "22:30-00:30" in maintenance.quiet_reason(dt.datetime(2026, 11, 26, 23, 0), POLICY)


def test_the_next_quiet_time():
    assert maintenance.next_quiet(NOW, POLICY) == dt.datetime(2026, 11, 26, 22, 30)
    assert maintenance.next_quiet(dt.datetime(2026, 11, 26, 1, 30), POLICY) == dt.datetime(
        2026, 11, 26, 1, 30
    )
    never = Policy.from_inventory(inventory({"quiet_hours": []}))
    assert maintenance.next_quiet(NOW, never) is None


# ---- what is due -------------------------------------------------------------------------------------------

UP = {"reachable": True, "up_seconds": 3 * 86400, "up_since": "2026-11-23T10:30:00Z"}


def done(what: str, on: str, host: str = "") -> Event:
    return Event(1, maintenance.STREAM, 0.0, "maintenance_done", {"what": what, "host": host, "on": on})


def assess(health=None, probe=None, records=(), policy=POLICY) -> dict[tuple[str, str], maintenance.Item]:
    items = maintenance.assess(
        policy, health if health is not None else {"simrs-primary": UP}, probe, records, NOW
    )
    assert [i.state for i in items] == sorted((i.state for i in items), key=maintenance.STATES.index)
    return {(i.key, i.host): i for i in items}


def test_age_from_the_inventory_then_the_firmware_date():
    items = assess({"simrs-primary": UP, "simrs-standby": {"reachable": True, "firmware_date": "06/15/2022"}})
    assert items[("age", "simrs-primary")].state == "due"
    assert "6.2 years in service" in items[("age", "simrs-primary")].detail
    assert items[("age", "simrs-standby")].state == "ok"
    assert "estimated from its firmware date 2022-06-15" in items[("age", "simrs-standby")].detail
    assert assess({"simrs-primary": UP, "simrs-standby": {"reachable": False}})[
        ("age", "simrs-standby")
    ].state == ("unknown")


@pytest.mark.parametrize(
    ("since", "state"), [("2021-11", "due"), ("2021-08", "due"), ("2022-01", "soon"), ("2023-01", "ok")]
)
def test_age_against_the_service_life(since, state):
    policy = Policy.from_inventory(inventory(primary={"simrs_in_service_since": since}))
    assert assess(policy=policy)[("age", "simrs-primary")].state == state


@pytest.mark.parametrize(("days", "state"), [(3, "ok"), (23, "soon"), (30, "due"), (400, "due")])
def test_the_planned_restart_is_due_after_restart_every_days(days, state):
    item = assess({"simrs-primary": {**UP, "up_seconds": days * 86400}})[("restart", "simrs-primary")]
    assert item.state == state
    assert "next quiet time Thu 2026-11-26 22:30" in item.detail


def test_a_primary_that_does_not_answer_points_to_the_sop():
    item = assess({"simrs-primary": {"reachable": False}})[("restart", "simrs-primary")]
    assert item.state == "unknown"
    assert "simrs incident open" in item.action


def test_routine_upkeep_counts_from_the_newest_record():
    records = [
        done("genset", "2026-10-01"),
        done("genset", "2026-11-20"),
        done("ups", "2026-08-10"),
        done("server", "2026-09-10", "simrs-primary"),
    ]
    items = assess(records=records)
    assert items[("routine_genset", "")].state == "ok"
    assert "last done 2026-11-20 (6 days ago" in items[("routine_genset", "")].detail
    assert items[("routine_ups", "")].state == "due"
    assert "overdue by 18 days" in items[("routine_ups", "")].action
    assert items[("routine_server", "simrs-primary")].state == "soon"  # 77 of 90 days
    assert items[("routine_server", "simrs-standby")].state == "due"  # never recorded
    assert (
        "simrs maintain log server --host simrs-standby" in items[("routine_server", "simrs-standby")].action
    )


@pytest.mark.parametrize(
    ("pct", "state"), [(50, "ok"), (80, "soon"), (89, "soon"), (90, "due"), (100, "due")]
)
def test_disk_space(pct, state):
    probe = {
        "reachable": True,
        "healthy": True,
        "mounts": [{"path": "/data", "target": "/data", "used_pct": pct}],
    }
    assert assess(probe=probe)[("disk", "simrs-primary")].state == state


def test_an_unhealthy_simrs_is_an_incident_not_maintenance():
    probe = {"reachable": True, "healthy": False, "problems": ["db_down"], "mounts": []}
    item = assess(probe=probe)[("health", "simrs-primary")]
    assert item.state == "due"
    assert "db_down" in item.detail
    assert "simrs incident open" in item.action


@pytest.mark.parametrize(
    ("ups", "state", "words"),
    [
        ({"name": "u@h", "ok": True, "battery_charge": "100"}, "ok", "on mains, battery 100%"),
        ({"name": "u@h", "ok": False, "replace_battery": True}, "due", "replace the battery"),
        (
            {"name": "u@h", "ok": False, "on_battery": True, "battery_charge": "40"},
            "due",
            "runs on battery now",
        ),
        (
            {"name": "u@h", "ok": False, "detail": "Error: Driver not connected"},
            "unknown",
            "Driver not connected",
        ),
    ],
)
def test_the_ups_own_state(ups, state, words):
    item = assess({"simrs-primary": {**UP, "ups": ups}})[("ups", "simrs-primary")]
    assert item.state == state
    assert words in item.detail


def test_the_exit_code_says_whether_a_person_must_act():
    assert maintenance.check_exit_code([maintenance.Item("disk", "h", "soon", "")]) == 0
    assert maintenance.check_exit_code([maintenance.Item("disk", "h", "due", "")]) == 3


# ---- the record ------------------------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def test_recorded_upkeep_is_journaled_per_server(journal):
    events = maintenance.record_done(
        journal, POLICY, "server", [], dt.date(2026, 11, 20), NOW.date(), " fans  ok ", "it"
    )
    assert [e.data["host"] for e in events] == ["simrs-primary", "simrs-standby"]
    assert events[0].data == {
        "what": "server",
        "host": "simrs-primary",
        "on": "2026-11-20",
        "note": "fans ok",
        "by": "it",
    }
    assert [e.kind for e in journal.events(maintenance.STREAM)] == ["maintenance_done"] * 2
    assert journal.incidents() == []


@pytest.mark.parametrize(
    ("what", "hosts", "on", "message"),
    [
        ("ac", [], "2026-11-20", "'ac' is not a routine"),
        ("server", ["kasir-01"], "2026-11-20", "kasir-01 is not a SIMRS server"),
        ("ups", ["simrs-primary"], "2026-11-20", "--host is for `log server`"),
        ("genset", [], "2026-11-27", "in the future"),
        ("genset", [], "2025-01-01", "over a year ago"),
    ],
)
def test_a_bad_record_is_refused_and_nothing_written(journal, what, hosts, on, message):
    with pytest.raises(MaintenanceError, match=message):
        maintenance.record_done(journal, POLICY, what, hosts, dt.date.fromisoformat(on), NOW.date(), "", "it")
    assert journal.events(maintenance.STREAM) == []


# ---- the planned restart -------------------------------------------------------------------------------

RESTARTED = PlayResult(
    "maintain_restart",
    "successful",
    0,
    {},
    {
        "simrs-primary": {"ok": True, "restarted": True, "up_since_before": "2026-10-01T01:00:00Z",
                          "up_since_after": "2026-11-26T01:02:00Z", "seconds": 41.0, "detail": "restarted"},
        "localhost": {"ok": True, "served_by": "simrs-primary"},
        "kasir-01": {"ok": True, "served_by": "simrs-primary"},
    },
)  # fmt: skip
REFUSED = PlayResult(
    "maintain_restart",
    "failed",
    2,
    {
        "simrs-primary": HostOutcome(
            "simrs-primary", False, failed_task="Refuse while a backup is being written",
            message="REFUSED: a backup, prune or binlog shipping is writing to the external disk now",
            failed_action="ansible.builtin.assert",
        )
    },
    {},
)  # fmt: skip
NOT_BACK = PlayResult(
    "maintain_restart",
    "failed",
    2,
    {
        "simrs-primary": HostOutcome(
            "simrs-primary", False, failed_task="Fail the restart", failed_action="fail"
        )
    },
    {
        "simrs-primary": {
            "ok": False,
            "restarted": True,
            "detail": 'the restart failed at "Start the SIMRS": db',
        }
    },
)


def restart(journal, gateway, local=dt.datetime(2026, 11, 26, 2, 0), now_ok=False, announce=None):
    return maintenance.restart(
        journal, gateway, POLICY, local_now=lambda: local, now_ok=now_ok, announce_minutes=announce, by="it"
    )


def test_a_restart_in_a_quiet_time_is_journaled_apart_from_incidents(journal):
    gateway = FakeGateway({"maintain_restart": [RESTARTED]})
    restart_id, facts = restart(journal, gateway)
    assert restart_id.startswith("RESTART-")
    assert restart_id.endswith("-001")
    assert facts["ok"]
    assert facts["restarted"]
    assert not facts["refused"]
    assert facts["verify"] == {"admin": True, "clients": {"kasir-01": True}}
    assert maintenance.restart_exit_code(facts) == 0
    assert gateway.calls[0][1]["extravars"] == {
        "simrs_restart_id": restart_id,
        "simrs_restart_announce_minutes": 10,
    }
    assert [e.kind for e in journal.events(restart_id)] == ["restart_started", "restart_finished"]
    assert journal.incidents() == []
    second, _ = restart(journal, gateway, announce=0)
    assert second.endswith("-002")
    assert gateway.calls[1][1]["extravars"]["simrs_restart_announce_minutes"] == 0


def test_outside_the_quiet_times_only_with_now(journal):
    gateway = FakeGateway({"maintain_restart": [RESTARTED]})
    with pytest.raises(
        MaintenanceError, match=r"Thu 10:30 is not a quiet time.*starts Thu 2026-11-26 22:30"
    ) as bad:
        restart(journal, gateway, local=NOW)
    assert exit_code(bad.value) == 2
    assert gateway.calls == []
    assert journal.events(maintenance.STREAM) == []
    restart(journal, gateway, local=NOW, now_ok=True)
    assert len(gateway.calls) == 1


def test_no_restart_during_an_incident_or_a_drill(journal):
    gateway = FakeGateway({"maintain_restart": [RESTARTED]})
    with (
        journal.lock(DRILL_LOCK, "a drill"),
        pytest.raises(MaintenanceError, match="a DR drill or another restart"),
    ):
        restart(journal, gateway)
    journal.append("INC-20261126-001", "opened", {"reporter": "kasir-01", "window_s": 3600})
    with pytest.raises(MaintenanceError, match="incident INC-20261126-001 is open"):
        restart(journal, gateway)
    assert gateway.calls == []


def test_a_refusal_by_the_playbook_and_a_server_that_did_not_come_back(journal):
    _, refused = restart(journal, FakeGateway({"maintain_restart": [REFUSED]}))
    assert refused["refused"]
    assert not refused["restarted"]
    assert "writing to the external disk" in refused["detail"]
    assert maintenance.restart_exit_code(refused) == 2
    _, failed = restart(journal, FakeGateway({"maintain_restart": [NOT_BACK]}))
    assert not failed["ok"]
    assert failed["restarted"]
    assert not failed["refused"]
    assert "Start the SIMRS" in failed["detail"]
    assert maintenance.restart_exit_code(failed) == 1


@pytest.mark.parametrize(("up_days", "due"), [(None, True), (29, False), (30, True)])
def test_if_due(up_days, due):
    assert maintenance.restart_due(POLICY, None if up_days is None else up_days * 86400) is due


# ---- the check ---------------------------------------------------------------------------------------------

CHECKED = PlayResult(
    "maintain_check",
    "successful",
    0,
    {},
    {
        "simrs-primary": {"health": UP, "probe": {"reachable": True, "healthy": True, "mounts": []}},
        "simrs-standby": {"health": {"reachable": False}},
    },
)
TOLD = PlayResult(
    "maintain_notify", "successful", 0, {}, {"localhost": {"ok": True, "channels": {"webhook": {"ok": True}}}}
)


def test_a_check_is_journaled_and_tells_the_it_team_only_what_is_due(journal):
    gateway = FakeGateway({"maintain_check": [CHECKED], "maintain_notify": [TOLD]})
    items, facts = maintenance.check(journal, gateway, POLICY, lambda: NOW, "it", notify=True)
    assert facts["id"] == "MAINT-20261126-001"
    assert maintenance.check_exit_code(items) == 3  # the primary is past its service life
    assert facts["notified"] == {"ok": True, "channels": {"webhook": {"ok": True}}}
    playbook, kwargs = gateway.calls[1]
    assert playbook == "maintain_notify"
    assert kwargs["extravars"]["notify_incident"] == {"id": "MAINT-20261126-001"}
    text = kwargs["extravars"]["notify_detail"]
    assert "- simrs-primary, age: 6.2 years" in text
    assert "restart" not in text  # 3 days of running is not due
    assert [e.kind for e in journal.events(maintenance.STREAM)] == ["maintenance_check"]
    _, again = maintenance.check(journal, gateway, POLICY, lambda: NOW, "it")
    assert again["id"] == "MAINT-20261126-002"
    assert "notified" not in again
    assert [c[0] for c in gateway.calls] == ["maintain_check", "maintain_notify", "maintain_check"]


def test_nothing_due_tells_nobody(journal):
    young = Policy.from_inventory(inventory(primary={"simrs_in_service_since": "2025-01"}))
    for what in ("ups", "genset"):
        maintenance.record_done(journal, young, what, [], NOW.date(), NOW.date(), "", "it")
    maintenance.record_done(journal, young, "server", [], NOW.date(), NOW.date(), "", "it")
    gateway = FakeGateway({"maintain_check": [CHECKED], "maintain_notify": [TOLD]})
    items, facts = maintenance.check(journal, gateway, young, lambda: NOW, "it", notify=True)
    assert maintenance.check_exit_code(items) == 0
    assert facts["due"] == 0
    assert [c[0] for c in gateway.calls] == ["maintain_check"]


class Interrupting(FakeGateway):
    def run(self, playbook, **kwargs):
        self.calls.append((playbook, kwargs))
        raise KeyboardInterrupt


def test_ctrl_c_during_a_restart_is_journaled_and_says_what_to_check(journal):
    with pytest.raises(Interrupted, match="interrupted: the server may be off") as stopped:
        restart(journal, Interrupting({}))
    assert exit_code(stopped.value) == 130
    restart_id = next(e.data["id"] for e in journal.events(maintenance.STREAM) if e.kind == "restart_id")
    finished = journal.events(restart_id)[-1]
    assert finished.kind == "restart_finished"
    assert finished.data["interrupted"] is True
    assert "simrs maintain check" in finished.data["detail"]


def test_if_due_reads_the_primarys_time_since_its_start():
    gateway = FakeGateway({"maintain_check": [CHECKED]})
    assert maintenance.primary_up_seconds(gateway, POLICY) == 3 * 86400
    assert gateway.calls[0][1]["limit"] == ["simrs-primary"]
    silent = PlayResult(
        "maintain_check", "successful", 0, {}, {"simrs-primary": {"health": {"reachable": False}}}
    )
    assert maintenance.primary_up_seconds(FakeGateway({"maintain_check": [silent]}), POLICY) is None


def test_open_backfills_are_counted_due_after_the_configured_days(journal, tmp_path):
    """The paper-mode ledger's open units are items of the check: soon while young, due after
    simrs_maintenance.backfill_due_days; journaled and told like any other due item."""
    from orchestrator.cli.maintain_cmd import backfill_items  # noqa: PLC0415
    from tests.unit.test_ledger import UNITS, repaired  # noqa: PLC0415

    engine, inc = repaired(tmp_path)
    policy = Policy.from_inventory(inventory({"backfill_due_days": 2}))
    assert policy.backfill_due_days == 2
    assert Policy.from_inventory(inventory()).backfill_due_days == 3
    back = ledger.ledger(inc, engine.journal.events(inc.id), UNITS)[0].paper_to  # the SIMRS came back
    (young,) = ledger.open_backfills({inc.id: engine.journal.events(inc.id)}, UNITS, back + 86400, 2)
    assert (young.unit, young.days, young.due) == ("kasir", 1.0, False)
    (old,) = ledger.open_backfills({inc.id: engine.journal.events(inc.id)}, UNITS, back + 2 * 86400, 2)
    assert old.due
    items = backfill_items(engine.journal, UNITS, 2)  # the fake engine's clock is in 1970: long due
    assert [(i.key, i.state) for i in items] == [("backfill", "due")]
    assert f"simrs incident backfill {inc.id} --unit kasir --done" in items[0].action
    gateway = FakeGateway({"maintain_check": [CHECKED], "maintain_notify": [TOLD]})
    checked, facts = maintenance.check(journal, gateway, POLICY, lambda: NOW, "it", notify=True, extra=items)
    assert checked[-1] == items[0]
    assert {"key": "backfill", "host": "", "state": "due"}.items() <= facts["items"][-1].items()
    assert "kasir has paper records not typed in" in gateway.calls[1][1]["extravars"]["notify_detail"]
    engine.journal.append(inc.id, "backfill_done", {"unit": "kasir", "by": "siti", "count": 3})
    assert backfill_items(engine.journal, UNITS, 2) == []


# ---- backup encryption (issue 18) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary", "how", "state", "words"),
    [
        ({"backup_recipients": ["age1" + "q" * 58]}, "age", "ok", "encrypted to backup_recipients"),
        ({"backup_encryption_key": "a-passphrase-of-16+"}, "openssl", "soon", "passphrase the server holds"),
        ({}, "none", "soon", "NOT encrypted"),
    ],
)
def test_backups_without_encryption_to_recipients_are_a_warning(primary, how, state, words):
    policy = Policy.from_inventory(inventory(primary=primary))
    assert policy.backup_encryption == how
    item = assess(policy=policy)[("backup_encryption", "simrs-primary")]
    assert item.state == state
    assert words in item.detail
    assert maintenance.check_exit_code([item]) == 0  # a warning, not "a person must act now"
