"""The hospital's SOP as pure decisions: (incident, now, policy) -> the next action.

No I/O, no clock, no Ansible. ``replay`` folds journal events into an ``Incident``;
``next_action`` says what to do next; ``classify`` and ``server_state`` turn probe facts into
the SOP's branches. Every branch has a table-driven test (tests/unit/test_procedure.py).

SOP mapping: step 1 -> triage (probe every client and, from the admin machine, the server);
step 2 -> CLIENT_LOCAL -> client repair; step 3 -> SERVER -> server check; step 4a -> the
repair window (bounded attempts with back-off); step 4b -> FAILOVER_PENDING at the deadline;
step 4c -> the paper-mode notice as soon as a server outage is confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    OPENED = "OPENED"
    TRIAGE = "TRIAGE"
    CLIENT_REPAIR = "CLIENT_REPAIR"
    SERVER_CHECK = "SERVER_CHECK"
    SERVER_REPAIR = "SERVER_REPAIR"
    FAILOVER_PENDING = "FAILOVER_PENDING"
    FAILOVER = "FAILOVER"
    RUNNING_ON_STANDBY = "RUNNING_ON_STANDBY"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"
    CLOSED = "CLOSED"


ACTIVE = (
    Phase.OPENED,
    Phase.TRIAGE,
    Phase.CLIENT_REPAIR,
    Phase.SERVER_CHECK,
    Phase.SERVER_REPAIR,
    Phase.FAILOVER_PENDING,
    Phase.FAILOVER,
)


# SOP 4b as journaled steps, in this order; each is a playbook (failover_<step>) that is safe to
# run again. The primary is fenced first: never two owners of the service IP.
FAILOVER_STEPS = ("fence", "power_on", "restore", "ip_takeover", "start", "verify")

# Checks past the network: a PC failing only here reached the server's ports.
APP_CHECKS = frozenset({"app", "login", "web"})


class Verdict(StrEnum):
    CLIENT_LOCAL = "CLIENT_LOCAL"
    NETWORK = "NETWORK"
    SERVER = "SERVER"
    NO_FAULT = "NO_FAULT"


class ServerState(StrEnum):
    HOST_DOWN = "HOST_DOWN"
    SERVICE_DOWN = "SERVICE_DOWN"
    HEALTHY = "HEALTHY"


@dataclass(frozen=True)
class Policy:
    repair_window_s: int = 3600
    failover: str = "approve"  # approve | auto
    backoff_first_s: int = 15
    backoff_max_s: int = 300

    def backoff(self, attempts_done: int) -> int:
        """Seconds to wait after the n-th failed repair attempt: 15, 30, 60, ... capped."""
        return min(self.backoff_first_s * 2 ** max(attempts_done - 1, 0), self.backoff_max_s)


# ---- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientFact:
    host: str
    ok: bool
    unreachable: bool = False
    failed_check: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    failing: tuple[str, ...]
    evidence: dict[str, str]
    summary: str


def classify(
    clients: Iterable[ClientFact], admin_ok: bool, admin_failed: str | None = None
) -> Classification:
    """SOP step 1: do the other PCs have the same problem? And does the admin machine?"""
    facts = list(clients)
    failing = [c for c in facts if not c.ok]
    fine = [c for c in facts if c.ok]
    evidence = {
        c.host: (
            "unreachable from the admin machine"
            if c.unreachable
            else f"{c.failed_check}: {c.detail}".strip(": ")
        )
        for c in failing
    }
    names = tuple(sorted(c.host for c in failing))
    if not failing:
        if admin_ok:
            return Classification(Verdict.NO_FAULT, (), {}, "every client PC reaches the SIMRS now")
        evidence["admin"] = admin_failed or "failed"
        return Classification(
            Verdict.SERVER,
            (),
            evidence,
            "no client reports a fault but the admin machine cannot reach the SIMRS",
        )
    if fine:
        return Classification(
            Verdict.CLIENT_LOCAL,
            names,
            evidence,
            f"{len(failing)} of {len(facts)} client PCs fail, the others are fine",
        )
    reachable_failing = [c for c in failing if not c.unreachable]
    # Every PC gets through the network to the server's ports but the application itself fails
    # (e.g. logins hang on a full disk while the admin machine's read-only check passes): that
    # is the server, not the network.
    app_only = bool(reachable_failing) and all(c.failed_check in APP_CHECKS for c in reachable_failing)
    if admin_ok and not app_only:
        what = "cannot be reached" if not reachable_failing else "fail"
        return Classification(
            Verdict.NETWORK,
            names,
            evidence,
            f"every client PC {what}, but the admin machine reaches the SIMRS",
        )
    evidence["admin"] = (admin_failed or "failed") if not admin_ok else "ok (read-only check)"
    summary = (
        "every client PC reaches the server but the SIMRS application fails on all of them"
        if admin_ok
        else "every client PC fails and so does the admin machine's check"
    )
    return Classification(Verdict.SERVER, names, evidence, summary)


def server_state(reachable: bool, problems: Iterable[str]) -> ServerState:
    """SOP step 3: is the server computer online? HOST_DOWN when it cannot be reached at all."""
    if not reachable:
        return ServerState.HOST_DOWN
    return ServerState.SERVICE_DOWN if list(problems) else ServerState.HEALTHY


# ---- the incident, by replay ------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    id: str
    reporter: str = ""
    note: str = ""
    opened_at: float = 0.0
    phase: Phase = Phase.OPENED
    policy: Policy = field(default_factory=Policy)
    verdict: Verdict | None = None
    failing: tuple[str, ...] = ()
    evidence: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    client_repair_done: bool = False
    server: ServerState | None = None
    problems: tuple[str, ...] = ()
    outage_confirmed_at: float | None = None
    repair_attempts: int = 0
    last_repair_at: float | None = None
    server_repaired: bool = False
    verified_after_repair: bool = False
    verified_at: float | None = None
    notices: tuple[str, ...] = ()
    notices_started: tuple[str, ...] = ()  # sent in the background, beside the failover's steps
    failover_now: dict[str, Any] | None = None
    pending_action: str | None = None
    approved_by: str | None = None
    failover_done: tuple[str, ...] = ()
    failover_blocked: dict[str, Any] | None = None  # {step, detail}: waits for a person
    failover_facts: dict[str, Any] = field(default_factory=dict)  # step -> its published facts
    manual_failover: dict[str, Any] | None = None  # `simrs failover`: {by, reason}
    prestage: bool = False  # get the standby ready during the repair window (SOP 4b, pre-staging)
    prestage_done: bool = False  # a pre-staging run finished (ready or not)
    standby: dict[str, Any] = field(default_factory=dict)  # readiness: {state, detail, set, ...}
    standby_cold_tried: bool = False
    primary_confirmed_off: str | None = None  # who confirmed by hand that the primary is off
    failed_back: bool = False  # the SIMRS moved back to the primary after the failover
    failover_canceled: dict[str, Any] | None = None  # {by, reason}: the primary came back healthy
    reason: str = ""  # why it is where it is, for people
    closed_cause: str = ""

    @property
    def deadline(self) -> float | None:
        if self.outage_confirmed_at is None:
            return None
        return self.outage_confirmed_at + self.policy.repair_window_s

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def restored(self) -> dict[str, Any]:
        """What the failover's restore step published for the standby (set, rpo_seconds, last_visit,
        skipped_bad, ...), or {} before it ran."""
        hosts = (self.failover_facts.get("restore") or {}).get("hosts") or {}
        return next(iter(hosts.values()), {})


def replay(incident_id: str, events: Iterable[Any]) -> Incident:
    """Fold journal events (objects with .kind, .ts, .data) into the incident's current state."""
    inc = Incident(id=incident_id)
    for ev in events:
        inc = apply(inc, ev.kind, ev.data, ev.ts)
    return inc


