"""The engine with a fake gateway (the one thing unit tests may fake): journaling, resume,
deadline, locks, the contract of published data. The real gateway runs in e2e."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from orchestrator import procedure
from orchestrator.ansible import HostOutcome, PlayResult
from orchestrator.cli.base import exit_code
from orchestrator.contract import (
    ConfigError,
    failover_extravars,
    notice_facts,
    server_check_facts,
    triage_facts,
)
from orchestrator.engine import Engine
from orchestrator.errors import HostError, InputError, InventoryError
from orchestrator.inventory import Hospital
from orchestrator.journal import DRILL_LOCK, Journal, JournalError
from orchestrator.procedure import Phase, replay
from orchestrator.takeover import failover_plan
from tests.unit.test_procedure import CONFIRMED

CLIENTS = ("farmasi-01", "kasir-01", "pendaftaran-01")
# A small valid inventory as ansible-inventory --list gives it (what the fake gateway answers).
SERVER_VARS = {"simrs_service_ip": "198.18.0.10", "simrs_service_prefix": 24}
INVENTORY = {
    "_meta": {
        "hostvars": {
            "simrs-primary": {**SERVER_VARS, "simrs_mgmt_ip": "198.18.0.11", "power_driver": "podman"},
            "simrs-standby": {**SERVER_VARS, "simrs_mgmt_ip": "198.18.0.12", "power_driver": "podman"},
        }
    },
    "all": {"children": ["simrs_primary", "simrs_standby", "simrs_clients"]},
    "simrs_primary": {"hosts": ["simrs-primary"]},
    "simrs_standby": {"hosts": ["simrs-standby"]},
    "simrs_clients": {"hosts": list(CLIENTS)},
}


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def probe(ok: bool, check: str | None = None) -> dict:
    return {
        "ok": ok,
        "failed_check": check,
        "checks": {check: {"ok": False, "detail": f"{check} failed"}} if check else {},
    }


class FakeGateway:
    """Answers playbooks from a script: {playbook: [PlayResult, ...]} (the last one repeats)."""

    def __init__(self, script: dict[str, list[PlayResult]], polls: int = 0) -> None:
        self.script = script
        self.calls: list[tuple[str, dict]] = []
        self.polls = polls

    def run(self, playbook, **kwargs):
        self.calls.append((playbook, kwargs))
        answers = self.script[playbook]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def start(self, playbook, **kwargs):
        """A background run (pre-staging): done after `polls` turns of the engine's loop."""
        self.calls.append((f"start:{playbook}", kwargs))
        answers = self.script[playbook]
        return FakeJob(answers.pop(0) if len(answers) > 1 else answers[0], self.polls)

    def run_parallel(self, runs):
        # Triage runs client_probe and the admin view of server_check at once: both are answered
        # from the script's "triage" entry (clients and localhost in one result).
        names = [name for name, _ in runs]
        if names == ["client_probe", "admin_check"]:
            self.calls.append(("triage", {}))
            answers = self.script["triage"]
            both = answers.pop(0) if len(answers) > 1 else answers[0]
            return [both, both]
        return [self.run(name, **kwargs) for name, kwargs in runs]

    def inventory(self):
        return INVENTORY


class FakeJob:
    def __init__(self, answer: PlayResult, polls: int) -> None:
        self.answer, self.polls, self.canceled, self.waited = answer, polls, False, False

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0

    def wait(self) -> PlayResult:
        self.waited = True
        return self.answer

    def cancel(self) -> None:
        self.canceled = True


def result(playbook: str, data: dict, hosts: dict | None = None, status: str = "successful") -> PlayResult:
    return PlayResult(playbook, status, 0 if status == "successful" else 2, hosts or {}, data)


def triage_all(ok: bool, admin_ok: bool, check: str = "tcp_db") -> PlayResult:
    return result(
        "triage",
        {
            **{c: probe(ok, None if ok else check) for c in CLIENTS},
            "localhost": {"healthy": admin_ok, "problems": [] if admin_ok else ["db_down"]},
        },
    )


