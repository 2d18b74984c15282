"""The engine: runs the SOP's next action, journals facts, repeats until a person is needed.

Loop: replay the journal -> ``procedure.next_action`` -> journal ``action_started`` -> run the
playbook through the gateway -> turn its published data into a fact -> journal the fact.
A crash or Ctrl-C between the two journal writes just means the action runs again on
``resume``: every action here is safe to repeat (probes, bounded repairs, notices).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from orchestrator import backups, interrupt, procedure, service_ip
from orchestrator.ansible import Gateway, Job, PlayResult
from orchestrator.errors import SimrsError
from orchestrator.inventory import Hospital
from orchestrator.journal import DRILL_LOCK, Journal, JournalError
from orchestrator.procedure import Action, Incident, Phase

WAIT_SLICE_S = 1.0
# Actions that use the standby: they wait while a DR drill has it.
STANDBY_ACTIONS = ("failover_step", "failover_takeover", "standby_cold")
FAILOVER_STEP_TIMEOUT_S = 1800
# How long a resume waits for what is left of a killed orchestrator's run before it ends it.
ORPHAN_WAIT_S = 180  # a restore of a large database is the longest step


class ConfigError(JournalError):
    """A playbook could not produce facts (bad inventory, runner error): stop, say what to fix."""


class UI(Protocol):
    def step(self, inc: Incident, action: Action) -> None: ...
    def event(self, kind: str, host: str, task: str) -> None: ...
    def fact(self, kind: str, data: dict[str, Any]) -> None: ...
    def waiting(self, inc: Incident, now: float, until: float) -> None: ...


class QuietUI:
    def step(self, inc: Incident, action: Action) -> None:
        return

    def event(self, kind: str, host: str, task: str) -> None:
        return

    def fact(self, kind: str, data: dict[str, Any]) -> None:
        return

    def waiting(self, inc: Incident, now: float, until: float) -> None:
        return


# ---- facts from playbook results (the playbook-to-Python contract) ------------------------------


def triage_facts(result: PlayResult, clients: tuple[str, ...]) -> dict[str, Any]:
    published = result.data
    out: dict[str, Any] = {}
    for host in clients:
        outcome = result.hosts.get(host)
        if host in published:
            p = published[host]
            failed = p.get("failed_check")
            detail = ((p.get("checks") or {}).get(failed) or {}).get("detail", "") if failed else ""
            out[host] = {
                "ok": bool(p.get("ok")),
                "failed_check": failed,
                "detail": str(detail)[:200],
                "served_by": p.get("served_by"),
            }
        elif outcome is not None and outcome.unreachable:
            out[host] = {
                "ok": False,
                "unreachable": True,
                "failed_check": "unreachable",
                "detail": outcome.message,
            }
        else:
            why = outcome.message if outcome else (result.explanation or "no result")
            out[host] = {"ok": False, "failed_check": "probe", "detail": why}
    return {"clients": out, "admin": admin_facts(published.get("localhost"), result)}


def admin_facts(view: dict[str, Any] | None, result: PlayResult) -> dict[str, Any]:
    """The admin machine's own check of the SIMRS (server_probe, view admin)."""
    if not view:
        return {
            "ok": False,
            "failed_check": "no_result",
            "detail": result.explanation or "no admin check result",
        }
    problems = list(view.get("problems", []))
    failed = next((name for name, c in (view.get("checks") or {}).items() if not c.get("ok")), None)
    detail = ((view.get("checks") or {}).get(failed) or {}).get("detail", "") if failed else ""
    return {
        "ok": bool(view.get("healthy")),
        "failed_check": problems[0] if problems else failed,
        "detail": str(detail)[:200],
        "served_by": view.get("served_by"),
    }


def server_check_facts(result: PlayResult, primary: str) -> dict[str, Any]:
    published = result.data.get(primary, {})
    outcome = result.hosts.get(primary)
    reachable = bool(published.get("reachable", bool(published))) and not (outcome and outcome.unreachable)
    problems = list(published.get("problems", []))
    if not reachable and "host_unreachable" not in problems:
        problems.insert(0, "host_unreachable")
    admin = result.data.get("localhost", {})
    return {
        "reachable": reachable,
        "problems": problems,
        "admin": admin,
        "server": {k: v for k, v in published.items() if k not in ("problems",)},
    }


def repair_facts(result: PlayResult, primary: str) -> dict[str, Any]:
    published = result.data.get(primary, {})
    outcome = result.hosts.get(primary)
    if outcome and outcome.unreachable:
        # Ansible's own words for a dead connection are long and misleading ("Failed to create
        # temporary directory..."): keep the journal's line short, the run's artifacts keep the rest.
        return {
            "healthy": False,
            "detail": f"{primary} does not answer (off, hung or cut off): {outcome.message[:80]}",
            "actions": [],
        }
    return {
        "healthy": bool(published.get("healthy")),
        "actions": published.get("actions", []),
        "bytes_freed": published.get("bytes_freed", 0),
        "detail": "" if published else (result.explanation or "no result published"),
    }


