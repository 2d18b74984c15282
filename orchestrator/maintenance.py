"""SOP step 5, prevention (`simrs maintain`): what is due, the routine-maintenance record, and the
planned restart of the SIMRS server at a quiet time.

The policy read from the inventory and its quiet times are in ``maintenance_policy``, what is due
(pure) in ``maintenance_due``. This module owns the journal records (stream ``MAINTENANCE``:
``maintenance_done``, ``maintenance_check``; planned restarts as ``RESTART-YYYYMMDD-NNN`` with
``restart_started`` / ``restart_finished``, never an ``opened`` event, so none is ever replayed as
an incident), and running ``maintain_check.yml`` and ``maintain_restart.yml`` through the gateway
(the restart as ``incidents.guarded_run``). The clock is always passed in.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from orchestrator import incidents, interrupt
from orchestrator.ansible import Gateway, PlayResult, Progress
from orchestrator.errors import HostError
from orchestrator.journal import DRILL_LOCK, Event, Journal
from orchestrator.maintenance_due import STATES, Item, assess, check_exit_code  # noqa: F401  (for its users)
from orchestrator.maintenance_policy import (  # the policy and its quiet times, for maintenance's users
    ROUTINES,
    MaintenanceError,
    Policy,
    next_quiet,
    parse_date,  # noqa: F401  (for its users)
    quiet_reason,
)

STREAM = "MAINTENANCE"  # the journal id of routine-maintenance records and checks
RESTART_TIMEOUT_S = 3600


# ---- the record ------------------------------------------------------------------------------------


def record_done(
    journal: Journal,
    policy: Policy,
    what: str,
    hosts: list[str],
    on: dt.date,
    today: dt.date,
    note: str,
    by: str,
) -> list[Event]:
    """Journal that routine maintenance was done (``simrs maintain log``). Refuses bad input."""
    if what not in ROUTINES:
        raise MaintenanceError(f"{what!r} is not a routine: use one of {', '.join(ROUTINES)}")
    if on > today:
        raise MaintenanceError(f"--date {on.isoformat()} is in the future: record work when it is done")
    if (today - on).days > 366:
        raise MaintenanceError(f"--date {on.isoformat()} is over a year ago: record recent work only")
    if what == "server":
        unknown = [h for h in hosts if h not in policy.servers]
        if unknown:
            raise MaintenanceError(
                f"{', '.join(unknown)} is not a SIMRS server of the inventory "
                f"(servers: {', '.join(policy.servers)})"
            )
        targets = hosts or list(policy.servers)
    else:
        if hosts:
            raise MaintenanceError(f"--host is for `log server`; the {what} is one for the hospital")
        targets = [""]
    note = " ".join(note.split())[:500]
    return [
        journal.append(
            STREAM,
            "maintenance_done",
            {"what": what, "host": h, "on": on.isoformat(), "note": note, "by": by},
        )
        for h in targets
    ]


# ---- running it ------------------------------------------------------------------------------------


def check(
    journal: Journal,
    gateway: Gateway,
    policy: Policy,
    local_now: Callable[[], dt.datetime],
    by: str,
    progress: Progress | None = None,
    notify: bool = False,
    extra: Iterable[Item] = (),
) -> tuple[list[Item], dict[str, Any]]:
    """Read the servers (``maintain_check.yml``), decide what is due, journal the result; with
    ``notify``, tell the IT team what is due (``maintain_notify.yml``: webhook and e-mail only)."""
    result = gateway.run("maintain_check", progress=progress, timeout=600)
    if result.misconfigured():
        raise MaintenanceError(f"maintain_check refused its settings: {result.misconfigured()[0].message}")
    health = {
        h: v.get("health") or {} for h, v in result.data.items() if isinstance(v, dict) and "health" in v
    }
    probe = (result.data.get(policy.primary) or {}).get("probe")
    if not health:
        raise HostError(f"the maintenance check published nothing: {result.explanation}")
    local = local_now()
    events = journal.events(STREAM)
    items = assess(policy, health, probe, events, local) + list(extra)  # extra: open backfills
    day = f"MAINT-{local:%Y%m%d}-"
    earlier = sum(e.kind == "maintenance_check" and str(e.data.get("id", "")).startswith(day) for e in events)
    check_id = f"{day}{earlier + 1:03d}"
    facts = {
        "id": check_id,
        "by": by,
        "items": [i.as_dict() for i in items],
        "due": sum(i.state == "due" for i in items),
        "servers": {
            h: {k: v for k, v in (health.get(h) or {}).items() if k != "ups"} for h in policy.servers
        },
    }
    due = [i for i in items if i.state == "due"]
    if notify and due:
        sent = gateway.run(
            "maintain_notify",
            extravars={"notify_detail": due_text(due), "notify_incident": {"id": check_id}},
            timeout=300,
        )
        mine = sent.data.get("localhost") or {}
        facts["notified"] = {"ok": bool(sent.ok and mine.get("ok")), "channels": mine.get("channels") or {}}
    journal.append(STREAM, "maintenance_check", facts)
    return items, facts


def due_text(items: Iterable[Item]) -> str:
    """The due items as the IT team reads them in a message: one line each."""
    return "\n".join(
        f"- {i.host or 'hospital'}, {i.key}: {i.detail}" + (f" -> {i.action}" if i.action else "")
        for i in items
    )


def restart_refusal(policy: Policy, local: dt.datetime, now_ok: bool) -> str | None:
    """Why a planned restart must not start now, or None (the guarded run refuses a drill, another
    restart or an open incident before this)."""
    if not now_ok and quiet_reason(local, policy) is None:
        window = next_quiet(local, policy)
        nxt = f"; the next quiet time starts {window:%a %Y-%m-%d %H:%M}" if window else ""
        return (
            f"{local:%a %H:%M} is not a quiet time "
            f"(simrs_maintenance quiet_hours, quiet_weekdays, holidays){nxt}. "
            "Run it then (simrs schedule install does), or give --now if the units agreed"
        )
    return None


def primary_up_seconds(gateway: Gateway, policy: Policy) -> int | None:
    """How long the primary has run since its last start (None: it does not answer)."""
    result = gateway.run("maintain_check", limit=[policy.primary], timeout=600)
    up = ((result.data.get(policy.primary) or {}).get("health") or {}).get("up_seconds")
    return up if isinstance(up, int) else None


def restart_due(policy: Policy, up_seconds: int | None) -> bool:
    return up_seconds is None or up_seconds >= policy.restart_every_days * 86400


def new_restart_id(journal: Journal, now: float) -> str:
    day = time.strftime("%Y%m%d", time.localtime(now))
    taken = [
        e
        for e in journal.events(STREAM)
        if e.kind == "restart_id" and str(e.data["id"]).startswith(f"RESTART-{day}-")
    ]
    return f"RESTART-{day}-{len(taken) + 1:03d}"


def restart_facts(result: PlayResult, policy: Policy) -> dict[str, Any]:
    """The journal record of one planned restart from what maintain_restart.yml published."""
    data = result.data
    mine = data.get(policy.primary) or {}
    admin = data.get("localhost") or {}
    clients = {h: v for h, v in data.items() if h not in (policy.primary, "localhost")}
    refused = result.misconfigured() if not mine else []  # a pre-check refused: nothing was touched
    ok = bool(result.ok and mine.get("ok") and admin.get("ok"))
    if ok:
        detail = f"restarted and verified from the admin machine and {len(clients)} client PC(s)"
    elif refused:
        detail = refused[0].message
    else:
        detail = str(mine.get("detail") or admin.get("detail") or result.explanation or "no result published")
    return {
        "ok": ok,
        "refused": bool(refused),
        "restarted": bool(mine.get("restarted")),
        "up_since_before": mine.get("up_since_before"),
        "up_since_after": mine.get("up_since_after"),
        "seconds": mine.get("seconds"),
        "verify": {"admin": admin.get("ok"), "clients": {h: bool(v.get("ok")) for h, v in clients.items()}},
        "status": result.status,
        "detail": detail[:500],
    }


def restart(
    journal: Journal,
    gateway: Gateway,
    policy: Policy,
    *,
    local_now: Callable[[], dt.datetime],
    now_ok: bool,
    announce_minutes: int | None,
    by: str,
    now: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> tuple[str, dict[str, Any]]:
    """One planned restart, journaled. Refuses (exit 2, nothing changed) before anything is touched."""
    minutes = policy.announce_minutes if announce_minutes is None else announce_minutes
    if not 0 <= minutes <= 240:
        raise MaintenanceError(f"--announce {minutes} minutes: give 0 to 240")

    def refuse() -> MaintenanceError | None:
        why = restart_refusal(policy, local_now(), now_ok)
        return MaintenanceError(f"REFUSED: {why}. Nothing was changed.") if why else None

    def new_id(stamp: float) -> str:
        restart_id = new_restart_id(journal, stamp)
        journal.append(STREAM, "restart_id", {"id": restart_id})
        return restart_id

    def interrupted(restart_id: str) -> tuple[dict[str, Any], interrupt.Interrupted]:
        error = interrupt.Interrupted(f"{restart_id} interrupted: {INTERRUPTED_TEXT}", signal.SIGINT)
        return {**INTERRUPTED, "detail": INTERRUPTED_TEXT}, error

    return incidents.guarded_run(
        journal,
        lock=DRILL_LOCK,
        purpose="restarting the SIMRS server",
        busy=MaintenanceError(
            "REFUSED: a DR drill or another restart is running; wait for it. Nothing was changed."
        ),
        during_incident=lambda inc: MaintenanceError(
            f"REFUSED: incident {inc.id} is open ({inc.phase}): finish it first "
            f"(`simrs incident status {inc.id}`). Nothing was changed."
        ),
        refuse=refuse,
        new_id=new_id,
        started=("restart_started", {"server": policy.primary, "announce_minutes": minutes, "by": by}),
        run=lambda restart_id: gateway.run(
            "maintain_restart",
            extravars={"simrs_restart_id": restart_id, "simrs_restart_announce_minutes": minutes},
            progress=progress,
            timeout=RESTART_TIMEOUT_S + minutes * 60,
        ),
        facts=lambda result: restart_facts(result, policy),
        finished="restart_finished",
        now=now,
        interrupted=interrupted,
    )


INTERRUPTED = {"ok": False, "refused": False, "restarted": None, "interrupted": True}
INTERRUPTED_TEXT = (
    "the server may be off or still starting. Check it with `simrs maintain check` (or `simrs incident "
    "open --reporter PC`, which checks every PC); run `simrs maintain restart --now` again only when the "
    "SIMRS works"
)


def restart_exit_code(facts: Mapping[str, Any]) -> int:
    if facts["ok"]:
        return 0
    return 2 if facts["refused"] else 1
