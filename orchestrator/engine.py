"""The engine: runs the SOP's next action, journals facts, repeats until a person is needed.

Loop: replay the journal -> ``procedure.next_action`` -> journal ``action_started`` -> run the
playbook that ``contract.ACTIONS`` names for the action through the gateway -> turn its published
data into a fact (the table's function) -> journal the fact. A crash or Ctrl-C between the two
journal writes just means the action runs again on ``resume``: every action here is safe to
repeat (probes, bounded repairs, notices). The operator's word on an incident lives in
``operator.py``, who owns the service IP in ``ownership.py``; the Engine joins them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator import interrupt, procedure, triage_run
from orchestrator.ansible import Gateway, Job, PlayResult
from orchestrator.contract import (
    ACTIONS,
    FAILOVER_STEP_TIMEOUT_S,
    Play,
    checked,
    notice_facts,
    prestage_facts,
)
from orchestrator.failback import Failback
from orchestrator.i18n import N_
from orchestrator.inventory import Hospital
from orchestrator.journal import DRILL_LOCK, Journal
from orchestrator.operator import OperatorWord
from orchestrator.ownership import ServiceIpOwner
from orchestrator.procedure import Action, Incident
from orchestrator.takeover import TakeoverSteps, takeover_facts

WAIT_SLICE_S = 1.0
# Actions that use the standby: they wait while a DR drill has it.
STANDBY_ACTIONS = ("failover_step", "failover_takeover", "standby_cold")
# How long a resume waits for what is left of a killed orchestrator's run before it ends it.
ORPHAN_WAIT_S = 180  # a restore of a large database is the longest step


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


# ---- the engine ------------------------------------------------------------------------------


class Engine(OperatorWord, ServiceIpOwner, Failback):
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
        self._sweep: tuple[Job, tuple[str, ...], float] | None = None  # triage's rest of the PCs

    # -- incidents --

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
                if self._sweep is not None:  # read-only, for the report: not worth a wait
                    self._sweep[0].cancel()
                    self._sweep = None
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
                reason = N_(
                    "an earlier run of this incident is still going: {names}; waiting for it to end"
                ).format(names=names)
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
                    inc, procedure.Action("wait", reason=N_("finishing the standby's pre-staging first"))
                )
                self._finish_prestage(inc.id)
                continue
            if self._notice_job is not None and (action.finished or action.needs_operator):
                self._finish_notice(inc.id)  # the paper-mode notice, sent beside the failover
                continue
            if self._sweep is not None and (action.finished or action.needs_operator):
                self._finish_sweep(inc.id)  # triage's sweep of the rest, for the report
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
        if self._sweep is not None and self._sweep[0].done():
            self._finish_sweep(inc.id)
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
                    reason=N_("SOP 4b pre-staging: ready the standby (own address) while the repair goes on"),
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
            self.ui.step(
                inc,
                procedure.Action(
                    "wait", reason=N_("a DR drill is using the standby ({holder})").format(holder=holder)
                ),
            )
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

    def _execute(self, inc: Incident, action: Action) -> None:
        """The action's row of the playbook contract, run, and its fact journaled."""
        play = ACTIONS.get(action.kind)
        if play is None:
            raise ValueError(f"the engine cannot run action {action.kind!r}")
        if play.decided is not None:  # the procedure's own decision: no playbook
            self._fact(inc.id, play.event, play.decided(inc, action))
            return
        self.journal.append(
            inc.id,
            "action_started",
            {"action": action.kind, "event": action.event, "hosts": list(action.hosts)},
        )
        if self._notice_aside(inc, action, play):
            return
        if play.how == "takeover":
            self._takeover(inc, action, play)
            return
        if play.how == "triage":
            self._triage(inc, play)
            return
        result = self._run(
            play.playbook_for(action),
            refusal_is_a_fact=play.refusal_is_a_fact,
            **self._options(inc, action, play),
        )
        assert play.facts is not None  # noqa: S101  (every row that runs a playbook names its facts)
        fact = play.facts(result, self.hospital, action)
        if play.event == "failover_step":
            fact = self._name_the_other_owner(fact)
        self._fact(inc.id, play.event, fact)

    def _notice_aside(self, inc: Incident, action: Action, play: Play) -> bool:
        """Issue 17.8: the paper-mode notice never delays the fence or the takeover. During a
        failover it is sent beside the steps (notice_started) and journaled when it ends, or sent
        again, in the foreground, after them. True when the action was handled here."""
        if action.kind != "notify" or action.event != "outage_paper_mode":
            return False
        if self._notice_job is not None:
            self._finish_notice(inc.id)  # sent beside the steps: its result, not a second send
            return True
        if (
            inc.phase != procedure.Phase.FAILOVER
            or inc.failover_done
            or "outage_paper_mode" in inc.notices_started
            or not hasattr(self.gateway, "start")
        ):
            return False
        assert play.extravars is not None  # noqa: S101  (the notify row builds its extravars)
        extravars = play.extravars(inc, action, self.hospital, self.now())
        self.journal.append(inc.id, "notice_started", {"event": action.event}, ts=self.now())
        self._notice_job = self.gateway.start(
            play.playbook_for(action), progress=self.ui.event, extravars=extravars
        )
        return True

    def _options(self, inc: Incident, action: Action, play: Play) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if play.timeout is not None:
            options["timeout"] = play.timeout
        if play.extravars is not None:
            options["extravars"] = play.extravars(inc, action, self.hospital, self.now())
        if play.limit_to_action_hosts:
            options["limit"] = list(action.hosts)
        return options

    def _takeover(self, inc: Incident, action: Action, play: Play) -> None:
        """playbooks/failover.yml in one run: each step is journaled (takeover_step, with its
        seconds) the moment it ends; its facts (failover_step) when the run ends."""

        def on_step(step: str, seconds: float, at: float) -> None:
            self.journal.append(inc.id, "takeover_step", {"step": step, "seconds": seconds}, ts=at)
            self.ui.fact("takeover_step", {"step": step, "seconds": seconds})

        steps = TakeoverSteps(self.hospital.clients, self.now, on_step)

        def progress(kind: str, host: str, task: str) -> None:
            steps.progress(kind, host, task)
            self.ui.event(kind, host, task)

        result = checked(
            self.gateway.run(play.playbook, progress=progress, **self._options(inc, action, play)),
            refusal_is_a_fact=play.refusal_is_a_fact,
        )
        for fact in takeover_facts(result, steps):
            self._fact(inc.id, play.event, self._name_the_other_owner(fact))

    def _triage(self, inc: Incident, play: Play) -> None:
        """SOP 1 in one step: the reporter and a few PCs per unit, beside the admin machine's own
        check, decide; the rest are swept in the background for the report (triage_run.py;
        playbooks/triage.yml probes every PC, then the admin view, for running it by hand)."""
        if self._sweep is not None:  # an earlier triage's sweep (the verification after a repair)
            self._finish_sweep(inc.id)
        fact, left = triage_run.first_look(self.gateway, self.hospital, inc.reporter, self.ui.event)
        self._fact(inc.id, play.event, fact)
        if left:
            self._sweep = (triage_run.start_sweep(self.gateway, left, self.ui.event), left, self.now())

    def _finish_sweep(self, incident_id: str) -> None:
        sweep, self._sweep = self._sweep, None
        if sweep is None:
            return
        job, hosts, since = sweep
        result = job.wait()
        self._fact(incident_id, "triage_sweep", triage_run.sweep_fact(result, hosts, self.now() - since))

    def _run(self, playbook: str, *, refusal_is_a_fact: bool = False, **kwargs: Any) -> PlayResult:
        result = self.gateway.run(playbook, progress=self.ui.event, **kwargs)
        return checked(result, refusal_is_a_fact=refusal_is_a_fact)

    def _fact(self, incident_id: str, kind: str, data: dict[str, Any]) -> None:
        self.journal.append(incident_id, kind, data, ts=self.now())
        self.ui.fact(kind, data)