def make(tmp_path, script, window_s=600, prestage=False, polls=0, policy="approve"):
    clock = Clock()
    hospital = Hospital(CLIENTS, "simrs-primary", "simrs-standby", window_s // 60, policy, prestage=prestage)
    gw = FakeGateway(script, polls)
    engine = Engine(Journal(tmp_path / "j.sqlite"), gw, hospital, now=clock.now, sleep=clock.sleep)
    return engine, gw, clock


NOTIFY_OK = result(
    "notify",
    {
        "localhost": {"channels": {"webhook": {"ok": True}}},
        "kasir-01": {"channels": {"screen": {"ok": True}}},
    },
)


def test_client_local_repairs_only_that_pc(tmp_path):
    one_bad = result(
        "triage",
        {
            "kasir-01": probe(False, "route"),
            "farmasi-01": probe(True),
            "pendaftaran-01": probe(True),
            "localhost": {"healthy": True, "problems": []},
        },
    )
    engine, gw, _ = make(
        tmp_path,
        {
            "triage": [one_bad],
            "client_repair": [result("client_repair", {"kasir-01": {"ok": True, "actions": ["netup"]}})],
        },
    )
    inc = engine.drive(engine.open("kasir-01"))
    assert inc.phase == Phase.RESOLVED
    assert [c[0] for c in gw.calls] == ["triage", "client_repair"]
    assert gw.calls[1][1]["limit"] == ["kasir-01"]


def test_server_outage_repaired_on_the_second_attempt(tmp_path):
    engine, gw, _ = make(
        tmp_path,
        {
            "triage": [triage_all(False, False), triage_all(True, True)],
            "server_check": [
                result("server_check", {"simrs-primary": {"reachable": True, "problems": ["db_down"]}})
            ],
            "notify": [NOTIFY_OK],
            "server_repair": [
                result("server_repair", {"simrs-primary": {"healthy": False}}),
                result("server_repair", {"simrs-primary": {"healthy": True, "actions": []}}),
            ],
        },
    )
    inc = engine.drive(engine.open("kasir-01"))
    assert inc.phase == Phase.RESOLVED
    assert [c[0] for c in gw.calls] == [
        "triage",
        "server_check",
        "notify",
        "server_repair",
        "server_repair",
        "triage",
        "notify",
    ]
    assert inc.notices == ("outage_paper_mode", "restored")
    assert gw.calls[2][1]["extravars"]["notify_event"] == "outage_paper_mode"
    assert gw.calls[-1][1]["extravars"]["notify_event"] == "restored"


def test_host_down_runs_out_the_window_and_waits_for_approval(tmp_path):
    down = result(
        "server_repair", {}, {"simrs-primary": HostOutcome("simrs-primary", False, True, "x", "gone")}
    )
    engine, _gw, clock = make(
        tmp_path,
        {
            "triage": [triage_all(False, False)],
            "server_check": [
                result("server_check", {}, {"simrs-primary": HostOutcome("simrs-primary", False, True)})
            ],
            "notify": [NOTIFY_OK],
            "server_repair": [down],
        },
        window_s=120,
    )
    incident_id = engine.open("kasir-01")
    start = clock.t
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.FAILOVER_PENDING
    assert inc.server == "HOST_DOWN"
    assert clock.t - start >= 120
    assert inc.repair_attempts == 4  # at 0, 15, 45, 105 s
    assert "not repaired within 2 min" in inc.reason


def test_resume_after_a_crash_keeps_the_deadline(tmp_path):
    script = {
        "triage": [triage_all(False, False)],
        "server_check": [
            result("server_check", {"simrs-primary": {"reachable": True, "problems": ["db_down"]}})
        ],
        "notify": [NOTIFY_OK],
        "server_repair": [result("server_repair", {"simrs-primary": {"healthy": False}})],
    }
    engine, gw, clock = make(tmp_path, script, window_s=600)
    incident_id = engine.open("kasir-01")

    calls = 0

    def crash_on_second_repair(playbook, **kwargs):
        nonlocal calls
        if playbook == "server_repair":
            calls += 1
            if calls == 2:
                raise KeyboardInterrupt
        return FakeGateway.run(gw, playbook, **kwargs)

    engine.gateway = type(
        "G", (), {"run": staticmethod(crash_on_second_repair), "run_parallel": staticmethod(gw.run_parallel)}
    )()
    with pytest.raises(KeyboardInterrupt):
        engine.drive(incident_id)
    before = engine.incident(incident_id)
    assert before.pending_action == "server_repair"
    deadline = before.deadline
    clock.t += 30  # the operator needed a moment
    engine2 = Engine(
        Journal(tmp_path / "j.sqlite"), FakeGateway(script), engine.hospital, now=clock.now, sleep=clock.sleep
    )
    inc = engine2.drive(incident_id)
    assert inc.deadline == deadline
    assert inc.phase == Phase.FAILOVER_PENDING


def test_failover_now_from_another_operator_ends_the_window(tmp_path):
    engine, _gw, clock = make(
        tmp_path,
        {
            "triage": [triage_all(False, False)],
            "server_check": [
                result("server_check", {"simrs-primary": {"reachable": True, "problems": ["db_down"]}})
            ],
            "notify": [NOTIFY_OK],
            "server_repair": [result("server_repair", {"simrs-primary": {"healthy": False}})],
        },
    )
    incident_id = engine.open("kasir-01")
    real_sleep = clock.sleep

    def sleep_and_decide(s):
        real_sleep(s)
        if clock.t > 1_000_020 and engine.incident(incident_id).failover_now is None:
            engine.failover_now(incident_id, "ops-budi", "the server's disk is dead")

    engine.sleep = sleep_and_decide
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.FAILOVER_PENDING
    assert "ops-budi" in inc.reason
    assert inc.repair_attempts < 5


def test_bad_reporter_and_second_open_are_refused(tmp_path):
    engine, _, _ = make(
        tmp_path, {"triage": [triage_all(False, False)], "server_check": [result("server_check", {})]}
    )
    with pytest.raises(InputError, match="'kasir-99' is not a client PC in the inventory"):
        engine.open("kasir-99")
    first = engine.open("kasir-01")
    with pytest.raises(JournalError, match=f"incident {first} .* is still open"):
        engine.open("farmasi-01")


def test_two_operators_cannot_drive_one_incident(tmp_path):
    engine, _, _ = make(tmp_path, {"triage": [triage_all(True, True)]})
    incident_id = engine.open("kasir-01")
    with (
        engine.journal.lock(incident_id, "test"),
        pytest.raises(JournalError, match="is being driven by pid"),
    ):
        engine.drive(incident_id)


def test_unreachable_client_is_a_fact_not_a_crash():
    res = result(
        "triage",
        {
            "farmasi-01": probe(True),
            "pendaftaran-01": probe(True),
            "localhost": {"healthy": True, "problems": []},
        },
        {"kasir-01": HostOutcome("kasir-01", False, True, "probe", "Failed to connect")},
    )
    facts = triage_facts(res, CLIENTS)
    assert facts["clients"]["kasir-01"] == {
        "ok": False,
        "unreachable": True,
        "failed_check": "unreachable",
        "detail": "Failed to connect",
    }
    assert facts["admin"]["ok"] is True


def test_a_client_without_a_published_result_counts_as_failing():
    res = result("triage", {"localhost": {"healthy": True, "problems": []}}, status="failed")
    facts = triage_facts(res, ("kasir-01",))
    assert facts["clients"]["kasir-01"]["ok"] is False


def test_unreachable_primary_is_host_unreachable():
    res = result("server_check", {}, {"simrs-primary": HostOutcome("simrs-primary", False, True)})
    facts = server_check_facts(res, "simrs-primary")
    assert facts["reachable"] is False
    assert facts["problems"] == ["host_unreachable"]


def test_notice_is_sent_when_any_channel_delivered():
    res = result(
        "notify",
        {"localhost": {"channels": {"webhook": {"ok": False, "detail": "500"}, "email": {"ok": True}}}},
    )
    facts = notice_facts(res, "outage_paper_mode")
    assert facts["sent"] is True
    assert facts["channels"]["webhook"]["ok"] is False


def test_the_journal_never_holds_a_secret(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.append(
        "INC-1",
        "fact",
        {
            "db": {"password": "hunter2", "user": "app"},
            "webhook_token": "abc",
            "list": [{"smtp_password": "x"}],
        },
    )
    raw = (tmp_path / "j.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite*"))
    assert b"hunter2" not in raw
    assert b"abc" not in raw
    data = j.events("INC-1")[0].data
    assert data["db"] == {"password": "***", "user": "app"}


def test_the_journal_is_append_only(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.append("INC-1", "opened", {"reporter": "kasir-01"})
    db = sqlite3.connect(tmp_path / "j.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET kind = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events")


def test_a_role_refusing_its_settings_stops_the_incident_with_what_to_fix(tmp_path):
    refused = result(
        "triage",
        {},
        {
            "kasir-01": HostOutcome(
                "kasir-01",
                False,
                False,
                "Check that the service IP is an IPv4 address",
                "simrs_service_ip is not an IPv4 address: set it in group_vars",
                "ansible.builtin.assert",
            )
        },
        status="failed",
    )
    engine, _gw, _ = make(tmp_path, {"triage": [refused]})
    incident_id = engine.open("kasir-01")
    with pytest.raises(
        ConfigError, match=r"the inventory needs fixing .*simrs_service_ip is not an IPv4"
    ) as info:
        engine.drive(incident_id)
    assert exit_code(info.value) == 2
    inc = engine.incident(incident_id)
    assert inc.verdict is None  # no fact was made up from a refused run
    assert inc.pending_action == "triage"


def test_a_run_without_results_is_a_failure_not_a_fact(tmp_path):
    silent = PlayResult("triage", "failed", 4, {}, {}, explanation="no results were received", complete=False)
    engine, _gw, _ = make(tmp_path, {"triage": [silent]})
    incident_id = engine.open("kasir-01")
    with pytest.raises(HostError, match="triage could not run: no results were received") as info:
        engine.drive(incident_id)
    assert exit_code(info.value) == 1
    assert engine.incident(incident_id).verdict is None


def test_a_runner_timeout_is_a_failure_not_a_fact(tmp_path):
    engine, _gw, _ = make(tmp_path, {"triage": [result("triage", {}, status="timeout")]})
    with pytest.raises(HostError, match="triage could not run") as info:
        engine.drive(engine.open("kasir-01"))
    assert exit_code(info.value) == 1


def test_the_restore_step_gets_the_outage_time_for_the_rpo():
    inc = replay("INC-1", CONFIRMED)
    assert failover_extravars("restore", inc) == {"restore_outage_at": "1970-01-01T00:00:10Z"}
    assert failover_extravars("fence", inc) == {}


# ---- pre-staging, the takeover, manual failover, the IP guard ----------------------------------

DOWN = HostOutcome("simrs-primary", False, True, "x", "gone")
PRESTAGE_READY = result(
    "prestage",
    {
        "simrs-standby": {
            "restore": {
                "set": "20261126T010000Z-dump",
                "created_at": "2026-11-26T01:00:00Z",
                "age_seconds": 60,
            },
            "holds_service_ip": False,
        },
        "localhost": {"ok": True, "address": "198.18.0.12", "served_by": "simrs-standby"},
    },
)
PRESTAGE_NO_DISK = result(
    "prestage",
    {},
    {"simrs-standby": HostOutcome("simrs-standby", False, False, "restore", "no backup disk at /media/x")},
    status="failed",
)


def step_data(step: str) -> dict:
    host = {"fence": "simrs-primary", "verify": "localhost"}.get(step, "simrs-standby")
    return {host: {"ok": True, "detail": f"{step} done"}}


TAKEOVER_OK = PlayResult(
    "failover",
    "successful",
    0,
    {},
    {},
    published={
        f"simrs_failover_{s}": step_data(s)
        for s in ("fence", "power_on", "restore", "ip_takeover", "start", "verify")
    },
)


def outage_script(**extra):
    return {
        "triage": [triage_all(False, False)],
        "server_check": [result("server_check", {}, {"simrs-primary": DOWN})],
        "notify": [NOTIFY_OK],
        "server_repair": [result("server_repair", {}, {"simrs-primary": DOWN})],
        **extra,
    }


def test_prestaging_runs_beside_the_repair_and_the_takeover_is_one_run(tmp_path):
    engine, gw, _clock = make(
        tmp_path,
        outage_script(prestage=[PRESTAGE_READY], failover=[TAKEOVER_OK]),
        window_s=60,
        prestage=True,
        polls=3,
        policy="auto",
    )
    incident_id = engine.open("kasir-01")
    inc = engine.drive(incident_id)
    names = [c[0] for c in gw.calls]
    # Started right after the outage was confirmed, before the paper notice and the repairs.
    assert names[:4] == ["triage", "server_check", "start:prestage", "notify"]
    assert names.count("start:prestage") == 1
    # The takeover of a ready standby is one run of failover.yml, journaled step by step.
    assert "failover" in names
    assert not any(n.startswith("failover_") for n in names)
    kinds = [e.kind for e in engine.journal.events(incident_id)]
    assert kinds.index("prestage") < kinds.index("pending_failover")
    assert [e.data["step"] for e in engine.journal.events(incident_id) if e.kind == "failover_step"] == list(
        procedure.FAILOVER_STEPS
    )
    assert inc.phase == Phase.RESOLVED
    assert inc.standby["state"] == "ready"
    assert procedure.standby_readiness(inc).startswith("standby ready, backup of 01:00")
    assert inc.notices == ("outage_paper_mode", "restored_on_standby")


def test_the_failover_waits_for_a_running_prestage_instead_of_redoing_it(tmp_path):
    engine, _gw, _clock = make(
        tmp_path,
        outage_script(prestage=[PRESTAGE_READY], failover=[TAKEOVER_OK]),
        window_s=60,
        prestage=True,
        polls=10_000,  # never done by itself: the failover must wait for it
        policy="auto",
    )
    incident_id = engine.open("kasir-01")
    inc = engine.drive(incident_id)
    kinds = [e.kind for e in engine.journal.events(incident_id)]
    assert kinds.index("prestage") < kinds.index("failover_step")
    assert inc.phase == Phase.RESOLVED


def test_a_standby_not_ready_fails_over_step_by_step(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    engine, gw, _ = make(
        tmp_path,
        outage_script(prestage=[PRESTAGE_NO_DISK], **steps),
        window_s=60,
        prestage=True,
        policy="auto",
    )
    inc = engine.drive(engine.open("kasir-01"))
    assert inc.standby["state"] == "not_ready"
    assert "no backup disk" in inc.standby["detail"]
    assert [c[0] for c in gw.calls if c[0].startswith("failover")] == [
        f"failover_{s}" for s in procedure.FAILOVER_STEPS
    ]
    assert inc.phase == Phase.RESOLVED


def test_a_takeover_that_stops_blocks_at_that_step_and_resumes_step_by_step(tmp_path):
    published = {f"simrs_failover_{s}": step_data(s) for s in ("fence", "power_on", "restore")}
    stopped = PlayResult(
        "failover",
        "failed",
        2,
        {
            "simrs-standby": HostOutcome(
                "simrs-standby", False, False, "ip_takeover", "198.18.0.10 answered by aa:bb"
            )
        },
        {},
        explanation="simrs-standby: 198.18.0.10 answered by aa:bb",
        published=published,
    )
    script = outage_script(
        prestage=[PRESTAGE_READY],
        failover=[stopped],
        **{f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS},
    )
    engine, gw, _ = make(tmp_path, script, window_s=60, prestage=True, policy="auto")
    incident_id = engine.open("kasir-01")
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.FAILOVER
    assert inc.failover_done == ("fence", "power_on", "restore")
    assert inc.failover_blocked["step"] == "ip_takeover"
    assert "answered by aa:bb" in inc.failover_blocked["detail"]
    engine.retry_blocked(incident_id, "ops")
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    after = [c[0] for c in gw.calls][[c[0] for c in gw.calls].index("failover") + 1 :]
    assert [n for n in after if n.startswith("failover_")] == [
        "failover_ip_takeover",
        "failover_start",
        "failover_verify",
    ]


def test_a_repair_that_works_returns_the_prestaged_standby_to_cold(tmp_path):
    engine, gw, _ = make(
        tmp_path,
        {
            "triage": [triage_all(False, False), triage_all(True, True)],
            "server_check": [
                result("server_check", {"simrs-primary": {"reachable": True, "problems": ["db_down"]}})
            ],
            "notify": [NOTIFY_OK],
            "prestage": [PRESTAGE_READY],
            "server_repair": [result("server_repair", {"simrs-primary": {"healthy": True, "actions": []}})],
            "standby_cold": [
                result("standby_cold", {"simrs-standby": {"state_after": "off", "detail": "off"}})
            ],
        },
        prestage=True,
        polls=2,
    )
    inc = engine.drive(engine.open("kasir-01"))
    names = [c[0] for c in gw.calls]
    assert names[-1] == "standby_cold"
    assert inc.phase == Phase.RESOLVED
    assert inc.standby["state"] == "cold"
    assert not any(n.startswith("failover") for n in names)


def test_an_interrupted_drive_cancels_the_prestage_and_resume_runs_it_again(tmp_path):
    script = outage_script(prestage=[PRESTAGE_READY])
    engine, gw, _ = make(tmp_path, script, window_s=600, prestage=True, polls=10_000)
    incident_id = engine.open("kasir-01")
    real_run = gw.run

    def interrupt_at_repair(playbook, **kwargs):
        if playbook == "server_repair":
            raise KeyboardInterrupt
        return real_run(playbook, **kwargs)

    gw.run = interrupt_at_repair
    jobs = []
    real_start = gw.start
    gw.start = lambda playbook, **kw: jobs.append(real_start(playbook, **kw)) or jobs[-1]
    with pytest.raises(KeyboardInterrupt):
        engine.drive(incident_id)
    assert jobs[0].canceled
    inc = engine.incident(incident_id)
    assert inc.standby["state"] == "preparing"
    assert procedure.prestage_due(inc)
    gw.run = real_run
    gw.polls = 0
    engine.drive(incident_id)
    assert len(jobs) == 2  # started again on resume: pre-staging is safe to repeat


def test_manual_failover_tells_the_units_beside_the_fence_then_runs_every_step(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps})
    with pytest.raises(InputError, match="--reason"):
        engine.open_failover("ops", " ")
    incident_id = engine.open_failover("ops", "server motherboard dead")
    inc = engine.drive(incident_id)
    names = [c[0] for c in gw.calls]
    # The paper-mode notice is started in the background: the fence does not wait for it.
    assert names[0] == "start:notify"
    assert gw.calls[0][1]["extravars"]["notify_event"] == "outage_paper_mode"
    assert names[1:7] == [f"failover_{s}" for s in procedure.FAILOVER_STEPS]
    assert names.count("notify") == 1  # restored_on_standby; the paper-mode notice was not sent twice
    assert inc.phase == Phase.RESOLVED
    assert inc.approved_by == "ops"
    assert inc.manual_failover == {"by": "ops", "reason": "server motherboard dead"}
    with pytest.raises(InventoryError, match="nothing to fail over to"):
        Engine(engine.journal, gw, Hospital(CLIENTS, "simrs-primary", None, 60, "approve")).open_failover(
            "x", "y"
        )


def test_a_slow_paper_mode_notice_never_delays_the_steps_and_is_journaled_before_the_all_clear(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps}, polls=100)  # still sending
    incident_id = engine.open_failover("ops", "server motherboard dead")
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    kinds = [(e.kind, e.data.get("event") or e.data.get("step")) for e in engine.journal.events(incident_id)]
    started = kinds.index(("notice_started", "outage_paper_mode"))
    first_step = kinds.index(("failover_step", "fence"))
    verify = kinds.index(("failover_step", "verify"))
    paper = kinds.index(("notice", "outage_paper_mode"))
    assert started < first_step < verify < paper < kinds.index(("notice", "restored_on_standby"))
    assert [c[0] for c in gw.calls].count("start:notify") == 1


def test_a_paper_mode_notice_cut_by_an_error_is_sent_again_after_the_steps(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps}, polls=100)
    incident_id = engine.open_failover("ops", "server motherboard dead")
    real_run = gw.run

    def fail_at_restore(playbook, **kwargs):
        if playbook == "failover_restore":
            raise RuntimeError("the admin machine lost power")
        return real_run(playbook, **kwargs)

    gw.run = fail_at_restore
    with pytest.raises(RuntimeError):
        engine.drive(incident_id)
    assert engine._notice_job is None  # cancelled with the run; the journal has no delivery
    gw.run = real_run
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    notify = [c[1]["extravars"]["notify_event"] for c in gw.calls if c[0] == "notify"]
    assert notify == ["outage_paper_mode", "restored_on_standby"]  # once more, after the steps


