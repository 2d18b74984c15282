"""The guard's decisions (orchestrator/service_ip.py), pure: who keeps the service IP, who gives it
up, and when the guard must not touch anything. The hosts decide; only the current incident's
takeover or a person's word may take the address from a server that serves."""

from __future__ import annotations

import pytest

from orchestrator.procedure import Incident, Phase
from orchestrator.service_ip import Expectation, ServerView, decide, expectation, outcome, refusal

P, S, IP = "simrs-primary", "simrs-standby", "198.18.0.10"
SERVES = {"answers": True, "holds": True, "running": True, "serving": True}
OFF = {"answers": False}
UP_NO_IP = {"answers": True, "holds": False, "running": True, "serving": True}
DB_DOWN_WITH_IP = {"answers": True, "holds": True, "running": True, "serving": False}


def views(primary: dict, standby: dict) -> dict[str, ServerView]:
    return {P: ServerView(P, **primary), S: ServerView(S, **standby)}


def failover_incident(**kw) -> Incident:
    return Incident(id="INC-1", phase=Phase.RESOLVED, failover_done=("fence", "ip_takeover"), **kw)


def test_the_owner_comes_from_a_person_then_the_current_takeover_then_the_primary():
    assert expectation(P, S, None, None) == Expectation(P, "default")
    assert expectation(P, S, Incident(id="INC-2", phase=Phase.RESOLVED), None) == Expectation(P, "default")
    assert expectation(P, S, failover_incident(), None) == Expectation(S, "incident", "INC-1")
    assert expectation(P, S, failover_incident(failed_back=True), None) == Expectation(P, "default")
    assert expectation(P, S, failover_incident(), P) == Expectation(P, "operator")


def test_a_healthy_primary_is_never_stripped_by_an_incident_the_hosts_contradict():
    # The reported bug: the newest incident ended on the standby, but the lab was rebuilt (or a
    # failback was done by hand): the primary alone holds the address and serves.
    plan = decide(views(SERVES, OFF), [P], expectation(P, S, failover_incident(), None), IP)
    assert plan.keep == P
    assert not plan.acts
    assert plan.healthy
    assert plan.notes == (
        f"expected {S} (the standby since incident INC-1's takeover), but {P} holds {IP} and serves; "
        "nothing changed",
    )
    assert outcome(plan, [P], [])


def test_the_returned_primary_gives_up_the_ip_and_its_simrs_after_the_current_takeover():
    plan = decide(views(SERVES, SERVES), [P, S], expectation(P, S, failover_incident(), None), IP)
    assert plan.keep == S
    assert plan.take_from == (P,)
    assert plan.stop_on == (P,)
    # Back without the address (its own duplicate check refused it) but with its database running.
    plan = decide(views(UP_NO_IP, SERVES), [S], expectation(P, S, failover_incident(), None), IP)
    assert plan.take_from == ()
    assert plan.stop_on == (P,)
    assert not plan.healthy


def test_without_a_takeover_a_second_server_that_serves_is_left_to_a_person():
    plan = decide(views(SERVES, SERVES), [P, S], Expectation(P, "default"), IP)
    assert plan.keep == P
    assert not plan.acts
    assert not plan.healthy
    assert "--owner" in plan.notes[0]
    assert not outcome(plan, [P, S], [])
    # A second holder that does not serve (its database is down) may be stripped.
    plan = decide(views(SERVES, DB_DOWN_WITH_IP), [P, S], Expectation(P, "default"), IP)
    assert plan.take_from == (S,)
    assert plan.stop_on == (S,)
    # A person's word decides even between two servers that serve.
    plan = decide(views(SERVES, SERVES), [P, S], Expectation(S, "operator"), IP)
    assert plan.keep == S
    assert plan.take_from == (P,)


@pytest.mark.parametrize(
    ("primary", "standby", "arp", "expected"),
    [
        (DB_DOWN_WITH_IP, SERVES, [P, S], "(serving: simrs-standby)"),  # the owner holds it, serves not
        (DB_DOWN_WITH_IP, OFF, [P], "does not serve"),
        (OFF, OFF, [], "nobody answers"),
    ],
)
def test_nothing_is_taken_unless_the_server_that_keeps_the_ip_serves(primary, standby, arp, expected):
    plan = decide(views(primary, standby), arp, Expectation(P, "default"), IP)
    assert plan.keep is None
    assert not plan.acts
    assert expected in plan.detail
    assert not outcome(plan, arp, [])


def test_a_standby_serving_alone_is_left_alone_whatever_the_journal_expects():
    plan = decide(views(OFF, SERVES), [S], Expectation(P, "default"), IP)
    assert plan.keep == S
    assert plan.healthy
    assert not plan.acts
    assert "nothing changed" in plan.notes[0]


def test_a_pc_seeing_an_unknown_mac_is_not_a_healthy_outcome():
    plan = decide(views(SERVES, OFF), [P], Expectation(P, "default"), IP)
    assert outcome(plan, [P], [])
    assert not outcome(plan, [P], ["02:00:00:00:00:99"])


def test_the_guard_refuses_during_a_failover_or_while_the_incident_is_driven():
    assert refusal(None, None) is None
    assert refusal(failover_incident(), None) is None
    running = Incident(id="INC-3", phase=Phase.FAILOVER, reason="fencing")
    assert "INC-3 is failing over" in str(refusal(running, None))
    repairing = Incident(id="INC-4", phase=Phase.SERVER_REPAIR)
    assert "driven by pid 7" in str(refusal(repairing, "pid 7 on admin"))
