"""SOP 1 run against the hospital: the sample first, the verdict, then the sweep of the rest.

The decisions are orchestrator/triage.py's (pure); this module only runs the probes through the
gateway: the reporter and a few PCs per unit (client_probe, forks sized to the sample) beside the
admin machine's own check (admin_check); the rest of the PCs too, before the verdict, only when
the sample's answers do not settle it; otherwise the rest is swept in the background afterwards
and journaled as ``triage_sweep`` for the report.
"""

from __future__ import annotations

from typing import Any

from orchestrator import triage
from orchestrator.ansible import Gateway, Job, PlayResult, Progress
from orchestrator.contract import checked, triage_facts
from orchestrator.inventory import Hospital

# The sweep is for the report: it must not take the machine from the steps that follow the
# verdict (a server check, a failover), so it runs fewer PCs at once than a verdict would.
SWEEP_FORKS = 20


def _probe_options(hosts: tuple[str, ...], everyone: tuple[str, ...], progress: Progress | None) -> dict:
    options: dict[str, Any] = {"progress": progress, "forks": max(1, len(hosts))}
    if hosts != everyone:
        options["limit"] = list(hosts)
    return options


def first_look(
    gateway: Gateway, hospital: Hospital, reporter: str, progress: Progress | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(the triage fact, the PCs left for the sweep). The fact holds only PCs that were probed."""
    everyone = tuple(hospital.clients)
    chosen = triage.sample(everyone, hospital.units, reporter, hospital.triage_per_unit)
    clients, admin = gateway.run_parallel(
        [
            ("client_probe", _probe_options(chosen, everyone, progress)),
            ("admin_check", {"progress": progress}),
        ]
    )
    for result in (clients, admin):
        checked(result)
    merged = PlayResult(
        "triage",
        clients.status if clients.status != "successful" else admin.status,
        clients.rc or admin.rc,
        {**clients.hosts, **{h: o for h, o in admin.hosts.items() if h == "localhost"}},
        {**clients.data, "localhost": admin.data.get("localhost", {})},
        max(clients.seconds, admin.seconds),
        "; ".join(x for x in (clients.explanation, admin.explanation) if x),
    )
    fact = triage_facts(merged, chosen)
    left = triage.rest(everyone, chosen)
    if left and not triage.decisive(triage.facts_from_data(fact["clients"]), reporter, len(everyone)):
        more = checked(gateway.run("client_probe", **_probe_options(left, everyone, progress)))
        fact["clients"].update(triage_facts(more, left)["clients"])
        left = ()
    fact["sample"] = {
        "probed": len(fact["clients"]),
        "of": len(everyone),
        "per_unit": hospital.triage_per_unit,
    }
    return fact, left


def start_sweep(gateway: Gateway, hosts: tuple[str, ...], progress: Progress | None = None) -> Job:
    """The rest of the PCs, probed in the background after the verdict."""
    return gateway.start(
        "client_probe", limit=list(hosts), forks=min(SWEEP_FORKS, len(hosts)), progress=progress
    )


def sweep_fact(result: PlayResult, hosts: tuple[str, ...], seconds: float) -> dict[str, Any]:
    """The sweep's journal fact: each swept PC as triage records it, and what failed among them."""
    if result.status in ("timeout", "error", "canceled") or not result.complete:
        return {"ok": False, "detail": result.explanation or result.status, "clients": {}, "seconds": seconds}
    clients = triage_facts(result, hosts)["clients"]
    return {
        "ok": True,
        "clients": clients,
        "failing": sorted(h for h, v in clients.items() if not v.get("ok")),
        "seconds": round(seconds, 1),
    }
