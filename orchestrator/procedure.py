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

from dataclasses import dataclass

from orchestrator.i18n import N_
from orchestrator.replay import (  # the procedure's names, for its users
    ACTIVE,
    FAILOVER_STEPS,
    Incident,
    Phase,
    Policy,
    apply,
    replay,
)
from orchestrator.triage import (
    APP_CHECKS,
    Classification,
    ClientFact,
    ServerState,
    Verdict,
    classify,
    classify_from_data,
    server_state,
)

__all__ = [
    "ACTIVE",
    "APP_CHECKS",
    "FAILOVER_STEPS",
    "Action",
    "Classification",
    "ClientFact",
    "Incident",
    "Phase",
    "Policy",
    "ServerState",
    "Verdict",
    "apply",
    "classify",
    "classify_from_data",
    "next_action",
    "replay",
    "server_state",
]

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
        return Action("triage", reason=N_("SOP 1: do the other PCs have the same problem?"))
    if inc.phase == Phase.CLIENT_REPAIR:
        return Action("client_repair", hosts=inc.failing, reason=N_("SOP 2: only these PCs: repair them"))
    if inc.phase == Phase.SERVER_CHECK:
        return Action("server_check", reason=N_("SOP 3: every PC fails: is the SIMRS server online?"))
    if inc.phase == Phase.SERVER_REPAIR:
        return _server_repair_step(inc, now)
    if inc.phase == Phase.FAILOVER_PENDING:
        if inc.policy.failover == "auto":
            return Action("approve", reason=N_("failover policy auto: no approval needed"))
        return Action("operator", reason=N_("approve the failover to the standby server (SOP 4b)"))
    if inc.phase == Phase.FAILOVER:
        return _failover_step(inc)
    if inc.phase == Phase.RUNNING_ON_STANDBY:
        return Action("resolve", reason=N_("the SIMRS runs on the standby server, verified from every PC"))
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
            reason=N_("SOP 4c: tell the units to use the manual (paper) system (beside the failover)"),
        )
    if inc.failover_blocked:
        step = inc.failover_blocked["step"]
        return Action(
            "operator",
            reason=returned_primary_words(inc)
            if inc.failover_blocked.get("returned")
            else N_(
                "failover stopped at {step}: {detail}; fix the cause, then `simrs incident resume`"
            ).format(step=step, detail=inc.failover_blocked.get("detail", "")),
        )
    if not inc.failover_done and inc.standby.get("state") == "ready":
        # Pre-staged: the standby is on, restored and verified. The takeover is one run of every
        # step (each still journaled on its own); what is left after a failure goes step by step.
        return Action(
            "failover_takeover",
            event=",".join(FAILOVER_STEPS),
            reason=N_("SOP 4b on the pre-staged standby: fence, catch up, take over the IP, verify"),
        )
    for step in FAILOVER_STEPS:
        if step not in inc.failover_done:
            return Action(
                "failover_step", event=step, reason=N_("SOP 4b: {what}").format(what=FAILOVER_REASONS[step])
            )
    if "outage_paper_mode" not in inc.notices:
        # Sent beside the steps and not (yet) journaled delivered: finished, or sent again, first.
        return Action(
            "notify",
            event="outage_paper_mode",
            reason=N_("SOP 4c: the paper-mode notice, before the units are told the SIMRS is back"),
        )
    if "restored_on_standby" not in inc.notices:
        return Action(
            "notify",
            event="restored_on_standby",
            reason=N_("tell the units the SIMRS is normal again (standby)"),
        )
    return Action("on_standby", reason=N_("the SIMRS runs on the standby server, verified from every PC"))


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
    "fence": N_("make sure the main server cannot serve (never two owners of the service IP)"),
    "power_on": N_("switch on the standby server"),
    "restore": N_("copy the newest good backup from the external disk and restore it"),
    "ip_takeover": N_("give the standby the main server's IP (duplicate check first, gratuitous ARP after)"),
    "start": N_("start the SIMRS on the standby"),
    "verify": N_("try the SIMRS from the admin machine and from every PC"),
}


def _server_repair_step(inc: Incident, now: float) -> Action:  # noqa: PLR0911
    if "outage_paper_mode" not in inc.notices:
        return Action(
            "notify",
            event="outage_paper_mode",
            reason=N_("SOP 4c: tell the units to use the manual (paper) system"),
        )
    if inc.server_repaired and not inc.verified_after_repair:
        return Action("verify", reason=N_("the server looks healthy: verify from every client PC"))
    if inc.server_repaired and inc.verified_after_repair:
        if "restored" not in inc.notices:
            return Action("notify", event="restored", reason=N_("tell the units the SIMRS is normal again"))
        if (inc.standby or set(inc.failover_done) & {"power_on", "restore", "start"}) and not (
            inc.standby_cold_tried
        ):
            return Action(
                "standby_cold", reason=N_("the main server is back: return the pre-staged standby to cold")
            )
        return Action("resolve", reason=N_("server repaired and verified from every client PC"))
    deadline = inc.deadline or now
    if inc.failover_now:
        who = inc.failover_now.get("by", "an operator")
        return Action(
            "pending_failover",
            reason=N_("repair window ended early by {who}: {why}").format(
                who=who, why=inc.failover_now.get("reason", "")
            ),
        )
    if now >= deadline:
        return Action(
            "pending_failover",
            reason=f"not repaired within {_duration(inc.policy.repair_window_s)} "
            f"({inc.repair_attempts} attempts): take over to the standby server (SOP 4b)",
        )
    if inc.last_repair_at is None:
        return Action("server_repair", reason=N_("SOP 4a: repair the SIMRS server (attempt 1)"))
    next_at = inc.last_repair_at + inc.policy.backoff(inc.repair_attempts)
    if now >= next_at:
        return Action(
            "server_repair", reason=N_("SOP 4a: repair attempt {n}").format(n=inc.repair_attempts + 1)
        )
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
