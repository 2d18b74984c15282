"""The fault campaign's pure parts: what round a seed draws, its written sequence, the invariants."""

from __future__ import annotations

import pytest

from orchestrator.lab import campaign
from orchestrator.lab.campaign import Fault, Observation, Round


def test_a_seed_draws_the_same_rounds_every_time_and_another_seed_others():
    assert campaign.plan(7, 30) == campaign.plan(7, 30)
    assert campaign.plan(7, 30) != campaign.plan(8, 30)


def test_a_round_does_not_depend_on_the_rounds_before_it():
    # --round K and --first K replay round K alone, exactly as in the whole campaign.
    whole = dict(campaign.plan(7, 30))
    assert campaign.plan_round(7, 23) == whole[23]
    assert dict(campaign.plan(7, 5, first=21)) == {k: whole[k] for k in range(21, 26)}


def test_every_drawn_round_is_valid_and_its_sequence_replays_it():
    for seed in range(40):
        for _k, rnd in campaign.plan(seed, 30):
            assert campaign.validate(rnd) == []
            assert Round.decode(rnd.encode()) == rnd


def test_many_rounds_cover_every_kind_moment_action_and_two_faults_at_once():
    rounds = [r for seed in range(20) for _k, r in campaign.plan(seed, 30)]
    assert {r.kind for r in rounds} == set(campaign.KINDS)
    assert {r.moment for r in rounds if r.kind == "failover"} == set(campaign.MOMENTS["failover"])
    assert {r.action for r in rounds} == set(campaign.ACTIONS)
    assert any(len(r.faults) == 2 for r in rounds)
    assert {r.choice for r in rounds if r.action == "primary_returns"} == set(campaign.RETURN_CHOICES)


def test_failover_rounds_at_a_step_run_the_steps_one_by_one():
    # A pre-staged takeover runs every step in one playbook: a step moment needs --no-prestage.
    rounds = [r for seed in range(20) for _k, r in campaign.plan(seed, 30) if r.kind == "failover"]
    assert all(not r.prestage for r in rounds if r.moment in campaign.FAILOVER_MOMENTS)
    assert all(r.prestage for r in rounds if r.moment == "prestage")
    assert all(r.action != "approve" for r in rounds if r.entry == "manual")


def test_client_net_faults_name_two_different_pcs():
    for seed in range(20):
        for _k, r in campaign.plan(seed, 30):
            hosts = [f.host for f in r.faults if f.name == "client-net"]
            assert len(hosts) == len(set(hosts))


def test_the_sequence_text_and_its_errors():
    rnd = Round.decode("failover:primary-off+client-net=kasir-01/dns@restore:ctrl_c:manual,auto,no-prestage")
    assert rnd.faults == (Fault("primary-off"), Fault("client-net", "kasir-01", "dns"))
    assert (rnd.moment, rnd.action, rnd.entry, rnd.prestage) == ("restore", "ctrl_c", "manual", False)
    assert rnd.ends_on == "simrs-standby"
    back = Round.decode(
        "failover:primary-off@fence:primary_returns:incident,auto,no-prestage,cancel_failover"
    )
    assert back.ends_on == "simrs-primary"
    with pytest.raises(ValueError, match="not a round sequence"):
        Round.decode("failover")
    with pytest.raises(ValueError, match="moment 'backup'"):
        Round.decode("failover:primary-off@backup:ctrl_c")
    with pytest.raises(ValueError, match="needs a choice"):
        Round.decode("failover:primary-off@fence:primary_returns:incident")
    with pytest.raises(ValueError, match="client-net needs a client"):
        Round.decode("client:client-net=nobody/route@triage:none")


def healthy(server: str = "simrs-primary", **kw) -> Observation:
    base = {
        "arp_samples": [["aa:aa:aa:aa:aa:01"]] * 5 + [[]],
        "owners_end": [server],
        "clients_end": {c: {"reaches": True, "served_by": server} for c in campaign.CLIENTS},
        "standby_running": server == "simrs-standby",
        "incidents": ["INC-1"],
        "journal_phase": "RESOLVED",
        "journal_server": server,
        "ended": True,
    }
    base.update(kw)
    return Observation(**base)


CLIENT = Round.decode("client:client-net=kasir-01/dns@triage:none")
FAILOVER = Round.decode("failover:primary-off@restore:ctrl_c:manual,auto,no-prestage")


def test_a_healthy_end_passes_every_invariant():
    assert campaign.verdict(campaign.check(CLIENT, healthy()))
    assert campaign.verdict(campaign.check(FAILOVER, healthy("simrs-standby")))


