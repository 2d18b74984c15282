"""Every branch of the SOP's decisions, as tables. Pure: no clock, no Ansible."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator import procedure as p
from orchestrator.procedure import ClientFact as C
from orchestrator.procedure import Phase, ServerState, Verdict

OK = {"ok": True}


def fail(check="tcp_db", detail="timed out"):
    return {"ok": False, "failed_check": check, "detail": detail}


UNREACH = {"ok": False, "unreachable": True}


@pytest.mark.parametrize(
    ("clients", "admin_ok", "verdict", "failing"),
    [
        ([C("a", True), C("b", True)], True, Verdict.NO_FAULT, ()),
        (
            [C("a", False, failed_check="route"), C("b", True), C("c", True)],
            True,
            Verdict.CLIENT_LOCAL,
            ("a",),
        ),
        ([C("a", False, failed_check="route"), C("b", True)], False, Verdict.CLIENT_LOCAL, ("a",)),
        ([C("a", False, unreachable=True), C("b", True)], True, Verdict.CLIENT_LOCAL, ("a",)),
        ([C("a", False), C("b", False)], True, Verdict.NETWORK, ("a", "b")),
        (
            [C("a", False, unreachable=True), C("b", False, unreachable=True)],
            True,
            Verdict.NETWORK,
            ("a", "b"),
        ),
        ([C("a", False), C("b", False)], False, Verdict.SERVER, ("a", "b")),
        ([C("a", False), C("b", False, unreachable=True)], False, Verdict.SERVER, ("a", "b")),
        ([C("a", True), C("b", True)], False, Verdict.SERVER, ()),
        ([], False, Verdict.SERVER, ()),
        (
            [C("a", False, failed_check="app"), C("b", False, failed_check="app")],
            True,
            Verdict.SERVER,
            ("a", "b"),
        ),
        (
            [C("a", False, failed_check="app"), C("b", False, failed_check="tcp_db")],
            True,
            Verdict.NETWORK,
            ("a", "b"),
        ),
    ],
    ids=[
        "all-fine",
        "one-pc",
        "one-pc-admin-down-too",
        "one-pc-unreachable",
        "network",
        "network-pcs-unreachable",
        "server",
        "server-one-pc-unreachable",
        "admin-only",
        "no-clients",
        "app-fails-everywhere-admin-reads-fine",
        "mixed-app-and-network",
    ],
)
def test_classify(clients, admin_ok, verdict, failing):
    c = p.classify(clients, admin_ok, "tcp_db")
    assert c.verdict == verdict
    assert c.failing == failing
    for host in failing:
        assert host in c.evidence


def test_classify_evidence_names_the_failing_check():
    c = p.classify([C("kasir-01", False, failed_check="route", detail="no route"), C("b", True)], True)
    assert c.evidence == {"kasir-01": "route: no route"}
    unreachable = p.classify([C("kasir-01", False, unreachable=True), C("b", True)], True)
    assert unreachable.evidence == {"kasir-01": "unreachable from the admin machine"}


@pytest.mark.parametrize(
    ("reachable", "problems", "state"),
    [
        (False, ["host_unreachable"], ServerState.HOST_DOWN),
        (False, [], ServerState.HOST_DOWN),
        (True, ["db_down"], ServerState.SERVICE_DOWN),
        (True, ["disk_full", "db_write_blocked"], ServerState.SERVICE_DOWN),
        (True, [], ServerState.HEALTHY),
    ],
)
def test_server_state(reachable, problems, state):
    assert p.server_state(reachable, problems) == state


@dataclass
class Ev:
    kind: str
    data: dict
    ts: float


def opened(window_s=600, **kw):
    return Ev("opened", {"reporter": "kasir-01", "window_s": window_s, **kw}, 0.0)


def triage(ts=1.0, admin_ok=False, **clients):
    return Ev("triage", {"clients": clients, "admin": {"ok": admin_ok, "failed_check": "tcp_db"}}, ts)


def run(*events):
    return p.replay("INC-1", events)


# (events, now) -> (phase, next action kind, notice event)
TABLE = [
    ("opened", [opened()], 1, Phase.TRIAGE, "triage", ""),
    ("no-fault", [opened(), triage(admin_ok=True, a=OK, b=OK)], 2, Phase.RESOLVED, "done", ""),
    ("client-local", [opened(), triage(a=fail("route"), b=OK)], 2, Phase.CLIENT_REPAIR, "client_repair", ""),
    (
        "client-repaired",
        [opened(), triage(a=fail("route"), b=OK), Ev("client_repair", {"hosts": {"a": {"ok": True}}}, 3)],
        4,
        Phase.RESOLVED,
        "done",
        "",
    ),
    (
        "client-not-repaired",
        [
            opened(),
            triage(a=fail("route"), b=OK),
            Ev("client_repair", {"hosts": {"a": {"ok": False, "detail": "x"}}}, 3),
        ],
        4,
        Phase.ESCALATED,
        "operator",
        "",
    ),
    ("network", [opened(), triage(admin_ok=True, a=fail(), b=fail())], 2, Phase.ESCALATED, "operator", ""),
    ("server", [opened(), triage(a=fail(), b=fail())], 2, Phase.SERVER_CHECK, "server_check", ""),
    (
        "server-healthy-after-all",
        [opened(), triage(a=fail(), b=fail()), Ev("server_check", {"reachable": True, "problems": []}, 3)],
        4,
        Phase.ESCALATED,
        "operator",
        "",
    ),
    (
        "outage-confirmed",
        [
            opened(),
            triage(a=fail(), b=fail()),
            Ev("server_check", {"reachable": False, "problems": ["host_unreachable"]}, 3),
        ],
        4,
        Phase.SERVER_REPAIR,
        "notify",
        "outage_paper_mode",
    ),
]
CONFIRMED = [
    opened(window_s=600),
    triage(a=fail(), b=fail()),
    Ev("server_check", {"reachable": True, "problems": ["db_down"]}, 10.0),
    Ev("notice", {"event": "outage_paper_mode", "sent": True}, 11.0),
]
TABLE += [
    ("first-repair", CONFIRMED, 12, Phase.SERVER_REPAIR, "server_repair", ""),
    (
        "backoff-wait",
        [*CONFIRMED, Ev("repair_attempt", {"healthy": False}, 20.0)],
        25,
        Phase.SERVER_REPAIR,
        "wait",
        "",
    ),
    (
        "second-repair",
        [*CONFIRMED, Ev("repair_attempt", {"healthy": False}, 20.0)],
        35,
        Phase.SERVER_REPAIR,
        "server_repair",
        "",
    ),
    (
        "third-waits-longer",
        [
            *CONFIRMED,
            Ev("repair_attempt", {"healthy": False}, 20.0),
            Ev("repair_attempt", {"healthy": False}, 36.0),
        ],
        60,
        Phase.SERVER_REPAIR,
        "wait",
        "",
    ),
    (
        "deadline",
        [*CONFIRMED, Ev("repair_attempt", {"healthy": False}, 20.0)],
        610,
        Phase.SERVER_REPAIR,
        "pending_failover",
        "",
    ),
    (
        "failover-now",
        [
            *CONFIRMED,
            Ev("repair_attempt", {"healthy": False}, 20.0),
            Ev("failover_now", {"by": "ops", "reason": "disk dead"}, 21.0),
        ],
        22,
        Phase.SERVER_REPAIR,
        "pending_failover",
        "",
    ),
    (
        "pending",
        [*CONFIRMED, Ev("pending_failover", {"reason": "x"}, 611.0)],
        612,
        Phase.FAILOVER_PENDING,
        "operator",
        "",
    ),
    (
        "repaired-verify",
        [*CONFIRMED, Ev("repair_attempt", {"healthy": True}, 20.0)],
        21,
        Phase.SERVER_REPAIR,
        "verify",
        "",
    ),
    (
        "verified-notify",
        [
            *CONFIRMED,
            Ev("repair_attempt", {"healthy": True}, 20.0),
            triage(ts=22.0, admin_ok=True, a=OK, b=OK),
        ],
        23,
        Phase.SERVER_REPAIR,
        "notify",
        "restored",
    ),
    (
        "verify-failed-repairs-again",
        [*CONFIRMED, Ev("repair_attempt", {"healthy": True}, 20.0), triage(ts=22.0, a=fail(), b=OK)],
        40,
        Phase.SERVER_REPAIR,
        "server_repair",
        "",
    ),
    (
        "restored-resolve",
        [
            *CONFIRMED,
            Ev("repair_attempt", {"healthy": True}, 20.0),
            triage(ts=22.0, admin_ok=True, a=OK, b=OK),
            Ev("notice", {"event": "restored", "sent": True}, 23.0),
        ],
        24,
        Phase.SERVER_REPAIR,
        "resolve",
        "",
    ),
    ("resolved", [*CONFIRMED, Ev("resolved", {"reason": "ok"}, 25.0)], 26, Phase.RESOLVED, "done", ""),
    (
        "notice-failed-is-retried",
        [*CONFIRMED[:-1], Ev("notice", {"event": "outage_paper_mode", "sent": False}, 11.0)],
        12,
        Phase.SERVER_REPAIR,
        "notify",
        "outage_paper_mode",
    ),
    (
        "closed",
        [opened(), triage(a=fail("route"), b=OK), Ev("closed", {"cause": "cable"}, 5.0)],
        6,
        Phase.CLOSED,
        "done",
        "",
    ),
]


@pytest.mark.parametrize(
    ("events", "now", "phase", "action", "notice"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_next_action(events, now, phase, action, notice):
    inc = run(*events)
    assert inc.phase == phase
    act = p.next_action(inc, now)
    assert act.kind == action
    assert act.event == notice


def test_deadline_is_counted_from_the_confirmed_outage_and_survives_replay():
    inc = run(*CONFIRMED)
    assert inc.outage_confirmed_at == 10.0
    assert inc.deadline == 610.0
    assert run(*CONFIRMED).deadline == inc.deadline  # a restarted orchestrator keeps it


def test_wait_never_passes_the_deadline():
    attempts = [Ev("repair_attempt", {"healthy": False}, t) for t in (12.0, 30.0, 60.0, 120.0, 240.0)]
    inc = run(*CONFIRMED, *attempts)
    act = p.next_action(inc, 470.0)
    assert act.kind == "wait"
    assert act.until == 480.0  # 240 s after the fifth attempt
    inc = run(*CONFIRMED, *attempts, Ev("repair_attempt", {"healthy": False}, 500.0))
    late = p.next_action(inc, 520.0)
    assert late.kind == "wait"
    assert late.until == 610.0  # the back-off (300 s) would pass the deadline: wait for the deadline
    assert p.next_action(inc, 610.0).kind == "pending_failover"


@pytest.mark.parametrize(
    ("done", "seconds"), [(0, 15), (1, 15), (2, 30), (3, 60), (5, 240), (6, 300), (20, 300)]
)
def test_backoff_doubles_and_is_capped(done, seconds):
    assert p.Policy().backoff(done) == seconds


def test_exit_codes():
    assert p.exit_code(run(opened(), triage(admin_ok=True, a=OK))) == 0
    assert p.exit_code(run(opened(), triage(admin_ok=True, a=fail(), b=fail()))) == 3
    assert p.exit_code(run(*CONFIRMED, Ev("pending_failover", {"reason": "x"}, 700.0))) == 3


def test_pending_action_is_cleared_by_its_result():
    started = run(opened(), Ev("action_started", {"action": "triage"}, 1.0))
    assert started.pending_action == "triage"
    assert (
        run(
            opened(), Ev("action_started", {"action": "triage"}, 1.0), triage(admin_ok=True, a=OK)
        ).pending_action
        is None
    )


def test_verification_after_a_repair_keeps_the_original_verdict():
    inc = run(
        *CONFIRMED,
        Ev("repair_attempt", {"healthy": True}, 20.0),
        triage(ts=22.0, admin_ok=True, a=OK, b=OK),
    )
    assert inc.verdict == Verdict.SERVER
    assert inc.failing == ("a", "b")
    assert inc.verified_at == 22.0


PENDING = [*CONFIRMED, Ev("pending_failover", {"reason": "x"}, 611.0)]
APPROVED = [*PENDING, Ev("approved", {"by": "ops-ani"}, 612.0)]


def step(name, ok=True, detail="", ts=613.0):
    return Ev("failover_step", {"step": name, "ok": ok, "detail": detail}, ts)


ALL_STEPS = [step(s) for s in p.FAILOVER_STEPS]
FAILOVER_TABLE = [
    ("approve-policy-waits", PENDING, Phase.FAILOVER_PENDING, "operator", ""),
    (
        "approve-policy-auto",
        [opened(failover="auto"), *CONFIRMED[1:], Ev("pending_failover", {}, 611.0)],
        Phase.FAILOVER_PENDING,
        "approve",
        "",
    ),
    ("approved-fence-first", APPROVED, Phase.FAILOVER, "failover_step", "fence"),
    ("then-power-on", [*APPROVED, step("fence")], Phase.FAILOVER, "failover_step", "power_on"),
    (
        "blocked-waits",
        [*APPROVED, step("fence"), step("power_on"), step("restore", False, "disk missing")],
        Phase.FAILOVER,
        "operator",
        "",
    ),
    (
        "retry-runs-the-step-again",
        [
            *APPROVED,
            step("fence"),
            step("power_on"),
            step("restore", False, "disk missing"),
            Ev("retry", {}, 700.0),
        ],
        Phase.FAILOVER,
        "failover_step",
        "restore",
    ),
    ("all-steps-then-notify", [*APPROVED, *ALL_STEPS], Phase.FAILOVER, "notify", ""),
    (
        "notified-on-standby",
        [*APPROVED, *ALL_STEPS, Ev("notice", {"event": "restored_on_standby", "sent": True}, 620.0)],
        Phase.FAILOVER,
        "on_standby",
        "",
    ),
    (
        "on-standby-resolves",
        [
            *APPROVED,
            *ALL_STEPS,
            Ev("notice", {"event": "restored_on_standby", "sent": True}, 620.0),
            Ev("on_standby", {}, 621.0),
        ],
        Phase.RUNNING_ON_STANDBY,
        "resolve",
        "",
    ),
]


@pytest.mark.parametrize(
    ("events", "phase", "action", "event"),
    [r[1:] for r in FAILOVER_TABLE],
    ids=[r[0] for r in FAILOVER_TABLE],
)
def test_failover_steps(events, phase, action, event):
    inc = run(*events)
    assert inc.phase == phase
    act = p.next_action(inc, 1000.0)
    assert act.kind == action
    if action == "failover_step":
        assert act.event == event
    if action == "notify":
        assert act.event == "restored_on_standby"


def test_a_step_done_twice_is_recorded_once_and_order_is_the_sops():
    assert p.FAILOVER_STEPS.index("fence") < p.FAILOVER_STEPS.index("ip_takeover")
    inc = run(*APPROVED, step("fence"), step("fence", ts=614.0))
    assert inc.failover_done == ("fence",)
    assert inc.approved_by == "ops-ani"


def test_approval_outside_pending_changes_nothing():
    inc = run(*CONFIRMED, Ev("approved", {"by": "x"}, 20.0))
    assert inc.phase == Phase.SERVER_REPAIR
    assert p.exit_code(run(*APPROVED, *ALL_STEPS, Ev("on_standby", {}, 700.0))) == 0


def test_a_switched_off_pc_does_not_block_the_verification_of_a_repair():
    inc = run(
        *CONFIRMED,
        Ev("repair_attempt", {"healthy": True}, 20.0),
        triage(ts=22.0, admin_ok=True, a=OK, b=UNREACH),
    )
    assert inc.verified_after_repair
    still_failing = run(
        *CONFIRMED,
        Ev("repair_attempt", {"healthy": True}, 20.0),
        triage(ts=22.0, admin_ok=True, a=fail(), b=UNREACH),
    )
    assert not still_failing.verified_after_repair