def guard_seen(primary: dict, standby: dict, owners: list[str], done: tuple = ()) -> PlayResult:
    """What playbooks/ip_guard.yml publishes: each server's own view and the PCs' ARP view."""
    return result(
        "ip_guard",
        {
            "localhost": {"ok": True, "owners": owners, "macs": [], "unknown_macs": [], "service_ip": "IP"},
            "simrs-primary": {**primary, "done": list(done)},
            "simrs-standby": standby,
        },
    )


SERVING = {"answers": True, "holds_service_ip": True, "simrs_running": True, "serving": True}
SILENT = {"answers": False}


def test_the_guard_on_a_healthy_hospital_changes_nothing_whatever_an_older_failover_said(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    healthy = guard_seen(SERVING, SILENT, ["simrs-primary"])
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], "ip_guard": [healthy], **steps})
    facts, none = engine.guard()
    assert none is None
    assert facts["ok"]
    assert gw.calls[-1][1]["extravars"] == {"ip_guard_owner": "simrs-primary", "ip_guard_look_only": True}
    # A failover that ended on the standby, later undone by hand: the primary alone serves again.
    incident_id = engine.open_failover("ops", "dead")
    engine.drive(incident_id)
    calls = len(gw.calls)
    facts, where = engine.guard()
    assert facts["ok"]
    assert facts["kept"] == "simrs-primary"
    assert len(gw.calls) == calls + 1  # it only looked
    assert gw.calls[-1][1]["extravars"]["ip_guard_look_only"] is True
    assert "nothing changed" in facts["notes"][0]
    assert where == incident_id  # said in the incident the hosts contradict


