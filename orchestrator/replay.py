"""The incident, by replay: journal events folded into an ``Incident`` (its state is never stored).

No I/O, no clock, no Ansible. ``apply`` is where each event kind moves the procedure; the phases
and the failover's steps are named here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from orchestrator.i18n import N_
from orchestrator.triage import ServerState, Verdict, classify_from_data, server_state


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


@dataclass(frozen=True)
class Policy:
    repair_window_s: int = 3600
    failover: str = "approve"  # approve | auto
    backoff_first_s: int = 15
    backoff_max_s: int = 300

    def backoff(self, attempts_done: int) -> int:
        """Seconds to wait after the n-th failed repair attempt: 15, 30, 60, ... capped."""
        return min(self.backoff_first_s * 2 ** max(attempts_done - 1, 0), self.backoff_max_s)


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
        reason=N_("triage: probing every client PC"),
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
            reason=N_("failover to the standby asked for by {by}: {why}").format(
                by=manual.get("by", "?"), why=manual.get("reason", "")
            ),
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
                    reason=N_("verified: every client reaches the SIMRS"),
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
                    reason=N_("every client fails but the server looks healthy: check the network path"),
                )
            return replace(
                inc,
                phase=Phase.SERVER_REPAIR,
                outage_confirmed_at=ts,
                reason=N_("server outage confirmed ({state}): units switch to paper; repairing").format(
                    state=state
                ),
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
                N_("repair attempt {n} made the server healthy: verifying").format(n=inc.repair_attempts + 1)
                if healthy
                else N_("repair attempt {n} did not fix the server").format(n=inc.repair_attempts + 1)
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
            reason=N_("failover approved by {by}: taking over to the standby (SOP 4b)").format(
                by=data.get("by", "?")
            ),
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
                    inc, verified_at=ts, reason=N_("verified: every client reaches the SIMRS on the standby")
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
            reason=N_("failover stopped at {step}: {detail}").format(
                step=step, detail=data.get("detail", "")
            ),
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
            reason=N_("{by} fences the main server again: {why}").format(
                by=data.get("by", "?"), why=data.get("reason", "")
            ),
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
            reason=N_("failover canceled by {by}: {why}; verifying the main server from every PC").format(
                by=data.get("by", "?"), why=data.get("reason", "")
            ),
        )
    if kind == "primary_confirmed_off":
        return replace(inc, primary_confirmed_off=data.get("by", "?"))
    if kind == "failback":
        return replace(inc, failed_back=bool(data.get("ok")) or inc.failed_back)
    if kind == "failback_step" and data.get("step") == "cutover" and data.get("ok"):
        # The service IP is the primary's from here on (the guard's owner), even before the
        # failback's last steps end (`simrs failback` again finishes them).
        return replace(inc, failed_back=True)
    if kind == "on_standby":
        return replace(
            inc, phase=Phase.RUNNING_ON_STANDBY, reason=data.get("reason", "running on the standby")
        )
    if kind == "resolved":
        return replace(inc, phase=Phase.RESOLVED, reason=data.get("reason", "resolved"))
    if kind == "closed":
        return replace(inc, phase=Phase.CLOSED, closed_cause=data.get("cause", ""))
    return inc  # facts kept for the report that do not move the procedure
