"""The failback with the data (issue 13), against a scripted gateway: refusals change nothing, the
steps run in order and are journaled, a cutover that fails leaves the standby serving and a rerun
resumes without a second seed; the dry run only looks; the report's failback section."""

from __future__ import annotations

import pytest

from orchestrator import procedure, report
from orchestrator.errors import InputError
from orchestrator.failback import FAILBACK_STEPS, comparison
from tests.unit.test_engine import CLIENTS, NOTIFY_OK, make, result, step_data

VISIT = {"no_rawat": "2026/12/03/000040", "tgl_registrasi": "2026-12-03", "jam_reg": "10:00:00"}
TABLES = {"sik.pasien": {"rows": 500, "checksum": "11"}, "sik.reg_periksa": {"rows": 80, "checksum": "22"}}


def failover_steps() -> dict:
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    restored = step_data("restore")
    restored["simrs-standby"]["last_visit"] = VISIT
    steps["failover_restore"] = [result("failover_restore", restored)]
    return steps


def look(
    primary_holds=False,
    standby_holds=True,
    newer=0,
    primary=True,
    replica=None,
    read_only=False,
) -> object:
    data = {
        "simrs-standby": {
            "holds_service_ip": standby_holds,
            "mariadb": {"ok": True, "gtid_binlog_pos": "0-1-120", "read_only": read_only, "tables": TABLES},
        }
    }
    if primary:
        data["simrs-primary"] = {
            "holds_service_ip": primary_holds,
            "mariadb": {
                "ok": True,
                "replica": replica or {"configured": False},
                "visits_after": {
                    "after": "2026-12-03 10:00:00",
                    "count": newer,
                    "sample": ["X (d t)"] * newer,
                },
                "tables": TABLES,
            },
        }
    return result("failback_status", data, status="successful" if primary else "failed")


def cutover(same=True) -> object:
    standby = {
        "freeze": {"ok": True, "gtid_binlog_pos": "0-1-130", "at": 1000.0},
        "caught_up": {"ok": True, "seconds": 0.4},
        "tables": {
            "standby": TABLES,
            "primary": TABLES if same else {**TABLES, "sik.reg_periksa": {"rows": 79}},
        },
        "same": same,
    }
    if not same:
        standby["unfrozen"] = {"ok": True}
        standby["detail"] = "The primary's tables differ"
        return result("failback_cutover", {"simrs-standby": standby}, status="failed")
    return result(
        "failback_cutover",
        {
            "simrs-standby": standby,
            "simrs-primary": {"ip_takeover": {"present_after": True}, "served_at": 1009.5},
            "localhost": {"verify": {"ok": True, "served_by": "simrs-primary"}, "verified_at": 1014.0},
            **{
                c: {"verify": {"ok": True, "served_by": "simrs-primary"}, "verified_at": 1013.0}
                for c in CLIENTS
            },
        },
    )


SEED = result("failback_seed", {"simrs-primary": {"replication": {"ok": True, "seeded_gtid": "0-1-100"}}})
FINISH = result("failback_finish", {"simrs-primary": {"replication": {"ok": True, "detail": "removed"}}})
COLD = result("standby_cold", {"simrs-standby": {"state_after": "off", "detail": "off"}})


def on_standby(tmp_path, **script):
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **failover_steps(), **script})
    incident_id = engine.open_failover("ops", "dead")
    assert engine.drive(incident_id).phase == procedure.Phase.RESOLVED
    gw.calls.clear()
    return engine, gw, incident_id


def failback_events(engine, incident_id):
    return [
        e
        for e in engine.journal.events(incident_id)
        if "failback" in e.kind or str(e.data.get("action", "")).startswith("failback")
    ]


@pytest.mark.parametrize(
    ("seen", "words"),
    [
        (look(primary=False), "does not answer"),
        (look(standby_holds=False), "not the active server"),
        (look(primary_holds=True), "holds the service IP"),
        (look(newer=3), "3 visit(s) registered after the newest one the standby was restored with"),
    ],
)
def test_each_refusal_changes_nothing(tmp_path, seen, words):
    engine, gw, incident_id = on_standby(tmp_path, failback_status=[seen])
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")) as refused:
        engine.failback("ops")
    assert refused.value.exit_code is None or refused.value.exit_code == 2
    assert [c[0] for c in gw.calls] == ["failback_status"]  # only looked
    assert not failback_events(engine, incident_id)


def test_the_newer_visits_are_overwritten_only_when_asked_and_every_step_is_journaled(tmp_path):
    engine, gw, incident_id = on_standby(
        tmp_path,
        failback_status=[look(newer=2)],
        failback_seed=[SEED],
        failback_cutover=[cutover()],
        failback_finish=[FINISH],
        standby_cold=[COLD],
    )
    facts, where = engine.failback("ops", discard_primary_data=True)
    assert where == incident_id
    assert facts["ok"], facts
    assert facts["freeze_seconds"] == 9.5
    assert facts["comparison"]["same"]
    assert facts["comparison"]["tables"] == 2
    assert facts["back_on_main_at"] == 1014.0
    ran = [c[0] for c in gw.calls]
    assert ran == ["failback_status", "failback_seed", "notify", "failback_cutover", "failback_finish",
                   "standby_cold", "notify"]  # fmt: skip
    assert gw.calls[0][1]["extravars"]["failback_visits_after"] == "2026-12-03 10:00:00"
    events = [e.kind for e in failback_events(engine, incident_id)]
    assert events.count("failback_step") == len(FAILBACK_STEPS)
    assert events[-1] == "failback"
    assert engine.incident(incident_id).failed_back
    notices = [c[1]["extravars"]["notify_event"] for c in gw.calls if c[0] == "notify"]
    assert notices == ["failback_freeze", "back_on_main"]
    with pytest.raises(InputError, match="no failover to undo"):
        engine.failback("ops")
    ctx = report.context(incident_id, engine.journal.events(incident_id), {}, "en")
    assert ctx["failback"]["freeze"] == "9.5 s"
    assert ctx["failback"]["same"]
    assert [s[0] for s in ctx["failback"]["steps"]] == list(FAILBACK_STEPS)


