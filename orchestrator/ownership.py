"""Who owns the service IP: the failover's dry run, the guard (never two owners), and reading the
servers after a stop (who holds the address, is the standby on). The failback: orchestrator/failback.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from orchestrator import backups, incidents, interrupt, service_ip
from orchestrator.ansible import Gateway, PlayResult
from orchestrator.contract import ConfigError, guard_facts
from orchestrator.errors import InputError, InventoryError, JournalError, SimrsError
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from orchestrator.procedure import Incident
from orchestrator.takeover import failover_plan


class ServiceIpOwner:
    """The service IP's owner (a part of ``Engine``)."""

    journal: Journal
    gateway: Gateway
    hospital: Hospital
    now: Callable[[], float]
    ui: Any

    def earlier_runs(self, incident_id: str) -> list[dict[str, Any]]:
        live = getattr(self.gateway, "live_runs", None)
        return live(incident_id) if live is not None else []

    _run: Callable[..., PlayResult]  # the engine's: run a playbook, its result checked

    # -- step 4b on its own --

    def failover_plan(self) -> dict[str, Any]:
        """`simrs failover --dry-run`: the hosts, the steps, and what check mode can tell about them
        (how the primary would be fenced, the standby's power, the backup that would be restored and
        its age, whether anyone else answers for the service IP). Changes nothing."""
        h = self.hospital
        if h.standby is None:
            raise InventoryError("the inventory has no simrs_standby host: there is nothing to fail over to")
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
        return incidents.current_incident(self.journal)

    def serving_incident(self) -> Incident | None:
        return incidents.serving_incident(self.journal)

    def guard(self, owner: str | None = None) -> tuple[dict[str, Any], str | None]:
        """Never two owners of the service IP, and never an outage made by the guard: look first
        (every server and every PC's ARP view, changing nothing), decide (service_ip.decide: the hosts
        and the current incident only), then take the address only from servers that must not hold
        it, and only while the owner holds it and serves. Holds the current incident's lock; refuses
        while a failover runs. Journaled in the incident whose takeover made the standby the owner."""
        h = self.hospital
        if owner is not None and owner not in (h.primary, h.standby):
            raise InputError(f"--owner must be {h.primary} or {h.standby}, not {owner!r}")
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