def _opened(inc: Incident, data: dict[str, Any], ts: float) -> Incident:
    policy = Policy(
        repair_window_s=int(data.get("window_s", 3600)),
        failover=data.get("failover", "approve"),
        backoff_first_s=int(data.get("backoff_first_s", 15)),
        backoff_max_s=int(data.get("backoff_max_s", 300)),
    )
    inc = replace(
        inc,
        reporter=data["reporter"],
        note=data.get("note", ""),
        opened_at=ts,
        policy=policy,
        phase=Phase.TRIAGE,
        prestage=bool(data.get("prestage", False)),
        reason="triage: probing every client PC",
    )
    manual = data.get("manual_failover")
    if manual:
        # SOP 4b on its own (`simrs failover`): a person has decided the main server is lost.
        return replace(
            inc,
            manual_failover=manual,
            prestage=False,
            verdict=Verdict.SERVER,
            outage_confirmed_at=ts,
            phase=Phase.FAILOVER_PENDING,
            reason=f"failover to the standby asked for by {manual.get('by', '?')}: "
            f"{manual.get('reason', '')}",
        )
    return inc


def _standby_event(inc: Incident, kind: str, data: dict[str, Any], ts: float) -> Incident:
    """The pre-staged standby's readiness (prestage_started, prestage, standby_cold)."""
    if kind == "prestage_started":
        return replace(inc, standby={"state": "preparing", "since": ts})
    if kind == "prestage":
        if data.get("ok"):
            ready = {k: data.get(k) for k in ("set", "created_at", "age_seconds", "served_by", "detail")}
            return replace(inc, prestage_done=True, standby={"state": "ready", "at": ts, **ready})
        return replace(
            inc,
            prestage_done=True,
            standby={"state": "not_ready", "at": ts, "detail": data.get("detail", "")},
        )
    if kind == "standby_cold":
        state = "cold" if data.get("ok") else "on"
        return replace(
            inc,
            standby_cold_tried=True,
            standby={**inc.standby, "state": state, "detail": data.get("detail", "")},
        )
    return inc