def test_the_guard_takes_the_ip_from_the_returned_primary_only_after_the_current_takeover(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    both = guard_seen(SERVING, SERVING, ["simrs-primary", "simrs-standby"])
    after = guard_seen(
        {"answers": True, "holds_service_ip": False}, SERVING, ["simrs-standby"], done=("gave up",)
    )
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], "ip_guard": [both, after], **steps})
    incident_id = engine.open_failover("ops", "dead")
    engine.drive(incident_id)
    facts, where = engine.guard()
    assert where == incident_id
    assert facts["ok"]
    assert gw.calls[-1][1]["extravars"] == {
        "ip_guard_owner": "simrs-standby",
        "ip_guard_take_from": ["simrs-primary"],
        "ip_guard_stop_on": ["simrs-primary"],
    }
    entry = [e for e in engine.journal.events(incident_id) if e.kind == "ip_guard"][-1]
    assert entry.data["done"] == ["gave up"]
    assert entry.data["owners"] == ["simrs-standby"]
    assert entry.data["before"] == {"simrs-primary": True, "simrs-standby": True}
    with pytest.raises(InputError, match="--owner"):
        engine.guard("kasir-01")


def test_the_guard_without_a_takeover_leaves_two_serving_owners_to_a_person(tmp_path):
    both = guard_seen(SERVING, SERVING, ["simrs-primary", "simrs-standby"])
    engine, gw, _ = make(tmp_path, {"ip_guard": [both]})
    facts, where = engine.guard()
    assert not facts["ok"]
    assert where is None
    assert len(gw.calls) == 1  # looked, took nothing
    assert "--owner" in facts["notes"][0]


