"""SOP steps 1 and 3 as pure decisions: do the other PCs have the same problem, does the admin
machine; is the server computer online. ``classify_from_data`` reads a journaled triage fact.

Triage does not grow with the hospital: the first question needs a sample, not every PC.
``sample`` picks the reporter and a few PCs per unit; ``decisive`` says whether their answers
(with the admin machine's view) settle the verdict, else the rest is probed before deciding;
``rest`` is swept afterwards, for the report only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# PCs probed per unit before the verdict (simrs_triage_per_unit), besides the reporter.
DEFAULT_PER_UNIT = 2
# PCs besides the reporter that must answer (reachable, probed) for a sample to settle the verdict:
# a switched-off PC says nothing about the SIMRS.
MIN_OTHER_ANSWERS = 2

# Checks past the network: a PC failing only here reached the server's ports.
APP_CHECKS = frozenset({"app", "login", "web"})


class Verdict(StrEnum):
    CLIENT_LOCAL = "CLIENT_LOCAL"
    NETWORK = "NETWORK"
    SERVER = "SERVER"
    NO_FAULT = "NO_FAULT"


class ServerState(StrEnum):
    HOST_DOWN = "HOST_DOWN"
    SERVICE_DOWN = "SERVICE_DOWN"
    HEALTHY = "HEALTHY"


# ---- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientFact:
    host: str
    ok: bool
    unreachable: bool = False
    failed_check: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    failing: tuple[str, ...]
    evidence: dict[str, str]
    summary: str


def classify(
    clients: Iterable[ClientFact], admin_ok: bool, admin_failed: str | None = None
) -> Classification:
    """SOP step 1: do the other PCs have the same problem? And does the admin machine?"""
    facts = list(clients)
    failing = [c for c in facts if not c.ok]
    fine = [c for c in facts if c.ok]
    evidence = {
        c.host: (
            "unreachable from the admin machine"
            if c.unreachable
            else f"{c.failed_check}: {c.detail}".strip(": ")
        )
        for c in failing
    }
    names = tuple(sorted(c.host for c in failing))
    if not failing:
        if admin_ok:
            return Classification(Verdict.NO_FAULT, (), {}, "every client PC reaches the SIMRS now")
        evidence["admin"] = admin_failed or "failed"
        return Classification(
            Verdict.SERVER,
            (),
            evidence,
            "no client reports a fault but the admin machine cannot reach the SIMRS",
        )
    if fine:
        return Classification(
            Verdict.CLIENT_LOCAL,
            names,
            evidence,
            f"{len(failing)} of {len(facts)} client PCs fail, the others are fine",
        )
    reachable_failing = [c for c in failing if not c.unreachable]
    # Every PC gets through the network to the server's ports but the application itself fails
    # (e.g. logins hang on a full disk while the admin machine's read-only check passes): that
    # is the server, not the network.
    app_only = bool(reachable_failing) and all(c.failed_check in APP_CHECKS for c in reachable_failing)
    if admin_ok and not app_only:
        what = "cannot be reached" if not reachable_failing else "fail"
        return Classification(
            Verdict.NETWORK,
            names,
            evidence,
            f"every client PC {what}, but the admin machine reaches the SIMRS",
        )
    evidence["admin"] = (admin_failed or "failed") if not admin_ok else "ok (read-only check)"
    summary = (
        "every client PC reaches the server but the SIMRS application fails on all of them"
        if admin_ok
        else "every client PC fails and so does the admin machine's check"
    )
    return Classification(Verdict.SERVER, names, evidence, summary)


def sample(
    clients: Iterable[str], units: dict[str, str], reporter: str, per_unit: int = DEFAULT_PER_UNIT
) -> tuple[str, ...]:
    """The PCs probed before the verdict: the reporter, then the first ``per_unit`` PCs of each
    unit (inventory order; a PC without a unit is its own). Its size grows with the units, not
    with the PCs."""
    if per_unit < 1:
        raise ValueError(f"per_unit must be at least 1, not {per_unit}")
    order = list(clients)
    chosen = [reporter] if reporter in order else []
    taken = {units.get(pc) or pc: 1 for pc in chosen}
    for pc in order:
        unit = units.get(pc) or pc
        if pc not in chosen and taken.get(unit, 0) < per_unit:
            chosen.append(pc)
            taken[unit] = taken.get(unit, 0) + 1
    return tuple(chosen)


def rest(clients: Iterable[str], probed: Iterable[str]) -> tuple[str, ...]:
    """The PCs not probed yet (swept after the verdict, for the report), in inventory order."""
    seen = set(probed)
    return tuple(pc for pc in clients if pc not in seen)


def decisive(facts: Iterable[ClientFact], reporter: str, total: int) -> bool:
    """Whether the sample's answers settle SOP 1: every PC was probed, or at least
    MIN_OTHER_ANSWERS PCs besides the reporter answered (reached and probed, whatever they found).
    Otherwise (the others are switched off or unreachable from here) the rest is probed before
    the verdict: a sample of silent PCs cannot tell a network fault from PCs that are off."""
    facts = list(facts)
    if len(facts) >= total:
        return True
    answered = [c for c in facts if c.host != reporter and not c.unreachable]
    return len(answered) >= MIN_OTHER_ANSWERS


def facts_from_data(clients: dict[str, Any]) -> list[ClientFact]:
    """The ClientFacts of a journaled ``clients`` mapping (a triage fact's or a sweep's)."""
    return [
        ClientFact(
            host=h,
            ok=bool(v.get("ok")),
            unreachable=bool(v.get("unreachable")),
            failed_check=v.get("failed_check"),
            detail=str(v.get("detail", "")),
        )
        for h, v in sorted(clients.items())
    ]


def server_state(reachable: bool, problems: Iterable[str]) -> ServerState:
    """SOP step 3: is the server computer online? HOST_DOWN when it cannot be reached at all."""
    if not reachable:
        return ServerState.HOST_DOWN
    return ServerState.SERVICE_DOWN if list(problems) else ServerState.HEALTHY


def classify_from_data(data: dict[str, Any]) -> Classification:
    clients = facts_from_data(data.get("clients", {}))
    admin = data.get("admin", {})
    return classify(clients, bool(admin.get("ok")), admin.get("failed_check"))