def apply(inc: Incident, kind: str, data: dict[str, Any], ts: float) -> Incident:  # noqa: PLR0911, PLR0912, PLR0915
    if kind == "opened":
        return _opened(inc, data, ts)
    if kind in ("prestage_started", "prestage", "standby_cold"):
        return _standby_event(inc, kind, data, ts)
    if kind == "action_started":
        return replace(inc, pending_action=data["action"])
    if kind == "triage":
        c = classify_from_data(data)
        if inc.phase == Phase.SERVER_REPAIR:  # the verification after a repair: the verdict stays
            inc = replace(inc, pending_action=None)
            # A PC that is switched off cannot confirm the repair, and must not block it either.
            reachable_fail = [h for h in c.failing if "unreachable" not in c.evidence.get(h, "")]
            if c.verdict == Verdict.NO_FAULT or (
                not reachable_fail and bool(data.get("admin", {}).get("ok"))
            ):
                return replace(
                    inc,
                    verified_after_repair=True,
                    verified_at=ts,
                    reason="verified: every client reaches the SIMRS",
                )
            return replace(
                inc, server_repaired=False, reason=f"repair not confirmed by the clients: {c.summary}"
            )
        inc = replace(
            inc,
            pending_action=None,
            verdict=c.verdict,
            failing=c.failing,
            evidence=c.evidence,
            summary=c.summary,
        )
        if c.verdict == Verdict.NO_FAULT:
            return replace(inc, phase=Phase.RESOLVED, reason=c.summary)
        if c.verdict == Verdict.CLIENT_LOCAL:
            return replace(
                inc, phase=Phase.CLIENT_REPAIR, reason=f"{c.summary}: repairing {', '.join(c.failing)}"
            )
        if c.verdict == Verdict.NETWORK:
            hops = "; ".join(f"{h}: {e}" for h, e in c.evidence.items())
            return replace(
                inc,
                phase=Phase.ESCALATED,
                reason=f"network problem between the PCs and the server ({hops}): "
                "escalate to the network team",
            )
        return replace(inc, phase=Phase.SERVER_CHECK, reason=f"{c.summary}: checking the SIMRS server")
    if kind == "client_repair":
        hosts: dict[str, Any] = data.get("hosts", {})
        still = sorted(h for h in inc.failing if not (hosts.get(h) or {}).get("ok"))
        inc = replace(inc, pending_action=None, client_repair_done=True)
        if not still:
            return replace(
                inc, phase=Phase.RESOLVED, reason=f"repaired {', '.join(inc.failing)}; probed again: OK"
            )
        details = "; ".join(f"{h}: {(hosts.get(h) or {}).get('detail', 'no result')}" for h in still)
        return replace(
            inc, phase=Phase.ESCALATED, reason=f"client repair did not fix {details}: repair by hand"
        )
    if kind == "server_check":
        state = server_state(bool(data.get("reachable")), data.get("problems", []))
        inc = replace(inc, pending_action=None, server=state, problems=tuple(data.get("problems", [])))
        if inc.phase == Phase.SERVER_CHECK:
            if state == ServerState.HEALTHY:
                return replace(
                    inc,
                    phase=Phase.ESCALATED,
                    reason="every client fails but the server looks healthy: check the network path",
                )
            return replace(
                inc,
                phase=Phase.SERVER_REPAIR,
                outage_confirmed_at=ts,
                reason=f"server outage confirmed ({state}): units switch to paper; repairing",
            )
        return inc
    if kind == "notice_started":
        return replace(inc, notices_started=(*inc.notices_started, data["event"]))
    if kind == "notice":
        if data.get("sent"):
            return replace(inc, pending_action=None, notices=(*inc.notices, data["event"]))
        return replace(inc, pending_action=None)
    if kind == "repair_attempt":
        healthy = bool(data.get("healthy"))
        return replace(
            inc,
            pending_action=None,
            repair_attempts=inc.repair_attempts + 1,
            last_repair_at=ts,
            server_repaired=healthy,
            verified_after_repair=False,
            reason=(
                f"repair attempt {inc.repair_attempts + 1} made the server healthy: verifying"
                if healthy
                else f"repair attempt {inc.repair_attempts + 1} did not fix the server"
                + (f" ({data['detail']})" if data.get("detail") else "")
            ),
        )
    if kind == "failover_now":
        return replace(inc, failover_now=data)
    if kind == "pending_failover":
        return replace(inc, phase=Phase.FAILOVER_PENDING, reason=data.get("reason", "failover pending"))
    if kind == "approved":
        if inc.phase != Phase.FAILOVER_PENDING:
            return inc
        return replace(
            inc,
            phase=Phase.FAILOVER,
            approved_by=data.get("by", "?"),
            reason=f"failover approved by {data.get('by', '?')}: taking over to the standby (SOP 4b)",
        )
    if kind == "failover_step":
        step = data["step"]
        facts = {**inc.failover_facts, step: data}
        if data.get("ok"):
            done = inc.failover_done if step in inc.failover_done else (*inc.failover_done, step)
            inc = replace(
                inc, pending_action=None, failover_done=done, failover_blocked=None, failover_facts=facts
            )
            if step == "verify":  # every client works again, on the standby
                inc = replace(
                    inc, verified_at=ts, reason="verified: every client reaches the SIMRS on the standby"
                )
            return inc
        return replace(
            inc,
            pending_action=None,
            failover_facts=facts,
            failover_blocked={
                "step": step,
                "detail": data.get("detail", ""),
                **{k: data[k] for k in ("returned", "returned_serving") if data.get(k)},
            },
            reason=f"failover stopped at {step}: {data.get('detail', '')}",
        )
    if kind == "retry":
        return replace(inc, failover_blocked=None)
    if kind == "fence_again":
        # A person chose to fence the main server again (it came back during the failover).
        done = tuple(s for s in inc.failover_done if s != "fence")
        return replace(
            inc,
            failover_done=done,
            failover_blocked=None,
            reason=f"{data.get('by', '?')} fences the main server again: {data.get('reason', '')}",
        )
    if kind == "failover_canceled":
        # The main server came back healthy before the service IP moved: back to it, the standby
        # returns to cold (the verify and the standby_cold of a repair that worked).
        return replace(
            inc,
            phase=Phase.SERVER_REPAIR,
            failover_canceled=data,
            failover_blocked=None,
            pending_action=None,
            server_repaired=True,
            verified_after_repair=False,
            failover_now=None,
            reason=f"failover canceled by {data.get('by', '?')}: {data.get('reason', '')}; "
            "verifying the main server from every PC",
        )
    if kind == "primary_confirmed_off":
        return replace(inc, primary_confirmed_off=data.get("by", "?"))
    if kind == "failback":
        return replace(inc, failed_back=bool(data.get("ok")) or inc.failed_back)
    if kind == "on_standby":
        return replace(
            inc, phase=Phase.RUNNING_ON_STANDBY, reason=data.get("reason", "running on the standby")
        )
    if kind == "resolved":
        return replace(inc, phase=Phase.RESOLVED, reason=data.get("reason", "resolved"))
    if kind == "closed":
        return replace(inc, phase=Phase.CLOSED, closed_cause=data.get("cause", ""))
    return inc  # facts kept for the report that do not move the procedure