def test_the_guard_refuses_during_a_failover_and_while_an_incident_is_driven(tmp_path):
    engine, gw, _ = make(tmp_path, {"ip_guard": [guard_seen(SERVING, SILENT, ["simrs-primary"])]})
    incident_id = engine.open_failover("ops", "dead")
    engine.journal.append(incident_id, "approved", {"by": "ops"})  # FAILOVER, no step done yet
    with pytest.raises(JournalError, match=f"{incident_id} is failing over"):
        engine.guard()
    assert gw.calls == []
    other, _, _ = make(tmp_path / "b", {"ip_guard": [guard_seen(SERVING, SILENT, ["simrs-primary"])]})
    opened = other.open("kasir-01")
    with other.journal.lock(opened, "driving"), pytest.raises(JournalError, match="being driven by pid"):
        other.guard()


def test_a_persons_word_that_the_primary_is_off_reaches_the_fence(tmp_path):
    silent = result(
        "failover_fence",
        {"simrs-primary": {"ok": False, "fenced": False, "detail": "cannot tell whether it is off: confirm"}},
        status="failed",
    )
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    steps["failover_fence"] = [silent, result("failover_fence", step_data("fence"))]
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps})
    incident_id = engine.open_failover("ops", "main board dead")
    inc = engine.drive(incident_id)
    assert inc.failover_blocked["step"] == "fence"
    fence_calls = [c for c in gw.calls if c[0] == "failover_fence"]
    assert "fence_operator_confirmed_off" not in fence_calls[0][1]["extravars"]
    engine.confirm_primary_off(incident_id, "ops-ani")
    engine.retry_blocked(incident_id, "ops-ani")
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    fence_calls = [c for c in gw.calls if c[0] == "failover_fence"]
    assert fence_calls[1][1]["extravars"]["fence_operator_confirmed_off"] is True
    assert inc.primary_confirmed_off == "ops-ani"


