"""The main server comes back during a failover (issue 17, item 6): the takeover's refusal names
the host, not its MAC; a person chooses: cancel the failover (the main server is healthy: the
units go back to it, the standby returns to cold) or fence it again and take over. Both journaled."""

from __future__ import annotations

import pytest

from orchestrator import procedure
from orchestrator.ansible import PlayResult
from orchestrator.errors import InputError
from orchestrator.procedure import Phase
from tests.unit.test_engine import NOTIFY_OK, make, result, step_data, triage_all

MAC = "02:42:c6:12:00:0b"
REFUSED = (
    f"REFUSED: {MAC} answers for the service IP 198.18.0.10 on eth0; simrs-standby does not take it. "
    "Fence the other owner first"
)


def steps(refuse_ip: bool = True) -> dict:
    out = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    if refuse_ip:
        out["failover_ip_takeover"] = [
            PlayResult(
                "failover_ip_takeover",
                "failed",
                2,
                {},
                {"simrs-standby": {"ok": False, "detail": REFUSED}},
            ),
            result("failover_ip_takeover", step_data("ip_takeover")),
        ]
    return out


def seen(primary_serving: bool) -> PlayResult:
    return result(
        "ip_guard",
        {
            "localhost": {"ok": False, "owners": ["simrs-primary"]},
            "simrs-primary": {
                "answers": True,
                "holds_service_ip": True,
                "serving": primary_serving,
                "mac": MAC,
            },
            "simrs-standby": {"answers": True, "holds_service_ip": False, "mac": "02:42:c6:12:00:0c"},
        },
    )


def stopped_at_ip_takeover(tmp_path, primary_healthy: bool):
    healthy = result("server_check", {"simrs-primary": {"reachable": True, "problems": []}})
    sick = result("server_check", {"simrs-primary": {"reachable": True, "problems": ["db_down"]}})
    script = {
        "notify": [NOTIFY_OK],
        "ip_guard": [seen(primary_healthy)],
        "server_check": [healthy if primary_healthy else sick],
        "triage": [triage_all(True, True)],
        "standby_cold": [result("standby_cold", {"simrs-standby": {"state_after": "off"}})],
        **steps(),
    }
    engine, gw, _ = make(tmp_path, script)
    incident_id = engine.open_failover("ops", "motherboard")
    inc = engine.drive(incident_id)
    return engine, gw, incident_id, inc


def test_the_refusal_names_the_returned_main_server_and_offers_the_two_choices(tmp_path):
    engine, _gw, incident_id, inc = stopped_at_ip_takeover(tmp_path, primary_healthy=True)
    assert inc.phase == Phase.FAILOVER
    assert inc.failover_blocked["step"] == "ip_takeover"
    assert inc.failover_blocked["returned"] == "simrs-primary"
    assert f"simrs-primary ({MAC})" in inc.failover_blocked["detail"]
    action = procedure.next_action(inc, engine.now())
    assert action.needs_operator
    assert f"simrs incident cancel-failover {incident_id}" in action.reason
    assert f"simrs incident failover-now {incident_id} --fence-again" in action.reason
    assert "answers for the service IP again and serves the SIMRS" in action.reason


def test_cancel_failover_goes_back_to_the_healthy_main_server_and_cools_the_standby(tmp_path):
    engine, gw, incident_id, _ = stopped_at_ip_takeover(tmp_path, primary_healthy=True)
    with pytest.raises(InputError, match="--reason"):
        engine.cancel_failover(incident_id, "ops", " ")
    inc = engine.cancel_failover(incident_id, "ops", "the main server is back")
    assert inc.phase == Phase.SERVER_REPAIR
    assert inc.failover_canceled["by"] == "ops"
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    ran = [c[0] for c in gw.calls]
    assert ran.index("triage") > ran.index("server_check")  # verified from every PC after the check
    assert "standby_cold" in ran  # the standby (switched on by the failover) returns to cold
    assert "restored" in inc.notices
    with pytest.raises(InputError, match="only a failover that has not moved the service IP"):
        engine.cancel_failover(incident_id, "ops", "again")


def test_cancel_failover_is_refused_while_the_main_server_does_not_serve(tmp_path):
    engine, gw, incident_id, _ = stopped_at_ip_takeover(tmp_path, primary_healthy=False)
    with pytest.raises(InputError, match=r"db_down.*--fence-again"):
        engine.cancel_failover(incident_id, "ops", "back?")
    assert not [e for e in engine.journal.events(incident_id) if e.kind == "failover_canceled"]
    inc = engine.failover_now(incident_id, "ops", "it must stay off", fence_again=True)
    assert "fence" not in inc.failover_done
    assert inc.failover_blocked is None
    fences = len([c for c in gw.calls if c[0] == "failover_fence"])
    inc = engine.drive(incident_id)
    assert len([c for c in gw.calls if c[0] == "failover_fence"]) == fences + 1  # fenced again
    assert inc.phase == Phase.RESOLVED
    assert inc.failover_done[-1] == "verify"


def test_fence_again_is_only_for_a_failover_before_the_ip_moved(tmp_path):
    engine, _gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps(refuse_ip=False)})
    incident_id = engine.open_failover("ops", "dead")
    engine.drive(incident_id)
    with pytest.raises(InputError, match="--fence-again is for a failover stopped before"):
        engine.failover_now(incident_id, "ops", "x", fence_again=True)