def classify_from_data(data: dict[str, Any]) -> Classification:
    clients = [
        ClientFact(
            host=h,
            ok=bool(v.get("ok")),
            unreachable=bool(v.get("unreachable")),
            failed_check=v.get("failed_check"),
            detail=str(v.get("detail", "")),
        )
        for h, v in sorted(data.get("clients", {}).items())
    ]
    admin = data.get("admin", {})
    return classify(clients, bool(admin.get("ok")), admin.get("failed_check"))


# ---- the next action ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    kind: str  # triage | client_repair | server_check | notify | server_repair | verify | wait | ...
    hosts: tuple[str, ...] = ()
    event: str = ""  # notify: which notice
    until: float | None = None  # wait: until when
    reason: str = ""

    @property
    def needs_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def finished(self) -> bool:
        return self.kind == "done"


def next_action(inc: Incident, now: float) -> Action:  # noqa: PLR0911
    if inc.phase in (Phase.OPENED, Phase.TRIAGE):
        return Action("triage", reason="SOP 1: do the other PCs have the same problem?")
    if inc.phase == Phase.CLIENT_REPAIR:
        return Action("client_repair", hosts=inc.failing, reason="SOP 2: only these PCs: repair them")
    if inc.phase == Phase.SERVER_CHECK:
        return Action("server_check", reason="SOP 3: every PC fails: is the SIMRS server online?")
    if inc.phase == Phase.SERVER_REPAIR:
        return _server_repair_step(inc, now)
    if inc.phase == Phase.FAILOVER_PENDING:
        if inc.policy.failover == "auto":
            return Action("approve", reason="failover policy auto: no approval needed")
        return Action("operator", reason="approve the failover to the standby server (SOP 4b)")
    if inc.phase == Phase.FAILOVER:
        return _failover_step(inc)
    if inc.phase == Phase.RUNNING_ON_STANDBY:
        return Action("resolve", reason="the SIMRS runs on the standby server, verified from every PC")
    if inc.phase == Phase.ESCALATED:
        return Action("operator", reason=inc.reason)
    return Action("done", reason=inc.reason)