@pytest.mark.parametrize(
    ("obs", "invariant", "words"),
    [
        (healthy(arp_samples=[]), "one_owner", "no sample"),
        (healthy(arp_samples=[["aa:01"], ["aa:01", "bb:02"], ["aa:01"]]), "one_owner", "1 of 3 samples"),
        (healthy(owners_end=["simrs-primary", "simrs-standby"]), "one_owner", "at the end"),
        (
            healthy(clients_end={"kasir-01": {"reaches": False, "served_by": None}}),
            "pcs_served",
            "unreachable",
        ),
        (healthy(clients_end={}), "pcs_served", "no client"),
        (healthy(journal_phase="FAILOVER"), "journal_matches", "ended in FAILOVER"),
        (healthy(ended=False), "journal_matches", "did not end"),
        (healthy(incidents=["INC-1", "INC-2"]), "journal_matches", "2 incidents"),
        (healthy(owners_end=[]), "journal_matches", "nobody"),
        (healthy(standby_running=True), "standby_cold", "does not serve"),
        (healthy(restore_leftovers=["sik__restore"]), "no_half_restore", "sik__restore"),
        (healthy(second_operator={"rc": 0}), "operator", "not refused"),
        (healthy(guard={"rc": 0, "during_failover": True}), "operator", "during a failover"),
    ],
)
def test_each_broken_invariant_says_what_broke(obs, invariant, words):
    results = campaign.check(CLIENT, obs)
    assert words in (results[invariant] or "")
    assert not campaign.verdict(results)


def test_the_journal_must_name_the_server_the_round_ends_on():
    # The failover round ends on the standby; a journal (and hosts) on the primary is a failure.
    results = campaign.check(FAILOVER, healthy("simrs-primary"))
    assert "must end on simrs-standby" in results["journal_matches"]
    assert "not served by simrs-standby" in results["pcs_served"]
    # ...unless the run decided otherwise (the primary returned only after the takeover).
    late = Round.decode(
        "failover:primary-off@verify:primary_returns:incident,auto,no-prestage,cancel_failover"
    )
    assert campaign.verdict(campaign.check(late, healthy("simrs-standby", ends_on="simrs-standby")))


@pytest.mark.parametrize(
    ("ctrl_c", "words"),
    [
        ({"rc": 1, "seconds": 2.0, "interrupted_journaled": True, "says_resume": True}, "exit 1"),
        ({"rc": 130, "seconds": 12.5, "interrupted_journaled": True, "says_resume": True}, "12.5 s"),
        ({"rc": 130, "seconds": 3.0, "interrupted_journaled": False, "says_resume": True}, "where"),
        ({"rc": 130, "seconds": 3.0, "interrupted_journaled": True, "says_resume": False}, "resume"),
    ],
)
def test_ctrl_c_must_exit_130_within_10_s_journaled_with_the_resume_named(ctrl_c, words):
    assert words in campaign.operator(FAILOVER, healthy(ctrl_c=ctrl_c))


def test_ctrl_c_of_a_drill_or_backup_needs_no_incident_words():
    drill = Round.decode("drill:-@drill:ctrl_c")
    c = {"rc": 130, "seconds": 3.0, "interrupted_journaled": False, "says_resume": False}
    assert campaign.operator(drill, healthy(ctrl_c=c, incidents=[])) is None
    assert campaign.journal_matches(drill, healthy(incidents=[])) is None
    assert "opened incidents" in campaign.journal_matches(drill, healthy())
    # After an interrupted drill or backup, the next one (faults healed) must succeed.
    assert "did not succeed" in campaign.journal_matches(drill, healthy(incidents=[], ended=False))


def rpo(lost, outage_at=1000.0, shipped=990.0, reported=None):
    return {"lost": lost, "outage_at": outage_at, "shipped": shipped, "reported": reported}


@pytest.mark.parametrize(
    ("r", "words"),
    [
        (None, None),
        (rpo([]), None),
        (rpo([995.0, 998.0], reported=8.0), None),
        (rpo([600.0], shipped=None), "beyond the declared RPO"),
        (rpo([985.0, 995.0]), "was shipped"),
        (rpo([995.0], reported=1.0), "below the true loss"),
    ],
)
def test_no_committed_visit_lost_beyond_the_rpo_and_the_reported_rpo_is_an_upper_bound(r, words):
    got = campaign.rpo_within(healthy(rpo=r))
    assert (got is None) if words is None else (words in got)
