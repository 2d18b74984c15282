"""The playbook contract: which playbook each SOP action runs, how long it may take, which function
turns the playbook's published data into the journal's fact, and that fact's event kind.

``ACTIONS`` is the one table the engine's loop reads (``Engine._execute``): an action kind the
procedure can decide (``procedure.next_action``) and is not in it is a bug, said at once. The
facts are plain mappings because they go into the journal as JSON and the report reads them back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.ansible import PlayResult
from orchestrator.errors import HostError, InventoryError
from orchestrator.inventory import Hospital
from orchestrator.procedure import Action, Incident

FAILOVER_STEP_TIMEOUT_S = 1800


class ConfigError(InventoryError):
    """A role refused its settings: the inventory to fix before the step can run again."""


def checked(result: PlayResult, *, refusal_is_a_fact: bool = False) -> PlayResult:
    """The result, when it holds facts; else ConfigError: a role that refused its settings (the
    inventory to fix) or HostError: a run that did not finish. With ``refusal_is_a_fact``, a
    role's preflight that refused the situation (no disk, say) is the step's own fact instead."""
    playbook = result.playbook
    bad = result.misconfigured()
    if bad and refusal_is_a_fact and not any(o.failed_action.endswith("validate_argument_spec") for o in bad):
        bad = []
    if bad:
        # A role refused its settings: that is the inventory to fix, not a fact about the SIMRS.
        first = bad[0]
        raise ConfigError(
            f"{playbook}: the inventory needs fixing ({first.name}, {first.failed_task}): "
            f"{first.message}. Fix it, then `simrs incident resume`."
        )
    if result.status in ("timeout", "error", "canceled") or not result.complete:
        # Missing results are not facts: a triage without answers must never read as an outage.
        raise HostError(f"{playbook} could not run: {result.explanation}")
    return result


# ---- facts from playbook results ------------------------------------------------------------------


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


def notify_extravars(inc: Incident, action: Action, h: Hospital, now: float) -> dict[str, Any]:
    """The notice's words come from the journal's time of the event, so a resumed run writes the
    very same notice."""
    when = inc.outage_confirmed_at if action.event == "outage_paper_mode" else inc.verified_at
    stamp = time.localtime(when if when is not None else now)
    return {
        "notify_event": action.event,
        "notify_lang": h.notify_lang,
        "notify_event_time": time.strftime("%Y-%m-%dT%H:%M", stamp),
        "notify_incident": {
            "id": inc.id,
            "reporter": inc.reporter,
            "opened_at": time.strftime("%Y-%m-%d %H:%M", time.localtime(inc.opened_at)),
        },
    }


# ---- the table ----------------------------------------------------------------------------------

Facts = Callable[[PlayResult, Hospital, Action], dict[str, Any]]
Extravars = Callable[[Incident, Action, Hospital, float], dict[str, Any]]


@dataclass(frozen=True)
class Play:
    """How one kind of action runs. ``how``: ``fact`` journals the procedure's own decision
    (``decided``; no playbook, no ``action_started``); ``run`` runs ``playbook``; ``triage`` runs
    the clients' probes and the admin machine's check at once; ``takeover`` runs failover.yml with
    its live step clock."""

    event: str  # the journal event of the fact
    playbook: str = ""  # "{event}" is replaced by the action's event (failover_{event})
    how: str = "run"
    timeout: int | None = None
    facts: Facts | None = None
    extravars: Extravars | None = None
    limit_to_action_hosts: bool = False
    decided: Callable[[Incident, Action], dict[str, Any]] | None = None  # how="fact": the fact itself
    refusal_is_a_fact: bool = False  # a role's preflight refusing the situation is the step's fact

    def playbook_for(self, action: Action) -> str:
        return self.playbook.replace("{event}", action.event)


def _reason(_: Incident, action: Action) -> dict[str, Any]:
    return {"reason": action.reason}


ACTIONS: dict[str, Play] = {
    "pending_failover": Play("pending_failover", how="fact", decided=_reason),
    "resolve": Play("resolved", how="fact", decided=_reason),
    "on_standby": Play("on_standby", how="fact", decided=_reason),
    "approve": Play("approved", how="fact", decided=lambda inc, a: {"by": f"policy:{inc.policy.failover}"}),
    "triage": Play("triage", how="triage", facts=lambda r, h, a: triage_facts(r, h.clients)),
    "verify": Play("triage", how="triage", facts=lambda r, h, a: triage_facts(r, h.clients)),
    "client_repair": Play(
        "client_repair",
        "client_repair",
        facts=lambda r, h, a: client_repair_facts(r, a.hosts),
        limit_to_action_hosts=True,
    ),
    "server_check": Play(
        "server_check", "server_check", facts=lambda r, h, a: server_check_facts(r, h.primary)
    ),
    "server_repair": Play(
        "repair_attempt", "server_repair", timeout=600, facts=lambda r, h, a: repair_facts(r, h.primary)
    ),
    "standby_cold": Play(
        "standby_cold",
        "standby_cold",
        timeout=600,
        facts=lambda r, h, a: standby_cold_facts(r, h.standby or ""),
    ),
    # A step's refusal (no disk, the standby holds nothing to restore, someone else answers for the
    # IP) is where the failover stops for a person, not an inventory error.
    "failover_takeover": Play(
        "failover_step",
        "failover",
        how="takeover",
        timeout=FAILOVER_STEP_TIMEOUT_S,
        extravars=lambda inc, a, h, now: failover_extravars("all", inc),
        refusal_is_a_fact=True,
    ),
    "failover_step": Play(
        "failover_step",
        "failover_{event}",
        timeout=FAILOVER_STEP_TIMEOUT_S,
        facts=lambda r, h, a: failover_step_facts(a.event, r),
        extravars=lambda inc, a, h, now: failover_extravars(a.event, inc),
        refusal_is_a_fact=True,
    ),
    "notify": Play(
        "notice", "notify", facts=lambda r, h, a: notice_facts(r, a.event), extravars=notify_extravars
    ),
}