def prestage_due(inc: Incident) -> bool:
    """Pre-stage the standby now? From the confirmed outage, alongside the repair attempts, once
    (a run that did not report is run again after a crash: it is safe to repeat)."""
    return (
        inc.prestage
        and inc.phase == Phase.SERVER_REPAIR
        and not inc.prestage_done
        and not inc.server_repaired
        and inc.outage_confirmed_at is not None
    )


def standby_readiness(inc: Incident) -> str:
    """One line for people: 'standby ready, backup of HH:MM, verified' and the like."""
    s = inc.standby
    state = s.get("state")
    if not state:
        return "standby: cold (not pre-staged)" if inc.prestage else "standby: cold"
    if state == "preparing":
        return "standby: being prepared (power on, restore, start, verify on its own address)"
    if state == "ready":
        created = str(s.get("created_at") or "?")
        clock = created[11:16] if len(created) >= 16 else created
        return f"standby ready, backup of {clock} ({s.get('set', '?')}), verified on its own address"
    if state == "not_ready":
        return f"standby NOT ready: {s.get('detail', '')}"
    if state == "cold":
        return "standby returned to cold (switched off)"
    return f"standby still on: {s.get('detail', '')}"


def _failover_step(inc: Incident) -> Action:  # noqa: PLR0911
    if "outage_paper_mode" not in inc.notices and "outage_paper_mode" not in inc.notices_started:
        # A failover asked for by hand starts here: the units work on paper meanwhile (SOP 4c). The
        # engine sends it in the background (notice_started): it never delays the fence.
        return Action(
            "notify",
            event="outage_paper_mode",
            reason="SOP 4c: tell the units to use the manual (paper) system (beside the failover)",
        )
    if inc.failover_blocked:
        step = inc.failover_blocked["step"]
        return Action(
            "operator",
            reason=returned_primary_words(inc)
            if inc.failover_blocked.get("returned")
            else f"failover stopped at {step}: {inc.failover_blocked.get('detail', '')}; "
            "fix the cause, then `simrs incident resume`",
        )
    if not inc.failover_done and inc.standby.get("state") == "ready":
        # Pre-staged: the standby is on, restored and verified. The takeover is one run of every
        # step (each still journaled on its own); what is left after a failure goes step by step.
        return Action(
            "failover_takeover",
            event=",".join(FAILOVER_STEPS),
            reason="SOP 4b on the pre-staged standby: fence, catch up, take over the IP, verify",
        )
    for step in FAILOVER_STEPS:
        if step not in inc.failover_done:
            return Action("failover_step", event=step, reason=f"SOP 4b: {FAILOVER_REASONS[step]}")
    if "outage_paper_mode" not in inc.notices:
        # Sent beside the steps and not (yet) journaled delivered: finished, or sent again, first.
        return Action(
            "notify",
            event="outage_paper_mode",
            reason="SOP 4c: the paper-mode notice, before the units are told the SIMRS is back",
        )
    if "outage_paper_mode" not in inc.notices:
        # Sent beside the steps and not (yet) journaled delivered: finished, or sent again, first.
        return Action(
            "notify",
            event="outage_paper_mode",
            reason="SOP 4c: the paper-mode notice, before the units are told the SIMRS is back",
        )
    if "restored_on_standby" not in inc.notices:
        return Action(
            "notify", event="restored_on_standby", reason="tell the units the SIMRS is normal again (standby)"
        )
    return Action("on_standby", reason="the SIMRS runs on the standby server, verified from every PC")


