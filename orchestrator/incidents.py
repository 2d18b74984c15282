"""The incidents as the journal tells them, and the guarded run that every other operation shares.

One home for "the active incident" (the one still being handled: it may need the standby any
moment), the newest incident (the only one whose failover may decide who owns the service IP), and
the allocation of a new record's id under the journal's whole lock.

``guarded_run`` is how a drill, a planned restart (and any later operation on the servers outside an
incident) runs: hold its lock (one at a time, refused otherwise), refuse while an incident is
open, take a new id, journal the start, run the playbook, turn its result into facts, journal the
end. The operation keeps only its own decisions (what to refuse, which playbook, which facts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator import procedure
from orchestrator.ansible import PlayResult
from orchestrator.errors import InputError, JournalError, SimrsError
from orchestrator.journal import Journal
from orchestrator.procedure import Incident


def incident(journal: Journal, incident_id: str) -> Incident:
    events = journal.events(incident_id)
    if not events:
        raise InputError(f"no incident {incident_id}; `simrs incident status` lists the active one")
    return procedure.replay(incident_id, events)


def active_incident(journal: Journal) -> Incident | None:
    """The incident still being handled, if any (it may need the standby any moment)."""
    for incident_id in reversed(journal.incidents()):
        inc = incident(journal, incident_id)
        if inc.active:
            return inc
    return None


def current_incident(journal: Journal) -> Incident | None:
    """The newest incident: the only one whose failover may decide who owns the service IP."""
    ids = journal.incidents()
    return incident(journal, ids[-1]) if ids else None


def serving_incident(journal: Journal) -> Incident | None:
    """The current incident when its failover gave the standby the service IP and no failback
    followed (None: by the journal, the primary serves). Older incidents never count: a later
    incident, a lab rebuilt or a failback done by hand all happened after them."""
    inc = current_incident(journal)
    if inc is not None and "ip_takeover" in inc.failover_done and not inc.failed_back:
        return inc
    return None


def new_incident(
    journal: Journal,
    now: Callable[[], float],
    purpose: str,
    refusal: Callable[[Incident], str],
    events: list[tuple[str, dict[str, Any]]],
) -> str:
    """Checked, numbered and written while holding the whole journal: two operators (or a timer)
    opening at once get one incident and a clear refusal, never two incidents or one id twice."""
    active_incident(journal)  # a damaged journal stops here, before anything is created
    with journal.exclusive(purpose):
        active = active_incident(journal)
        if active is not None:
            raise JournalError(refusal(active))
        stamp = now()
        incident_id = journal.new_incident_id(stamp)
        for kind, data in events:
            journal.append(incident_id, kind, data, ts=stamp)
    return incident_id


def guarded_run(
    journal: Journal,
    *,
    lock: str,
    purpose: str,
    busy: SimrsError,
    during_incident: Callable[[Incident], SimrsError],
    new_id: Callable[[float], str],
    started: tuple[str, dict[str, Any]],
    run: Callable[[str], PlayResult],
    facts: Callable[[PlayResult], dict[str, Any]],
    finished: str,
    now: Callable[[], float],
    refuse: Callable[[], SimrsError | None] = lambda: None,
    interrupted: Callable[[str], tuple[dict[str, Any], SimrsError]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Run one operation on the servers outside an incident, journaled: (its id, its facts).

    ``busy`` is raised when ``lock`` is held (another run of the same kind); ``during_incident``
    when an incident is open; ``refuse`` may refuse for the operation's own reasons. All of these
    come before anything is journaled or touched. ``interrupted`` (Ctrl-C while the playbook runs)
    gives the facts to journal as the end, and the error to raise."""
    with journal.lock_or_refuse(lock, purpose, busy):
        with journal.exclusive(purpose):  # no incident opened in between
            inc = active_incident(journal)
            if inc is not None:
                raise during_incident(inc)
            why = refuse()
            if why is not None:
                raise why
            run_id = new_id(now())
            kind, data = started
            journal.append(run_id, kind, data, ts=now())
        try:
            result = run(run_id)
        except KeyboardInterrupt:
            if interrupted is None:
                raise
            data, error = interrupted(run_id)
            journal.append(run_id, finished, data, ts=now())
            raise error from None
        record = facts(result)
        journal.append(run_id, finished, record, ts=now())
    return run_id, record
