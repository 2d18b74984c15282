"""SOP steps 1 and 3 as pure decisions: do the other PCs have the same problem, does the admin
machine; is the server computer online. ``classify_from_data`` reads a journaled triage fact."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


def server_state(reachable: bool, problems: Iterable[str]) -> ServerState:
    """SOP step 3: is the server computer online? HOST_DOWN when it cannot be reached at all."""
    if not reachable:
        return ServerState.HOST_DOWN
    return ServerState.SERVICE_DOWN if list(problems) else ServerState.HEALTHY


def classify_from_data(data: dict[str, Any]) -> Classification:
    clients = [
        ClientFact(
            host=h,
            ok=bool(v.get("ok")),
            unreachable=bool(v.get("unreachable")),
            failed_check=v.get("failed_check"),
            detail=str(v.get("detail", "")),
        )
        for h, v in sorted(data.get("clients", {}).items())
    ]
    admin = data.get("admin", {})
    return classify(clients, bool(admin.get("ok")), admin.get("failed_check"))
