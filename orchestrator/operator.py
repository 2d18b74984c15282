"""The operator's word on an incident: open one, approve, end the repair window early, fence again,
cancel a failover that has not moved the service IP, confirm the main server is off, close.

Each is checked against the incident as the journal tells it and journaled as one event; the
process driving the incident reads it on its next turn (no lock, except where a step runs).
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator import incidents
from orchestrator.ansible import Gateway, PlayResult
from orchestrator.contract import server_check_facts
from orchestrator.errors import InputError, InventoryError, JournalError
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from orchestrator.procedure import Incident, Phase


class OperatorWord:
    """The operator's commands on incidents (a part of ``Engine``)."""

    journal: Journal
    gateway: Gateway
    hospital: Hospital
    now: Callable[[], float]

    def incident(self, incident_id: str) -> Incident:
        return incidents.incident(self.journal, incident_id)

    def active_incident(self) -> Incident | None:
        return incidents.active_incident(self.journal)

    _run: Callable[..., PlayResult]  # the engine's: run a playbook, its result checked

    def open(
        self,
        reporter: str,
        note: str = "",
        window_s: int | None = None,
        failover: str | None = None,
        prestage: bool | None = None,
    ) -> str:
        if reporter not in self.hospital.clients:
            shown = ", ".join(self.hospital.clients[:10]) + (
                " ..." if len(self.hospital.clients) > 10 else ""
            )
            raise InputError(f"{reporter!r} is not a client PC in the inventory (simrs_clients: {shown})")
        opened = {
            "reporter": reporter,
            "note": note,
            "window_s": window_s if window_s is not None else self.hospital.repair_window_minutes * 60,
            "failover": failover or self.hospital.failover_policy,
            "prestage": self.hospital.prestage
            if prestage is None
            else (prestage and bool(self.hospital.standby)),
        }
        return incidents.new_incident(
            self.journal,
            self.now,
            "opening an incident",
            lambda active: (
                f"incident {active.id} (reported by {active.reporter}) is still open, in "
                f"{active.phase}: resume it with `simrs incident resume {active.id}` or close it "
                f"with `simrs incident close {active.id} --cause TEXT`"
            ),
            [("opened", opened)],
        )

    def open_failover(self, by: str, reason: str) -> str:
        """SOP 4b on its own (`simrs failover`): a person decided the main server is lost. Journaled as
        an incident that starts approved, at the failover (the units are told to use paper first)."""
        if self.hospital.standby is None:
            raise InventoryError("the inventory has no simrs_standby host: there is nothing to fail over to")
        if not reason.strip():
            raise InputError(
                "say why the SIMRS moves to the standby: --reason TEXT (it goes into the report)"
            )
        return incidents.new_incident(
            self.journal,
            self.now,
            "opening a failover",
            lambda active: (
                f"incident {active.id} is open, in {active.phase}: use `simrs incident "
                f"failover-now {active.id} --reason ...` (repair window) or "
                f"`simrs incident approve {active.id}` instead"
            ),
            [
                (
                    "opened",
                    {
                        "reporter": f"operator:{by}",
                        "note": reason,
                        "window_s": 0,
                        "failover": "approve",
                        "manual_failover": {"by": by, "reason": reason},
                    },
                ),
                ("approved", {"by": by}),
            ],
        )

    # -- operator facts (no lock: the driving process reads them on its next turn) --

    def failover_now(self, incident_id: str, by: str, reason: str, fence_again: bool = False) -> Incident:
        inc = self.incident(incident_id)
        if fence_again:
            if inc.phase != Phase.FAILOVER or "ip_takeover" in inc.failover_done:
                raise InputError(
                    f"incident {incident_id} is in {inc.phase}"
                    + (" and the standby holds the service IP" if "ip_takeover" in inc.failover_done else "")
                    + ": --fence-again is for a failover stopped before the service IP moved"
                )
            if not reason.strip():
                raise InputError("say why the main server is fenced again: --reason TEXT")
            self.journal.append(incident_id, "fence_again", {"by": by, "reason": reason}, ts=self.now())
            return self.incident(incident_id)
        if inc.phase != Phase.SERVER_REPAIR:
            raise InputError(
                f"incident {incident_id} is in {inc.phase}, not in the repair window: "
                "failover-now only ends a running repair window"
            )
        if not reason.strip():
            raise InputError("say why the repair window ends early: --reason TEXT")
        self.journal.append(incident_id, "failover_now", {"by": by, "reason": reason}, ts=self.now())
        return self.incident(incident_id)

    def cancel_failover(self, incident_id: str, by: str, reason: str) -> Incident:
        """The main server came back healthy before the service IP moved: the units go back to it
        (verified from every PC on resume) and the standby returns to cold. Refused unless the main
        server answers and serves now (read before anything is journaled)."""
        inc = self.incident(incident_id)
        if inc.phase not in (Phase.FAILOVER_PENDING, Phase.FAILOVER) or "ip_takeover" in inc.failover_done:
            raise InputError(
                f"incident {incident_id} is in {inc.phase}"
                + (" and the standby holds the service IP" if "ip_takeover" in inc.failover_done else "")
                + ": only a failover that has not moved the service IP can be canceled "
                "(after it, `simrs failback`)"
            )
        if not reason.strip():
            raise InputError("say why the failover is canceled: --reason TEXT (it goes into the report)")
        refusal = JournalError(f"incident {incident_id} is being driven by another process: stop it first")
        with self.journal.lock_or_refuse(incident_id, "canceling the failover", refusal):
            check = server_check_facts(self._run("server_check"), self.hospital.primary)
            if not check.get("reachable") or check.get("problems"):
                raise InputError(
                    f"the main server {self.hospital.primary} is not healthy now "
                    f"({', '.join(check.get('problems') or ['unreachable'])}): the failover is not "
                    f"canceled; fence it again instead: `simrs incident failover-now {incident_id} "
                    "--fence-again --reason TEXT`"
                )
            self.journal.append(
                incident_id, "failover_canceled", {"by": by, "reason": reason, "server": check}, ts=self.now()
            )
        return self.incident(incident_id)

    def approve(self, incident_id: str, by: str) -> Incident:
        inc = self.incident(incident_id)
        if inc.phase != Phase.FAILOVER_PENDING:
            raise InputError(
                f"incident {incident_id} is in {inc.phase}: "
                "only an incident in FAILOVER_PENDING can be approved"
            )
        self.journal.append(incident_id, "approved", {"by": by}, ts=self.now())
        return self.incident(incident_id)

    def retry_blocked(self, incident_id: str, by: str) -> None:
        """`resume` after a person fixed what stopped a failover step: try that step again."""
        inc = self.incident(incident_id)
        if inc.failover_blocked:
            self.journal.append(incident_id, "retry", {"by": by, **inc.failover_blocked}, ts=self.now())

    def confirm_primary_off(self, incident_id: str, by: str) -> None:
        """A person saw that the main server is off (or pulled its network cable): the fence may
        rely on that word where the power driver cannot see the power (manual, Wake-on-LAN)."""
        inc = self.incident(incident_id)
        if not inc.active:
            raise InputError(f"incident {incident_id} is {inc.phase}: nothing to confirm")
        self.journal.append(incident_id, "primary_confirmed_off", {"by": by}, ts=self.now())

    def close(self, incident_id: str, cause: str, by: str) -> Incident:
        inc = self.incident(incident_id)
        if inc.phase == Phase.CLOSED:
            raise InputError(f"incident {incident_id} is already closed")
        if not cause.strip():
            raise InputError("say what caused the downtime: --cause TEXT (it goes into the report)")
        with self.journal.lock(incident_id, "closing"):
            self.journal.append(
                incident_id, "closed", {"cause": cause, "by": by, "phase_at_close": inc.phase}, ts=self.now()
            )
        return self.incident(incident_id)