def returned_primary_words(inc: Incident) -> str:
    """The choice a person must make when the main server answers for the service IP again."""
    blocked = inc.failover_blocked or {}
    host = blocked.get("returned") or "the main server"
    serving = " and serves the SIMRS" if blocked.get("returned_serving") else " (its SIMRS does not serve)"
    return (
        f"failover stopped at {blocked.get('step')}: {host} answers for the service IP again{serving}. "
        f"A person decides: the main server is healthy -> `simrs incident cancel-failover {inc.id} "
        f"--reason TEXT` (the units go back to it, the standby returns to cold); or it must not "
        f"serve -> `simrs incident failover-now {inc.id} --fence-again --reason TEXT` (fence it again, "
        "then take over)"
    )


FAILOVER_REASONS = {
    "fence": "make sure the main server cannot serve (never two owners of the service IP)",
    "power_on": "switch on the standby server",
    "restore": "copy the newest good backup from the external disk and restore it",
    "ip_takeover": "give the standby the main server's IP (duplicate check first, gratuitous ARP after)",
    "start": "start the SIMRS on the standby",
    "verify": "try the SIMRS from the admin machine and from every PC",
}


def _server_repair_step(inc: Incident, now: float) -> Action:  # noqa: PLR0911
    if "outage_paper_mode" not in inc.notices:
        return Action(
            "notify",
            event="outage_paper_mode",
            reason="SOP 4c: tell the units to use the manual (paper) system",
        )
    if inc.server_repaired and not inc.verified_after_repair:
        return Action("verify", reason="the server looks healthy: verify from every client PC")
    if inc.server_repaired and inc.verified_after_repair:
        if "restored" not in inc.notices:
            return Action("notify", event="restored", reason="tell the units the SIMRS is normal again")
        if (inc.standby or set(inc.failover_done) & {"power_on", "restore", "start"}) and not (
            inc.standby_cold_tried
        ):
            return Action(
                "standby_cold", reason="the main server is back: return the pre-staged standby to cold"
            )
        return Action("resolve", reason="server repaired and verified from every client PC")
    deadline = inc.deadline or now
    if inc.failover_now:
        who = inc.failover_now.get("by", "an operator")
        return Action(
            "pending_failover",
            reason=f"repair window ended early by {who}: {inc.failover_now.get('reason', '')}",
        )
    if now >= deadline:
        return Action(
            "pending_failover",
            reason=f"not repaired within {_duration(inc.policy.repair_window_s)} "
            f"({inc.repair_attempts} attempts): take over to the standby server (SOP 4b)",
        )
    if inc.last_repair_at is None:
        return Action("server_repair", reason="SOP 4a: repair the SIMRS server (attempt 1)")
    next_at = inc.last_repair_at + inc.policy.backoff(inc.repair_attempts)
    if now >= next_at:
        return Action("server_repair", reason=f"SOP 4a: repair attempt {inc.repair_attempts + 1}")
    return Action(
        "wait",
        until=min(next_at, deadline),
        reason=f"next repair attempt at +{next_at - inc.outage_confirmed_at:.0f} s"
        if inc.outage_confirmed_at
        else "waiting",
    )


def _duration(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def exit_code(inc: Incident) -> int:
    """0 done (resolved/closed/running on the standby), 3 waiting for an operator."""
    return 0 if inc.phase in (Phase.RESOLVED, Phase.CLOSED, Phase.RUNNING_ON_STANDBY) else 3
