"""The gateway's event collector: results come from runner events and set_stats, and a strange
event never breaks the stream (an exception there would lose the run's results)."""

from __future__ import annotations

from orchestrator.ansible import parse_inventory
from orchestrator.results import Collector


def ev(kind, **data):
    return {"event": kind, "event_data": data}


def test_outcomes_and_published_data_come_from_events():
    c = Collector("triage", None)
    c.event_handler(ev("runner_on_ok", host="kasir-01", task="probe"))
    c.event_handler(
        ev("runner_on_unreachable", host="farmasi-01", task="probe", res={"msg": "Failed to connect"})
    )
    c.event_handler(
        ev(
            "runner_on_failed",
            host="poli-01",
            task="Check the service IP",
            res={"msg": "simrs_service_ip is wrong"},
            task_action="ansible.builtin.assert",
        )
    )
    c.event_handler(ev("playbook_on_stats", artifact_data={"simrs_triage": {"kasir-01": {"ok": True}}}))
    assert c.saw_stats
    assert c.hosts["kasir-01"].ok
    assert c.hosts["farmasi-01"].unreachable
    assert c.hosts["farmasi-01"].message == "Failed to connect"
    assert c.hosts["poli-01"].misconfigured
    assert c.artifact_data == {"simrs_triage": {"kasir-01": {"ok": True}}}


def test_malformed_events_are_survived():
    c = Collector("triage", None)
    assert c.event_handler({"event": "runner_on_failed", "event_data": {"host": "a", "res": "boom"}}) is True
    assert c.event_handler({"event": "runner_on_ok"}) is True
    assert c.event_handler({"event": "runner_on_ok", "event_data": None}) is True
    assert c.hosts["a"].message == "failed"


def test_a_progress_callback_that_raises_does_not_lose_results():
    def bad_progress(*_args):
        raise RuntimeError("terminal gone")

    c = Collector("triage", bad_progress)
    c.event_handler(ev("runner_on_ok", host="kasir-01", task="probe"))
    c.event_handler(ev("playbook_on_stats", artifact_data={}))
    assert c.hosts["kasir-01"].ok
    assert c.saw_stats
    assert c.errors


def test_parse_inventory_walks_nested_groups():
    raw = {
        "all": {"children": ["ungrouped", "hospital"]},
        "hospital": {"children": ["simrs_clients", "simrs_primary"]},
        "simrs_clients": {"hosts": ["kasir-01", "farmasi-01"]},
        "simrs_primary": {"hosts": ["srv-1"]},
        "_meta": {"hostvars": {"srv-1": {"simrs_service_ip": "10.0.0.10"}}},
    }
    inv = parse_inventory(raw)
    assert inv["groups"]["hospital"] == ["farmasi-01", "kasir-01", "srv-1"]
    assert inv["hostvars"]["srv-1"]["simrs_service_ip"] == "10.0.0.10"


def test_a_failure_hidden_by_no_log_gives_way_to_the_reason_its_rescue_keeps():
    c = Collector("failover_fence", None)
    hidden = {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified"}
    c.event_handler(ev("runner_on_failed", host="simrs-primary", task="Ask the BMC (IPMI)", res=hidden))
    assert c.hosts["simrs-primary"].message == "failed (its output is hidden: no_log)"
    reason = "fence not confirmed: power status not read: ... answered: Incorrect password provided"
    c.event_handler(ev("runner_on_failed", host="simrs-primary", task="Power", res={"msg": "not read"}))
    c.event_handler(ev("runner_on_failed", host="simrs-primary", task="Stop", res={"msg": reason}))
    assert c.hosts["simrs-primary"].message == reason
    # A later hidden failure does not hide a named one.
    c.event_handler(ev("runner_on_failed", host="simrs-primary", task="Later", res=hidden))
    assert c.hosts["simrs-primary"].message == reason


def test_a_refusal_stays_the_cause_when_its_rescue_fails_again_to_say_so():
    """A role's assert (the operator's to fix: exit 2) followed by its rescue's fail with the same
    words: the first, readable failure is the one kept, so the refusal is not turned into exit 1."""
    c = Collector("backup", None)
    words = "The disk mounted at /media/simrs-backup has no .simrs-backup-disk marker. Nothing was written."
    first = ev("runner_on_failed", host="srv-1", task="Check the marker", res={"msg": words})
    first["event_data"]["task_action"] = "ansible.builtin.assert"
    c.event_handler(first)
    again = ev("runner_on_failed", host="srv-1", task="Fail with what went wrong", res={"msg": words})
    again["event_data"]["task_action"] = "ansible.builtin.fail"
    c.event_handler(again)
    outcome = c.hosts["srv-1"]
    assert (outcome.failed_task, outcome.failed_action, outcome.misconfigured) == (
        "Check the marker",
        "ansible.builtin.assert",
        True,
    )