def test_a_cutover_that_does_not_match_leaves_the_standby_serving_and_a_rerun_does_not_seed_again(tmp_path):
    replicating = {"configured": True, "io_running": "Yes", "sql_running": "Yes", "seconds_behind": 0}
    engine, gw, incident_id = on_standby(
        tmp_path,
        failback_status=[look(), look(replica=replicating)],
        failback_seed=[SEED],
        failback_cutover=[cutover(same=False), cutover()],
        failback_finish=[FINISH],
        standby_cold=[COLD],
    )
    facts, _ = engine.failback("ops")
    assert not facts["ok"]
    assert "stopped at cutover" in facts["detail"]
    assert not engine.incident(incident_id).failed_back
    gw.calls.clear()
    facts, _ = engine.failback("ops")
    assert facts["ok"], facts
    ran = [c[0] for c in gw.calls]
    assert "failback_seed" not in ran  # replicating since the first run: no second seed
    assert ran[:2] == ["failback_status", "notify"]
    assert engine.incident(incident_id).failed_back


def test_a_run_cut_off_in_its_freeze_is_unfrozen_first(tmp_path):
    unfrozen = result(
        "failback_unfreeze", {"simrs-standby": {"replication": {"ok": True, "detail": "writable"}}}
    )
    engine, gw, _ = on_standby(
        tmp_path,
        failback_status=[look(newer=0, read_only=True, standby_holds=True)],
        failback_unfreeze=[unfrozen],
        failback_seed=[SEED],
        failback_cutover=[cutover()],
        failback_finish=[FINISH],
        standby_cold=[COLD],
    )
    facts, _ = engine.failback("ops")
    assert facts["ok"]
    assert [c[0] for c in gw.calls][:2] == ["failback_status", "failback_unfreeze"]


def test_the_dry_run_only_looks(tmp_path):
    engine, gw, incident_id = on_standby(tmp_path, failback_status=[look(newer=1)])
    plan, _ = engine.failback("ops", dry_run=True)
    assert not plan["ready"]
    assert "--discard-primary-data" in plan["refusal"]
    assert plan["seed"]["source"] == "simrs-standby"
    assert plan["seed"]["rows"] == 580
    assert "CHECKSUM TABLE" in plan["compared"]
    assert [c[0] for c in gw.calls] == ["failback_status"]
    assert gw.calls[0][1]["extravars"]["failback_compare"] is True
    assert gw.calls[0][1]["extravars"]["failback_start_database"] is False
    assert not failback_events(engine, incident_id)


def test_comparison_names_what_differs():
    cmp = comparison({"standby": TABLES, "primary": {"sik.pasien": TABLES["sik.pasien"]}})
    assert not cmp["same"]
    assert cmp["differ"] == [
        {"table": "sik.reg_periksa", "standby": TABLES["sik.reg_periksa"], "primary": None}
    ]


def test_after_the_cutover_the_primary_owns_the_ip_and_a_rerun_only_finishes(tmp_path):
    broken = result("failback_finish", {}, status="failed")
    engine, gw, incident_id = on_standby(
        tmp_path,
        failback_status=[look()],
        failback_seed=[SEED],
        failback_cutover=[cutover()],
        failback_finish=[broken, FINISH],
        standby_cold=[COLD],
    )
    facts, _ = engine.failback("ops")
    assert not facts["ok"]
    assert "stopped at unseed" in facts["detail"]
    assert engine.serving_incident() is None  # the guard's owner is the primary again
    gw.calls.clear()
    facts, where = engine.failback("ops")
    assert where == incident_id
    assert facts["ok"], facts
    assert [c[0] for c in gw.calls] == [
        "failback_finish",
        "standby_cold",
        "notify",
    ]  # no look, no second cutover
    assert facts["freeze_seconds"] == 9.5
    with pytest.raises(InputError, match="no failover to undo"):
        engine.failback("ops")


def test_the_restored_visit_is_the_anchor_whatever_the_hour_looks_like():
    from dataclasses import replace  # noqa: PLC0415

    from orchestrator.failback import restored_anchor  # noqa: PLC0415

    inc = procedure.Incident(id="INC-1")
    assert restored_anchor(inc) is None
    facts = {"restore": {"hosts": {"simrs-standby": {"last_visit": {**VISIT, "jam_reg": "9:05:03"}}}}}
    assert restored_anchor(replace(inc, failover_facts=facts)) == "2026-12-03 09:05:03"