def test_a_step_refusing_the_situation_stops_there_but_an_argument_spec_error_is_config(tmp_path):
    no_disk = PlayResult(
        "failover_restore",
        "failed",
        2,
        {"simrs-standby": HostOutcome("simrs-standby", False, False, "Check the disk", "disk not plugged in",
                                      "ansible.builtin.assert")},
        {},
        explanation="simrs-standby: disk not plugged in",
    )  # fmt: skip
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    steps["failover_restore"] = [no_disk]
    engine, _gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], **steps})
    inc = engine.drive(engine.open_failover("ops", "dead"))
    assert inc.failover_blocked == {"step": "restore", "detail": "simrs-standby: disk not plugged in"}
    bad_spec = replace(
        no_disk,
        hosts={"simrs-standby": HostOutcome("simrs-standby", False, False, "spec", "restore_x: bad",
                                            "ansible.builtin.validate_argument_spec")},
    )  # fmt: skip
    engine.gateway.script["failover_restore"] = [bad_spec]
    engine.retry_blocked(inc.id, "ops")
    with pytest.raises(ConfigError, match="restore_x: bad"):
        engine.drive(inc.id)


def test_the_failover_waits_while_a_drill_uses_the_standby(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    engine, gw, clock = make(tmp_path, {"notify": [NOTIFY_OK], **steps})
    incident_id = engine.open_failover("ops", "dead")
    drill = engine.journal.lock(DRILL_LOCK, "running a drill")
    drill.__enter__()
    real_sleep = clock.sleep
    slept = []

    def sleep(s):
        slept.append(s)
        if len(slept) == 3:  # the drill ends (its clean-up switched the standby off)
            drill.__exit__(None, None, None)
        real_sleep(s)

    engine.sleep = sleep
    inc = engine.drive(incident_id)
    assert inc.phase == Phase.RESOLVED
    assert len(slept) >= 3
    first_step = next(i for i, c in enumerate(gw.calls) if c[0].startswith("failover_"))
    assert first_step == 1  # the paper notice went out at once; the steps waited for the drill


def test_the_dry_run_plan_says_how_the_primary_would_be_fenced_and_which_backup_is_restored():
    hospital = Hospital(CLIENTS, "simrs-primary", "simrs-standby", 60, "approve")
    checked = PlayResult(
        "failover",
        "failed",
        2,
        {"simrs-standby": HostOutcome("simrs-standby", False, True, "x", "unreachable")},
        {},
        published={
            "simrs_failover_fence": {"simrs-primary": {"fenced": False, "detail": "would power off (hard)"}},
            "simrs_failover_power_on": {"simrs-standby": {"state_before": "off", "detail": "would power on"}},
        },
    )
    plan = failover_plan(checked, hospital)
    assert [s["step"] for s in plan["steps"]] == list(procedure.FAILOVER_STEPS)
    assert plan["steps"][0]["check"] == {"ok": True, "detail": "would power off (hard)"}
    assert plan["steps"][2]["check"] is None
    assert any("is off" in n for n in plan["notes"])
    assert plan["ready"]
    restored = replace(
        checked,
        published={
            **checked.published,
            "simrs_failover_power_on": {"simrs-standby": {"state_before": "on", "detail": "on"}},
            "simrs_failover_restore": {"simrs-standby": {"set": "S1", "created_at": "2026-11-26T01:00:00Z",
                                                         "age_seconds": 7260, "detail": "would restore S1"}},
        },
    )  # fmt: skip
    plan = failover_plan(restored, hospital)
    assert plan["backup"]["set"] == "S1"
    assert plan["backup"]["age"] == "2 h 1 min"
    no_fence = replace(checked, published={}, explanation="simrs-primary: confirm it is off")
    plan = failover_plan(no_fence, hospital)
    assert not plan["ready"]
    assert "confirm" in plan["steps"][0]["check"]["detail"]


def test_the_ip_only_failback_needs_a_finished_failover_and_a_persons_word_then_the_primary_owns_the_ip(
    tmp_path,
):
    """`--data-synced`: the old path, explicitly chosen (the data-moving failback: test_failback.py)."""
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    back = result(
        "failback",
        {
            "simrs-standby": {"service": {"state": "stopped"}, "ip_takeover": {"present_after": False}},
            "simrs-primary": {"power": {"state_after": "on"}, "ip_takeover": {"present_after": True}},
            "localhost": {"verify": {"ok": True, "served_by": "simrs-primary"}},
        },
    )
    guard = guard_seen(SERVING, SILENT, ["simrs-primary"])
    engine, gw, _ = make(tmp_path, {"notify": [NOTIFY_OK], "failback": [back], "ip_guard": [guard], **steps})
    with pytest.raises(InputError, match="no failover to undo"):
        engine.failback("ops", data_synced=True)
    incident_id = engine.open_failover("ops", "dead")
    engine.drive(incident_id)
    facts, where = engine.failback("ops", data_synced=True)
    assert where == incident_id
    assert facts["ok"]
    assert facts["served_by"] == "simrs-primary"
    assert gw.calls[-1][1]["extravars"] == {"failback_data_synced": True}
    assert engine.incident(incident_id).failed_back
    engine.guard()
    assert gw.calls[-1][1]["extravars"]["ip_guard_owner"] == "simrs-primary"  # the primary owns it again
    with pytest.raises(InputError, match="no failover to undo"):
        engine.failback("ops", data_synced=True)


def test_each_takeover_step_is_journaled_with_its_seconds_when_it_ends(tmp_path):
    """The run's live events end each step (its publishing task): journaled at once, with the
    step's own duration; the fence runs beside the standby's steps; verify ends with the last PC."""
    engine, gw, clock = make(tmp_path, outage_script(prestage=[PRESTAGE_READY]), window_s=60, prestage=True)
    incident_id = engine.open("kasir-01")
    seen_live: list[list[str]] = []
    milestones = [
        (1.0, "simrs-standby", "Publish the standby's power state"),
        (2.0, "simrs-standby", "Publish what was restored"),
        (2.5, "simrs-primary", "Publish how the primary was fenced"),
        (3.0, "simrs-standby", "Publish the SIMRS service's state"),
        (5.0, "simrs-standby", "Publish the service IP's state"),
        (6.0, "localhost", "Publish each machine's verdict"),
        (6.5, "kasir-01", "Publish each machine's verdict"),
        (6.5, "kasir-01", "Publish each machine's verdict"),  # a repeated event counts once
        (7.0, "farmasi-01", "Publish each machine's verdict"),
        (8.0, "pendaftaran-01", "Publish each machine's verdict"),
    ]

    scripted = gw.run

    def run(playbook, **kwargs):
        if playbook != "failover":
            return scripted(playbook, **kwargs)
        gw.calls.append((playbook, kwargs))
        began = clock.t
        for at, host, task in milestones:
            clock.t = began + at
            kwargs["progress"]("playbook_on_task_start", "", task)
            kwargs["progress"]("runner_on_ok", host, task)
            seen_live.append([e.kind for e in engine.journal.events(incident_id)])
        verify = {
            "localhost": {"ok": True},
            **{c: {"ok": c != "pendaftaran-01", "detail": c} for c in CLIENTS},
        }
        return replace(
            TAKEOVER_OK, published={**TAKEOVER_OK.published, "simrs_failover_verify": verify}, status="failed"
        )

    gw.run = run
    inc = engine.drive(incident_id)
    while inc.phase == Phase.FAILOVER_PENDING:
        engine.approve(incident_id, "ops")
        inc = engine.drive(incident_id)
    events = engine.journal.events(incident_id)
    live = [e.data for e in events if e.kind == "takeover_step"]
    assert live == [
        {"step": "power_on", "seconds": 1.0},
        {"step": "restore", "seconds": 1.0},
        {"step": "fence", "seconds": 2.5},  # from the run's start: beside the standby's steps
        {"step": "start", "seconds": 1.0},
        {"step": "ip_takeover", "seconds": 2.0},  # after both the fence and the start
        {"step": "verify", "seconds": 3.0},  # the last PC
    ]
    # Journaled while the run went on, not at its end.
    assert seen_live[0].count("takeover_step") == 1
    assert "failover_step" not in seen_live[-1]
    facts = {e.data["step"]: e.data for e in events if e.kind == "failover_step"}
    assert facts["fence"]["seconds"] == 2.5
    assert facts["verify"]["clients_verified"] == {
        "first": {"host": "kasir-01", "seconds": 6.5},
        "last": {"host": "farmasi-01", "seconds": 7.0},
        "ok": 2,
        "of": 3,
    }