def client_repair_facts(result: PlayResult, hosts: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for host in hosts:
        p = result.data.get(host)
        outcome = result.hosts.get(host)
        if p is not None:
            out[host] = {
                "ok": bool(p.get("ok")),
                "actions": p.get("actions", []),
                "detail": p.get("detail") or p.get("failed_check") or "",
            }
        else:
            why = outcome.message if outcome else (result.explanation or "no result")
            out[host] = {
                "ok": False,
                "detail": ("unreachable: " if outcome and outcome.unreachable else "") + why,
            }
    return {"hosts": out}


def failover_step_facts(step: str, result: PlayResult) -> dict[str, Any]:
    """One failover step's outcome: ok only when the playbook succeeded and every host that
    published a result says ok. The published data is kept for the report and the RPO."""
    published = {h: d for h, d in result.data.items() if isinstance(d, dict)}
    unreachable = result.unreachable()
    failed = [d.get("detail") or f"{h}: not ok" for h, d in published.items() if d.get("ok") is False]
    ok = result.ok and not failed and bool(published)
    if ok:
        detail = "; ".join(str(d.get("detail", "")) for d in published.values() if d.get("detail"))
    elif unreachable:
        detail = f"unreachable: {', '.join(unreachable)} ({result.explanation})"
    else:
        detail = "; ".join(str(f) for f in failed) or result.explanation or "no result published"
    return {"step": step, "ok": ok, "detail": detail[:500], "hosts": published}


def prestage_facts(result: PlayResult, standby: str) -> dict[str, Any]:
    """The standby's readiness after playbooks/prestage.yml: restored, started, verified on its
    own address (never the service IP)."""
    mine = result.data.get(standby) or {}
    admin = result.data.get("localhost") or {}
    restore = mine.get("restore") or {}
    ok = result.ok and bool(admin.get("ok")) and not mine.get("holds_service_ip")
    if ok:
        detail = f"backup {restore.get('set')} restored and verified on {admin.get('address')}"
    elif result.unreachable():
        detail = f"unreachable: {', '.join(result.unreachable())} ({result.explanation})"
    else:
        failed = "; ".join(f"{o.name}: {o.message}" for o in result.hosts.values() if not o.ok)
        detail = (
            admin.get("detail")
            or restore.get("detail")
            or result.explanation
            or failed
            or "no result published"
        )
    return {
        "ok": ok,
        "detail": str(detail)[:500],
        "set": restore.get("set"),
        "created_at": restore.get("created_at"),
        "age_seconds": restore.get("age_seconds"),
        "skipped_bad": restore.get("skipped_bad", []),
        "served_by": admin.get("served_by"),
        "address": admin.get("address"),
        "seconds": result.seconds,
    }


def standby_cold_facts(result: PlayResult, standby: str) -> dict[str, Any]:
    mine = result.data.get(standby) or {}
    ok = result.ok and mine.get("state_after") == "off"
    detail = mine.get("detail") or result.explanation or "no result published"
    return {"ok": ok, "detail": str(detail)[:300], "state_after": mine.get("state_after")}


def guard_facts(result: PlayResult) -> dict[str, Any]:
    """Who answers for the service IP, and what the guard did about it (playbooks/ip_guard.yml)."""
    seen = result.data.get("localhost") or {}
    servers = {h: d for h, d in result.data.items() if h != "localhost" and isinstance(d, dict)}
    return {
        "ok": result.ok and bool(seen.get("ok")),
        "owners": seen.get("owners", []),
        "macs": seen.get("macs", []),
        "unknown_macs": seen.get("unknown_macs", []),
        "service_ip": seen.get("service_ip"),
        "expected": seen.get("expected"),
        "servers": servers,
        "done": [a for d in servers.values() for a in d.get("done", [])],
        "detail": str(seen.get("detail") or result.explanation)[:500],
    }


def takeover_facts(result: PlayResult, steps: TakeoverSteps | None = None) -> list[dict[str, Any]]:
    """Each step's fact from one run of playbooks/failover.yml (the pre-staged takeover), in order,
    up to the step that failed. A step's playbook publishes only once its roles succeeded (verify
    publishes, then fails the hosts whose check did not pass). With the run's live clock, each fact
    carries its step's seconds, and verify the first and the last client verified."""
    facts = _takeover_facts(result)
    if steps is None:
        return facts
    for fact in facts:
        if fact["step"] in steps.ended:
            fact["seconds"] = steps.seconds(fact["step"])
        if fact["step"] == "verify":
            fact["clients_verified"] = steps.clients_verified(fact["hosts"])
    return facts


def _takeover_facts(result: PlayResult) -> list[dict[str, Any]]:
    facts = []
    for step in procedure.FAILOVER_STEPS:
        published = result.published.get(f"simrs_failover_{step}")
        if not isinstance(published, dict) or not published:
            if not result.ok:  # this step did not finish: it is the one that stopped the run
                facts.append(failover_step_facts(step, replace(result, data={})))
            break
        last = step == procedure.FAILOVER_STEPS[-1]
        status = result.status if last else "successful"
        facts.append(failover_step_facts(step, replace(result, status=status, data=published)))
        if not facts[-1]["ok"]:
            break
    return facts


# The takeover's steps end when failover.yml publishes their result: the task that publishes is
# each step's milestone, seen live in the run's events (the facts themselves come at its end).
TAKEOVER_MILESTONES = {
    "Publish how the primary was fenced": "fence",
    "Publish the standby's power state": "power_on",
    "Publish what was restored": "restore",
    "Publish the service IP's state": "ip_takeover",
    "Publish the SIMRS service's state": "start",
    "Publish each machine's verdict": "verify",
}
# What each step waits for in failover.yml (the fence runs beside the standby's own steps; the
# service IP moves only after both): a step's duration runs from the latest end among these (the
# run's start for the first ones).
TAKEOVER_AFTER: dict[str, tuple[str, ...]] = {
    "fence": (),
    "power_on": (),
    "restore": ("power_on",),
    "start": ("restore",),
    "ip_takeover": ("fence", "start"),
    "verify": ("ip_takeover",),
}


class TakeoverSteps:
    """The live clock of one takeover run: each step's end as its milestone task finishes, so every
    step is journaled with its own duration when it ends, not when the whole run ends. verify ends
    when the admin machine and every client published their verdict; the first and the last
    client's times are kept (the first PC that works again, and the last)."""

    def __init__(
        self, clients: tuple[str, ...], now: Callable[[], float], on_step: Callable[..., None]
    ) -> None:
        self.clients = clients
        self.now = now
        self.on_step = on_step
        self.began = now()
        self.ended: dict[str, float] = {}
        self.verified: dict[str, float] = {}  # host (localhost: the admin machine) -> when it published

    def progress(self, kind: str, host: str, task: str) -> None:
        step = TAKEOVER_MILESTONES.get(task)
        if kind != "runner_on_ok" or step is None or step in self.ended:
            return
        at = self.now()
        if step == "verify":
            self.verified.setdefault(host, at)
            if not {"localhost", *self.clients} <= set(self.verified):
                return
        self.ended[step] = at
        self.on_step(step, self.seconds(step), at)

    def seconds(self, step: str) -> float:
        after = [self.ended[s] for s in TAKEOVER_AFTER.get(step, ()) if s in self.ended]
        since = max(after, default=self.began)
        return round(self.ended[step] - since, 2)

    def clients_verified(self, published: dict[str, Any]) -> dict[str, Any]:
        """The first and the last client whose verdict was ok, in seconds from the run's start."""
        ok = sorted(
            (at, h)
            for h, at in self.verified.items()
            if h in self.clients and (published.get(h) or {}).get("ok")
        )
        if not ok:
            return {}
        return {
            "first": {"host": ok[0][1], "seconds": round(ok[0][0] - self.began, 2)},
            "last": {"host": ok[-1][1], "seconds": round(ok[-1][0] - self.began, 2)},
            "ok": len(ok),
            "of": len(self.clients),
        }


def failover_plan(result: PlayResult, h: Hospital) -> dict[str, Any]:
    """The dry run's plan from failover.yml in check mode (each role only measures there)."""
    pub = result.published
    mine = {step: (pub.get(f"simrs_failover_{step}") or {}) for step in procedure.FAILOVER_STEPS}
    fence = mine["fence"].get(h.primary) or {}
    power = mine["power_on"].get(h.standby or "") or {}
    restore = mine["restore"].get(h.standby or "") or {}
    ipt = mine["ip_takeover"].get(h.standby or "") or {}
    notes: list[str] = []
    checks: dict[str, dict[str, Any] | None] = {
        # Published = its preflight passed and it measured how it would fence (a primary that
        # needs a person's word stops the run instead, with the reason).
        "fence": {"ok": True, "detail": fence.get("detail", "")}
        if fence
        else {"ok": False, "detail": result.explanation or "the fence could not be checked"},
        "power_on": {"ok": bool(power), "detail": power.get("detail", "")} if power else None,
        "restore": {"ok": bool(restore.get("set")), "detail": restore.get("detail", "")} if restore else None,
        "ip_takeover": {"ok": bool((ipt.get("dad") or {}).get("free", True)), "detail": ipt.get("detail", "")}
        if ipt
        else None,
        "start": None,
        "verify": None,
    }
    standby_off = power.get("state_before") == "off"
    if standby_off:
        notes.append(
            f"{h.standby} is off: check mode does not switch it on, so the backup to restore, the IP "
            "takeover and the start are checked only in the real run (the restore picks the newest set "
            "whose checksums match)"
        )
    backup = None
    if restore.get("set"):
        age = restore.get("age_seconds")
        backup = {
            "set": restore.get("set"),
            "created_at": restore.get("created_at"),
            "age_seconds": age,
            "age": f"{int(age) // 3600} h {int(age) % 3600 // 60} min"
            if isinstance(age, int | float)
            else "?",
            "skipped_bad": restore.get("skipped_bad", []),
        }
    steps = [
        {"step": step, "what": procedure.FAILOVER_REASONS[step], "check": checks[step]}
        for step in procedure.FAILOVER_STEPS
    ]
    ready = all(c["ok"] for c in checks.values() if c is not None) and bool(fence)
    return {
        "primary": h.primary,
        "standby": h.standby,
        "clients": list(h.clients),
        "steps": steps,
        "backup": backup,
        "notes": notes,
        "ready": ready,
    }


def failback_facts(result: PlayResult, h: Hospital) -> dict[str, Any]:
    verify = (result.data.get("localhost") or {}).get("verify") or {}
    ok = result.ok and bool(verify.get("ok"))
    if ok:
        detail = f"the SIMRS runs on {h.primary} again, verified from the admin machine"
    else:
        failed = "; ".join(f"{o.name}: {o.message}" for o in result.hosts.values() if not o.ok)
        detail = verify.get("detail") or failed or result.explanation or "no result published"
    return {
        "ok": ok,
        "detail": str(detail)[:500],
        "served_by": verify.get("served_by"),
        "hosts": {k: v for k, v in result.data.items() if k != "localhost"},
    }


def failover_extravars(step: str, inc: Incident) -> dict[str, Any]:
    """What a failover step needs from the journal: the earliest evidence of the outage for the
    RPO (the report that opened the incident: the triage's failed probes and the confirmation come
    after it), so the RPO is an upper bound as close to the loss as the journal can tell; a
    person's word that the primary is off (for a primary whose driver cannot see its power)."""
    out: dict[str, Any] = {}
    evidence = inc.opened_at or inc.outage_confirmed_at
    if step in ("restore", "all") and evidence:
        out["restore_outage_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(evidence))
    if step in ("fence", "all") and inc.primary_confirmed_off:
        out["fence_operator_confirmed_off"] = True
    return out


def notice_facts(result: PlayResult, event: str) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for host, p in result.data.items():
        for name, state in (p.get("channels") or {}).items():
            key = name if host == "localhost" else f"{name}:{host}"
            channels[key] = {"ok": bool(state.get("ok")), "detail": str(state.get("detail", ""))[:200]}
    sent = any(c["ok"] for c in channels.values()) or not channels
    return {"event": event, "sent": sent, "channels": channels}


# ---- the engine ------------------------------------------------------------------------------


class Engine:
    def __init__(
        self,
        journal: Journal,
        gateway: Gateway,
        hospital: Hospital,
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = interrupt.sleep,
        ui: UI | None = None,
    ) -> None:
        self.journal = journal
        self.gateway = gateway
        self.hospital = hospital
        self.now = now
        self.sleep = sleep
        self.ui = ui or QuietUI()
        self._prestage_job: Job | None = None
        self._notice_job: Job | None = None  # the paper-mode notice, sent beside the failover

    # -- incidents --

    def active_incident(self) -> Incident | None:
        for incident_id in reversed(self.journal.incidents()):
            inc = self.incident(incident_id)
            if inc.active:
                return inc
        return None

    def incident(self, incident_id: str) -> Incident:
        events = self.journal.events(incident_id)
        if not events:
            raise JournalError(f"no incident {incident_id}; `simrs incident status` lists the active one")
        return procedure.replay(incident_id, events)

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
            raise JournalError(f"{reporter!r} is not a client PC in the inventory (simrs_clients: {shown})")
        opened = {
            "reporter": reporter,
            "note": note,
            "window_s": window_s if window_s is not None else self.hospital.repair_window_minutes * 60,
            "failover": failover or self.hospital.failover_policy,
            "prestage": self.hospital.prestage
            if prestage is None
            else (prestage and bool(self.hospital.standby)),
        }
        return self._new_incident(
            "opening an incident",
            lambda active: (
                f"incident {active.id} (reported by {active.reporter}) is still open, in "
                f"{active.phase}: resume it with `simrs incident resume {active.id}` or close it "
                f"with `simrs incident close {active.id} --cause TEXT`"
            ),
            [("opened", opened)],
        )

    def _new_incident(
        self, purpose: str, refusal: Callable[[Incident], str], events: list[tuple[str, dict[str, Any]]]
    ) -> str:
        """Checked, numbered and written while holding the whole journal: two operators (or a timer)
        opening at once get one incident and a clear refusal, never two incidents or one id twice."""
        self.active_incident()  # a damaged journal stops here, before anything is created
        with self.journal.exclusive(purpose):
            active = self.active_incident()
            if active is not None:
                raise JournalError(refusal(active))
            now = self.now()
            incident_id = self.journal.new_incident_id(now)
            for kind, data in events:
                self.journal.append(incident_id, kind, data, ts=now)
        return incident_id

    def open_failover(self, by: str, reason: str) -> str:
        """SOP 4b on its own (`simrs failover`): a person decided the main server is lost. Journaled as
        an incident that starts approved, at the failover (the units are told to use paper first)."""
        if self.hospital.standby is None:
            raise JournalError("the inventory has no simrs_standby host: there is nothing to fail over to")
        if not reason.strip():
            raise JournalError(
                "say why the SIMRS moves to the standby: --reason TEXT (it goes into the report)"
            )
        return self._new_incident(
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

    def drive(self, incident_id: str) -> Incident:
        """Run the procedure until it is done or needs a person. Holds the incident's lock.

        Pre-staging the standby runs in the background, alongside the repair attempts; it is
        finished (or, on an error or Ctrl-C, cancelled) before this returns."""
        with self.journal.lock(incident_id, "driving the SOP"):
            self._wait_for_earlier_runs(incident_id)
            self._runs_journaled_in(incident_id)
            try:
                with interrupt.cooperating():
                    return self._drive(incident_id)
            except interrupt.Interrupted as exc:
                raise self._interrupted(incident_id, exc) from None
            finally:
                if self._prestage_job is not None:  # an error: stop it, it is rerun on resume
                    self._prestage_job.cancel()
                    self._prestage_job = None
                if self._notice_job is not None:  # an error: sent again after the steps on resume
                    self._notice_job.cancel()
                    self._notice_job = None
                self._runs_journaled_in(None)

    # -- runs that outlive a process, and a clean stop --

    def _runs_journaled_in(self, incident_id: str | None) -> None:
        """Every ansible-playbook run's pid and start time go into the incident (and the gateway's
        live-run registry), so that whoever drives it next never runs a step beside it."""
        if not hasattr(self.gateway, "on_run"):
            return
        self.gateway.tag = incident_id  # type: ignore[attr-defined]

        def journal_run(kind: str, data: dict[str, Any]) -> None:
            self.journal.append(incident_id or "", kind, data)

        self.gateway.on_run = journal_run if incident_id else None  # type: ignore[attr-defined]

    def earlier_runs(self, incident_id: str) -> list[dict[str, Any]]:
        live = getattr(self.gateway, "live_runs", None)
        return live(incident_id) if live is not None else []

    def _wait_for_earlier_runs(self, incident_id: str) -> None:
        """An earlier run of this incident still alive (its orchestrator was killed): wait for it
        to end, saying so every 15 s. It ends by itself (the boundary callback ends a run whose
        orchestrator died; its workers finish the task in flight); what is still there after
        ORPHAN_WAIT_S is ended (its step runs again now: every step is safe to repeat)."""
        deadline = time.monotonic() + ORPHAN_WAIT_S
        said = 0.0
        while runs := self.earlier_runs(incident_id):
            names = ", ".join(f"{r['playbook']} (pid {r['pid']}, since {r.get('since', '?')})" for r in runs)
            if time.monotonic() > deadline:
                end = getattr(self.gateway, "end_run", None)
                for run in runs:
                    if end is not None:
                        end(run)
                self.journal.append(
                    incident_id, "ended_earlier_run", {"runs": runs, "after_s": ORPHAN_WAIT_S}, ts=self.now()
                )
                continue
            if time.monotonic() - said >= 15:
                reason = f"an earlier run of this incident is still going: {names}; waiting for it to end"
                self.ui.step(self.incident(incident_id), procedure.Action("wait", reason=reason))
                if said == 0.0:
                    self.journal.append(incident_id, "waited_for_earlier_run", {"runs": runs}, ts=self.now())
                said = time.monotonic()
            interrupt.sleep(1.0)

    def _interrupted(self, incident_id: str, exc: interrupt.Interrupted) -> interrupt.Interrupted:
        """Ctrl-C or SIGTERM: stop the background run too, journal where the incident stopped and
        what may be half done, read who holds the service IP (bounded), and say how to go on."""
        if self._notice_job is not None:  # a notice is short: let it end (cut on a second Ctrl-C)
            if interrupt.forced():
                self._notice_job.cancel()
                self._notice_job = None
            else:
                with contextlib.suppress(interrupt.Interrupted):
                    self._finish_notice(incident_id)
        job, self._prestage_job = self._prestage_job, None
        if job is not None:
            # The pre-staging parks at its next task like any run (a second Ctrl-C kills it): a
            # restore is never cut in the middle of a step on a first Ctrl-C.
            if interrupt.forced():
                job.cancel()
            with contextlib.suppress(interrupt.Interrupted):
                job.wait()
        inc = self.incident(incident_id)
        half = (
            f"{inc.pending_action} was running and runs again on resume (every step is safe to repeat)"
            if inc.pending_action
            else "nothing: it stopped between two steps"
        )
        state = self._state_for_the_operator()
        facts = {
            "signal": interrupt.name(),
            "where": str(exc),
            "phase": str(inc.phase),
            "step": inc.pending_action,
            "half_done": half,
            "failover_done": list(inc.failover_done),
            "standby": inc.standby.get("state"),
            "hosts": state,
        }
        self.journal.append(incident_id, "interrupted", facts, ts=self.now())
        self.ui.fact("interrupted", facts)
        holders = [h for h, v in state.items() if isinstance(v, dict) and v.get("holds_service_ip")]
        seen = (
            f"the service IP is on {', '.join(holders) or 'no server'}; "
            f"the standby is {self._standby_words(state)}"
            if "error" not in state
            else str(state["error"])
        )
        return interrupt.Interrupted(
            f"{exc} (incident {incident_id}, {inc.phase}); may be half done: {half}; {seen}. "
            f"Continue with `simrs incident resume {incident_id}`",
            exc.signum,
        )

    def _standby_words(self, state: dict[str, Any]) -> str:
        mine = state.get(self.hospital.standby or "") or {}
        if not mine.get("answers"):
            return "off or silent"
        return "on, SIMRS " + ("running" if mine.get("simrs_running") else "stopped")

    def _state_for_the_operator(self) -> dict[str, Any]:
        """Who holds the service IP and whether the standby is on, read from the servers in what is
        left of about 10 s after the signal (nothing after a second Ctrl-C)."""
        if interrupt.forced():
            return {"error": "not read (forced stop): `simrs incident resume` reads the hosts first"}
        budget = int(8.5 - interrupt.waited())
        if budget < 3:
            return {"error": "not read in time after the stop: `simrs incident resume` reads the hosts first"}
        h = self.hospital
        hosts = [x for x in (h.primary, h.standby, "localhost") if x]
        try:
            result = self.gateway.run(
                "ip_guard",
                limit=hosts,
                extravars={"ip_guard_owner": h.primary, "ip_guard_look_only": True},
                timeout=budget,
            )
        except interrupt.Interrupted:
            return {"error": "not read (a second Ctrl-C)"}
        if not result.complete:
            return {"error": f"the servers could not be read within {budget} s ({result.status})"}
        return {
            host: {k: v.get(k) for k in ("answers", "holds_service_ip", "simrs_running", "serving")}
            for host, v in guard_facts(result)["servers"].items()
        }

    def _drive(self, incident_id: str) -> Incident:
        while True:
            interrupt.check("between two steps")
            inc = self.incident(incident_id)
            if self._background(inc):
                continue
            action = procedure.next_action(inc, self.now())
            waits_for_standby = (
                action.finished
                or action.needs_operator
                or action.kind
                in (
                    "failover_step",
                    "standby_cold",
                )
            )
            if self._prestage_job is not None and waits_for_standby:
                # The failover would redo what the pre-staging is doing; a person or the end of the
                # run must not leave it half done either.
                self.ui.step(
                    inc, procedure.Action("wait", reason="finishing the standby's pre-staging first")
                )
                self._finish_prestage(inc.id)
                continue
            if self._notice_job is not None and (action.finished or action.needs_operator):
                self._finish_notice(inc.id)  # the paper-mode notice, sent beside the failover
                continue
            if action.finished or action.needs_operator:
                return inc
            if action.kind in STANDBY_ACTIONS and self._drill_running(inc):
                continue
            if action.kind == "wait":
                self._wait(inc, action.until or self.now())
                continue
            self.ui.step(inc, action)
            self._execute(inc, action)

    def _background(self, inc: Incident) -> bool:
        """Start the standby's pre-staging when it is due, journal it when it finishes. True when
        something was journaled (the incident changed)."""
        if self._notice_job is not None and self._notice_job.done():
            self._finish_notice(inc.id)
            return True
        job = self._prestage_job
        if job is not None and job.done():
            self._finish_prestage(inc.id)
            return True
        if job is None and procedure.prestage_due(inc) and not self._drill_running(inc, quiet=True):
            self.ui.step(
                inc,
                procedure.Action(
                    "prestage",
                    reason="SOP 4b pre-staging: ready the standby (own address) while the repair goes on",
                ),
            )
            self.journal.append(inc.id, "prestage_started", {"standby": self.hospital.standby}, ts=self.now())
            self._prestage_job = self.gateway.start(
                "prestage", progress=self.ui.event, timeout=FAILOVER_STEP_TIMEOUT_S
            )
            return True
        return False

    def _drill_running(self, inc: Incident, quiet: bool = False) -> bool:
        """A DR drill (`simrs drill`) is using the standby: wait for it to power the standby off
        (a few minutes at most) rather than race it for the same machine."""
        holder = self.journal.held_by(DRILL_LOCK)
        if holder is None:
            return False
        if not quiet:
            self.ui.step(inc, procedure.Action("wait", reason=f"a DR drill is using the standby ({holder})"))
        self.sleep(WAIT_SLICE_S * 5)
        return True

    def _finish_notice(self, incident_id: str) -> None:
        job, self._notice_job = self._notice_job, None
        if job is None:
            return
        result = job.wait()
        if result.status in ("timeout", "error", "canceled") or not result.complete:
            return  # no delivery known: it is sent again, in the foreground, after the steps
        self._fact(incident_id, "notice", notice_facts(result, "outage_paper_mode"))

    def _finish_prestage(self, incident_id: str) -> None:
        job, self._prestage_job = self._prestage_job, None
        if job is None:
            return
        result = job.wait()
        bad = result.misconfigured()
        facts = prestage_facts(result, self.hospital.standby or "")
        if bad:  # a role refused (settings, or the situation: no disk): its own words
            facts = {**facts, "ok": False, "detail": f"{bad[0].name}: {bad[0].message}"[:500]}
        self._fact(incident_id, "prestage", facts)

    def _wait(self, inc: Incident, until: float) -> None:
        now = self.now()
        self.ui.waiting(inc, now, until)
        self.sleep(max(0.0, min(WAIT_SLICE_S, until - now)))

    def _execute(self, inc: Incident, action: Action) -> None:  # noqa: PLR0912
        simple = {"pending_failover": "pending_failover", "resolve": "resolved", "on_standby": "on_standby"}
        if action.kind in simple:
            self._fact(inc.id, simple[action.kind], {"reason": action.reason})
            return
        if action.kind == "approve":
            self._fact(inc.id, "approved", {"by": f"policy:{inc.policy.failover}"})
            return
        self.journal.append(
            inc.id,
            "action_started",
            {"action": action.kind, "event": action.event, "hosts": list(action.hosts)},
        )
        h = self.hospital
        if action.kind in ("triage", "verify"):
            self._fact(inc.id, "triage", triage_facts(self._triage(), h.clients))
        elif action.kind == "client_repair":
            result = self._run("client_repair", limit=list(action.hosts))
            self._fact(inc.id, "client_repair", client_repair_facts(result, action.hosts))
        elif action.kind == "server_check":
            result = self._run("server_check")
            self._fact(inc.id, "server_check", server_check_facts(result, h.primary))
        elif action.kind == "server_repair":
            result = self._run("server_repair", timeout=600)
            self._fact(inc.id, "repair_attempt", repair_facts(result, h.primary))
        elif action.kind == "standby_cold":
            result = self._run("standby_cold", timeout=600)
            self._fact(inc.id, "standby_cold", standby_cold_facts(result, h.standby or ""))
        elif action.kind == "failover_takeover":
            # A step's refusal (no disk, the standby holds nothing to restore, someone else answers
            # for the IP) is where the failover stops for a person, not an inventory error.
            # Each step is journaled (takeover_step, with its seconds) the moment it ends; its
            # facts (failover_step) when the run ends.
            def on_step(step: str, seconds: float, at: float) -> None:
                self.journal.append(inc.id, "takeover_step", {"step": step, "seconds": seconds}, ts=at)
                self.ui.fact("takeover_step", {"step": step, "seconds": seconds})

            steps = TakeoverSteps(h.clients, self.now, on_step)

            def progress(kind: str, host: str, task: str) -> None:
                steps.progress(kind, host, task)
                self.ui.event(kind, host, task)

            result = self._check(
                self.gateway.run(
                    "failover",
                    progress=progress,
                    extravars=failover_extravars("all", inc),
                    timeout=FAILOVER_STEP_TIMEOUT_S,
                ),
                refusal_is_a_fact=True,
            )
            for fact in takeover_facts(result, steps):
                self._fact(inc.id, "failover_step", self._name_the_other_owner(fact))
        elif action.kind == "failover_step":
            result = self._run(
                f"failover_{action.event}",
                extravars=failover_extravars(action.event, inc),
                timeout=FAILOVER_STEP_TIMEOUT_S,
                refusal_is_a_fact=True,
            )
            fact = failover_step_facts(action.event, result)
            self._fact(inc.id, "failover_step", self._name_the_other_owner(fact))
        elif action.kind == "notify":
            # The journal's time of the event, so a resumed run writes the very same notice.
            when = inc.outage_confirmed_at if action.event == "outage_paper_mode" else inc.verified_at
            stamp = time.localtime(when if when is not None else self.now())
            extravars = {
                "notify_event": action.event,
                "notify_lang": h.notify_lang,
                "notify_event_time": time.strftime("%Y-%m-%dT%H:%M", stamp),
                "notify_incident": {
                    "id": inc.id,
                    "reporter": inc.reporter,
                    "opened_at": time.strftime("%Y-%m-%d %H:%M", time.localtime(inc.opened_at)),
                },
            }
            if action.event == "outage_paper_mode" and self._notice_job is not None:
                self._finish_notice(inc.id)  # sent beside the steps: its result, not a second send
                return
            if (
                action.event == "outage_paper_mode"
                and inc.phase == procedure.Phase.FAILOVER
                and not inc.failover_done
                and "outage_paper_mode" not in inc.notices_started
                and hasattr(self.gateway, "start")
            ):
                # Issue 17.8: the paper-mode notice never delays the fence or the takeover. It is
                # sent beside the steps and journaled when it ends (or sent again after them).
                self.journal.append(inc.id, "notice_started", {"event": action.event}, ts=self.now())
                self._notice_job = self.gateway.start("notify", progress=self.ui.event, extravars=extravars)
                return
            result = self._run("notify", extravars=extravars)
            self._fact(inc.id, "notice", notice_facts(result, action.event))
        else:
            raise ValueError(f"the engine cannot run action {action.kind!r}")

    def _name_the_other_owner(self, fact: dict[str, Any]) -> dict[str, Any]:
        """A takeover refused because another host answers for the service IP names that host, not
        only its MAC, and says whether it serves (the main server came back: a person decides)."""
        if fact.get("ok") or "answers for the service IP" not in str(fact.get("detail", "")):
            return fact
        h = self.hospital
        try:
            result = self.gateway.run(
                "ip_guard",
                limit=[x for x in (h.primary, h.standby, "localhost") if x],
                extravars={"ip_guard_owner": h.primary, "ip_guard_look_only": True},
                timeout=60,
            )
        except interrupt.Interrupted:
            raise
        except Exception:  # naming the host is a courtesy; the refusal stands without it
            return fact
        servers = guard_facts(result)["servers"]
        detail = str(fact["detail"])
        named = {}
        for host, view in servers.items():
            mac = str(view.get("mac") or "").lower()
            if mac and mac in detail.lower():
                detail = re.sub(re.escape(mac), f"{host} ({mac})", detail, flags=re.IGNORECASE)
                named[host] = view
        other = next((host for host in named if host != h.standby), None)
        if other is None:
            return {**fact, "detail": detail}
        return {
            **fact,
            "detail": detail[:500],
            "returned": other,
            "returned_serving": bool(named[other].get("serving")),
        }

    def _triage(self) -> PlayResult:
        """SOP 1 in one step: the clients' probes and the admin machine's own check run at once
        (playbooks/triage.yml does the same one after the other, for running it by hand)."""
        clients, admin = self.gateway.run_parallel(
            [
                ("client_probe", {"progress": self.ui.event}),
                ("admin_check", {"progress": self.ui.event}),
            ]
        )
        for result in (clients, admin):
            self._check(result)
        return PlayResult(
            "triage",
            clients.status if clients.status != "successful" else admin.status,
            clients.rc or admin.rc,
            {**clients.hosts, **{h: o for h, o in admin.hosts.items() if h == "localhost"}},
            {**clients.data, "localhost": admin.data.get("localhost", {})},
            max(clients.seconds, admin.seconds),
            "; ".join(x for x in (clients.explanation, admin.explanation) if x),
        )

    def _run(self, playbook: str, *, refusal_is_a_fact: bool = False, **kwargs: Any) -> PlayResult:
        result = self.gateway.run(playbook, progress=self.ui.event, **kwargs)
        return self._check(result, refusal_is_a_fact=refusal_is_a_fact)

    def _check(self, result: PlayResult, *, refusal_is_a_fact: bool = False) -> PlayResult:
        playbook = result.playbook
        bad = result.misconfigured()
        if (
            bad
            and refusal_is_a_fact
            and not any(o.failed_action.endswith("validate_argument_spec") for o in bad)
        ):
            bad = []  # a role's preflight refused the situation (e.g. no disk): the step's own fact
        if bad:
            # A role refused its settings: that is the inventory to fix, not a fact about the SIMRS.
            first = bad[0]
            raise ConfigError(
                f"{playbook}: the inventory needs fixing ({first.name}, {first.failed_task}): "
                f"{first.message}. Fix it, then `simrs incident resume`."
            )
        if result.status in ("timeout", "error", "canceled") or not result.complete:
            # Missing results are not facts: a triage without answers must never read as an outage.
            raise ConfigError(f"{playbook} could not run: {result.explanation}", exit_code=1)
        return result

    def _fact(self, incident_id: str, kind: str, data: dict[str, Any]) -> None:
        self.journal.append(incident_id, kind, data, ts=self.now())
        self.ui.fact(kind, data)

    # -- step 4b on its own --

    def failover_plan(self) -> dict[str, Any]:
        """`simrs failover --dry-run`: the hosts, the steps, and what check mode can tell about them
        (how the primary would be fenced, the standby's power, the backup that would be restored and
        its age, whether anyone else answers for the service IP). Changes nothing."""
        h = self.hospital
        if h.standby is None:
            raise JournalError("the inventory has no simrs_standby host: there is nothing to fail over to")
        result = self.gateway.run("failover", check=True, timeout=600, progress=self.ui.event)
        # Check mode stops where a step cannot be measured (a cold standby stays off; the verify
        # expects the standby): only settings the roles reject are errors here.
        bad = [o for o in result.misconfigured() if o.failed_action.endswith("validate_argument_spec")]
        if bad:
            raise ConfigError(f"failover: the inventory needs fixing ({bad[0].name}): {bad[0].message}")
        plan = failover_plan(result, h)
        if plan["backup"] is None:
            plan["backup"] = self._newest_backup_on_disk(plan)
        return plan

    def _newest_backup_on_disk(self, plan: dict[str, Any]) -> dict[str, Any] | None:
        """A cold standby cannot be asked: read the disk's listing where it is plugged in now
        (the primary, when it still answers). The restore re-checks every hash anyway."""
        try:
            found = backups.listing(self.gateway.run(backups.LIST, timeout=300))
        except SimrsError as exc:
            plan["notes"].append(f"the backups on the external disk could not be listed: {exc}")
            return None
        usable = [row for row in found.sets if row.state not in ("BAD", "incomplete")]
        if not usable:
            plan["notes"].append(f"no usable backup set on the external disk (seen from {found.host})")
            plan["ready"] = False
            return None
        newest = max(usable, key=lambda row: row.created_at)
        age = newest.age_seconds
        return {
            "set": newest.name,
            "created_at": newest.created_at,
            "age_seconds": age,
            "age": f"{int(age) // 3600} h {int(age) % 3600 // 60} min" if age is not None else "?",
            "state": newest.state,
            "seen_from": found.host,
            "skipped_bad": [
                row.name for row in found.sets if row.state == "BAD" and row.created_at > newest.created_at
            ],
        }

    # -- the service IP's owner --

    def current_incident(self) -> Incident | None:
        """The newest incident: the only one whose failover may decide who owns the service IP."""
        ids = self.journal.incidents()
        return self.incident(ids[-1]) if ids else None

    def serving_incident(self) -> Incident | None:
        """The current incident when its failover gave the standby the service IP and no failback
        followed (None: by the journal, the primary serves). Older incidents never count: a later
        incident, a lab rebuilt or a failback done by hand all happened after them."""
        inc = self.current_incident()
        if inc is not None and "ip_takeover" in inc.failover_done and not inc.failed_back:
            return inc
        return None

    def guard(self, owner: str | None = None) -> tuple[dict[str, Any], str | None]:
        """Never two owners of the service IP, and never an outage made by the guard: look first
        (every server and every PC's ARP view, changing nothing), decide (service_ip.decide: the hosts
        and the current incident only), then take the address only from servers that must not hold
        it, and only while the owner holds it and serves. Holds the current incident's lock; refuses
        while a failover runs. Journaled in the incident whose takeover made the standby the owner."""
        h = self.hospital
        if owner is not None and owner not in (h.primary, h.standby):
            raise JournalError(f"--owner must be {h.primary} or {h.standby}, not {owner!r}")
        current = self.current_incident()
        with contextlib.ExitStack() as held:
            if current is not None:
                why = service_ip.refusal(current, None)
                if why:
                    raise JournalError(why)
                try:
                    held.enter_context(self.journal.lock(current.id, "guarding the service IP"))
                except JournalError:
                    holder = self.journal.held_by(current.id) or "another process"
                    raise JournalError(str(service_ip.refusal(current, holder))) from None
                if runs := self.earlier_runs(current.id):
                    names = ", ".join(f"{r['playbook']} (pid {r['pid']})" for r in runs)
                    raise JournalError(str(service_ip.refusal(current, f"a run still going: {names}")))
            expected = service_ip.expectation(h.primary, h.standby, current, owner)
            look = {"ip_guard_owner": expected.owner, "ip_guard_look_only": True}
            seen = guard_facts(self._run("ip_guard", extravars=look, timeout=300))
            servers = {n: service_ip.ServerView.from_published(n, d) for n, d in seen["servers"].items()}
            plan = service_ip.decide(
                servers, seen["owners"], expected, seen["service_ip"] or "the service IP"
            )
            final = seen
            if plan.acts:
                act = {
                    "ip_guard_owner": plan.keep,
                    "ip_guard_take_from": list(plan.take_from),
                    "ip_guard_stop_on": list(plan.stop_on),
                }
                final = guard_facts(self._run("ip_guard", extravars=act, timeout=300))
            ok = service_ip.outcome(plan, final["owners"], final["unknown_macs"])
            detail = plan.detail
            if final["done"]:
                detail += f"; done: {', '.join(final['done'])}"
            if not ok and plan.keep is not None:
                detail += f"; the PCs see: {final['detail']}"
            facts = {
                **final,
                "ok": ok,
                "detail": detail[:500],
                "expected": expected.owner,
                "expected_from": expected.source,
                "kept": plan.keep,
                "notes": list(plan.notes),
                "before": {n: bool(v.get("holds_service_ip")) for n, v in seen["servers"].items()},
            }
            if expected.source != "incident" or current is None:
                return facts, None
            self.journal.append(current.id, "ip_guard", facts, ts=self.now())
            return facts, current.id

    def failback(self, by: str, data_synced: bool) -> tuple[dict[str, Any], str]:
        """Back to the repaired primary (playbooks/failback.yml): the standby stops the SIMRS and
        gives up the service IP, the primary takes it (duplicate check first) and starts the
        SIMRS, verified from the admin machine. It moves no data: a person confirms that what was
        entered on the standby is on the primary. Journaled in the failover's incident."""
        inc = self.serving_incident()
        if inc is None:
            raise JournalError("no failover to undo: by the journal, the main server serves the SIMRS")
        if inc.active:
            raise JournalError(f"incident {inc.id} is still {inc.phase}: let its failover finish first")
        if not data_synced:
            raise JournalError(
                "failback moves no data: what the units entered on the standby since the failover "
                f"({time.strftime('%H:%M', time.localtime(inc.verified_at or inc.opened_at))}) must be on "
                "the main server first (e.g. `simrs backup run` on the standby, restored on the primary); "
                "then confirm with --data-synced"
            )
        with self.journal.lock(inc.id, "failing back"):
            self.journal.append(inc.id, "action_started", {"action": "failback", "by": by}, ts=self.now())
            result = self._run("failback", extravars={"failback_data_synced": True}, timeout=1200)
            facts = failback_facts(result, self.hospital)
            self.journal.append(inc.id, "failback", {"by": by, **facts}, ts=self.now())
        return facts, inc.id

    # -- operator facts (no lock: the driving process reads them on its next turn) --

    def failover_now(self, incident_id: str, by: str, reason: str, fence_again: bool = False) -> Incident:
        inc = self.incident(incident_id)
        if fence_again:
            if inc.phase != Phase.FAILOVER or "ip_takeover" in inc.failover_done:
                raise JournalError(
                    f"incident {incident_id} is in {inc.phase}"
                    + (" and the standby holds the service IP" if "ip_takeover" in inc.failover_done else "")
                    + ": --fence-again is for a failover stopped before the service IP moved"
                )
            if not reason.strip():
                raise JournalError("say why the main server is fenced again: --reason TEXT")
            self.journal.append(incident_id, "fence_again", {"by": by, "reason": reason}, ts=self.now())
            return self.incident(incident_id)
        if inc.phase != Phase.SERVER_REPAIR:
            raise JournalError(
                f"incident {incident_id} is in {inc.phase}, not in the repair window: "
                "failover-now only ends a running repair window"
            )
        if not reason.strip():
            raise JournalError("say why the repair window ends early: --reason TEXT")
        self.journal.append(incident_id, "failover_now", {"by": by, "reason": reason}, ts=self.now())
        return self.incident(incident_id)

    def cancel_failover(self, incident_id: str, by: str, reason: str) -> Incident:
        """The main server came back healthy before the service IP moved: the units go back to it
        (verified from every PC on resume) and the standby returns to cold. Refused unless the main
        server answers and serves now (read before anything is journaled)."""
        inc = self.incident(incident_id)
        if inc.phase not in (Phase.FAILOVER_PENDING, Phase.FAILOVER) or "ip_takeover" in inc.failover_done:
            raise JournalError(
                f"incident {incident_id} is in {inc.phase}"
                + (" and the standby holds the service IP" if "ip_takeover" in inc.failover_done else "")
                + ": only a failover that has not moved the service IP can be canceled "
                "(after it, `simrs failback`)"
            )
        if not reason.strip():
            raise JournalError("say why the failover is canceled: --reason TEXT (it goes into the report)")
        refusal = JournalError(f"incident {incident_id} is being driven by another process: stop it first")
        with self.journal.lock_or_refuse(incident_id, "canceling the failover", refusal):
            check = server_check_facts(self._run("server_check"), self.hospital.primary)
            if not check.get("reachable") or check.get("problems"):
                raise JournalError(
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
            raise JournalError(
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
            raise JournalError(f"incident {incident_id} is {inc.phase}: nothing to confirm")
        self.journal.append(incident_id, "primary_confirmed_off", {"by": by}, ts=self.now())

    def close(self, incident_id: str, cause: str, by: str) -> Incident:
        inc = self.incident(incident_id)
        if inc.phase == Phase.CLOSED:
            raise JournalError(f"incident {incident_id} is already closed")
        if not cause.strip():
            raise JournalError("say what caused the downtime: --cause TEXT (it goes into the report)")
        with self.journal.lock(incident_id, "closing"):
            self.journal.append(
                incident_id, "closed", {"cause": cause, "by": by, "phase_at_close": inc.phase}, ts=self.now()
            )
        return self.incident(incident_id)
