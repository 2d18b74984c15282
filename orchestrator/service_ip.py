"""Who may hold the service IP: the guard's decisions, pure (no I/O, no clock, no Ansible).

The hosts are the truth and the journal is the memory: a server that holds the service IP and
serves the SIMRS is never stripped of it unless the *current* incident's failover journaled its
takeover (the standby owns the address now) or a person named the owner (`--owner`). Nothing is
taken from anyone unless the server that keeps the address answers, holds it and serves. An old
incident never decides anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.procedure import Incident, Phase

# Where the expected owner comes from: a person (--owner), the current incident's takeover, or
# the default (the primary: no failover is in force).
Source = Literal["operator", "incident", "default"]


@dataclass(frozen=True)
class ServerView:
    """What one SIMRS server said about itself (role ip_guard, entry point servers)."""

    name: str
    answers: bool = False
    holds: bool = False  # the service IP is on one of its interfaces
    running: bool = False  # its database or its web app runs
    serving: bool = False  # both run: a PC would be served

    @classmethod
    def from_published(cls, name: str, data: Mapping[str, Any]) -> ServerView:
        return cls(
            name=name,
            answers=bool(data.get("answers")),
            holds=bool(data.get("holds_service_ip")),
            running=bool(data.get("simrs_running")),
            serving=bool(data.get("serving")),
        )


@dataclass(frozen=True)
class Expectation:
    owner: str
    source: Source
    incident: str | None = None  # the incident whose takeover made the standby the owner


@dataclass(frozen=True)
class GuardPlan:
    """What the guard will do: keep the address on ``keep``, take it from ``take_from``, stop the
    SIMRS on ``stop_on``. ``healthy``: one server holds the address and serves, nothing to do."""

    keep: str | None
    take_from: tuple[str, ...] = ()
    stop_on: tuple[str, ...] = ()
    healthy: bool = False
    detail: str = ""
    notes: tuple[str, ...] = ()

    @property
    def acts(self) -> bool:
        return bool(self.take_from or self.stop_on)


def refusal(current: Incident | None, lock_holder: str | None) -> str | None:
    """Why the guard must not run now (None: it may). A failover in progress moves the address
    itself; a process driving the current incident may be about to."""
    if current is None:
        return None
    if current.phase == Phase.FAILOVER:
        return (
            f"incident {current.id} is failing over right now ({current.reason or 'FAILOVER'}): "
            f"the takeover moves the service IP itself; run the guard after it ends "
            f"(`simrs incident status {current.id}`)"
        )
    if lock_holder:
        return (
            f"incident {current.id} is being driven by {lock_holder}; run the guard when that run stops "
            f"(`simrs incident status {current.id}`)"
        )
    return None


def expectation(
    primary: str, standby: str | None, current: Incident | None, operator_owner: str | None
) -> Expectation:
    """The server that should hold the service IP: a person's word, else the standby when the
    current (newest) incident journaled its takeover and no failback, else the primary."""
    if operator_owner:
        return Expectation(operator_owner, "operator")
    if (
        current is not None
        and standby is not None
        and "ip_takeover" in current.failover_done
        and not current.failed_back
    ):
        return Expectation(standby, "incident", current.id)
    return Expectation(primary, "default")


def decide(
    servers: Mapping[str, ServerView],
    arp_owners: tuple[str, ...] | list[str],
    expected: Expectation,
    service_ip: str,
) -> GuardPlan:
    """The plan for what was seen. ``arp_owners``: the servers whose MAC the PCs saw answer for
    the address (a server that answers ARP holds it, whatever it said of itself)."""
    holders = sorted({h for h, s in servers.items() if s.holds} | (set(arp_owners) & set(servers)))
    serving_holders = [h for h in holders if servers[h].serving]
    owner = expected.owner
    mine = servers.get(owner, ServerView(owner))
    why = {
        "operator": "named by the operator",
        "incident": f"the standby since incident {expected.incident}'s takeover",
        "default": "the main server: no failover is in force",
    }[expected.source]
    if owner in holders and mine.serving:
        others = [h for h in holders if h != owner]
        # Without a takeover or a person's word, a server that serves keeps what it has.
        kept = [h for h in others if expected.source == "default" and servers[h].serving]
        take = tuple(h for h in others if h not in kept)
        stop = set(take)
        if expected.source != "default":
            # The old primary back after a failover (or a person's choice): its database must not
            # take writes through its own address either.
            stop |= {h for h, s in servers.items() if h != owner and s.answers and s.running}
        notes = tuple(
            f"{h} also holds {service_ip} and serves; it is not taken without a takeover in the current "
            f"incident: a person decides (`simrs guard --owner {owner}` or `--owner {h}`)"
            for h in kept
        )
        healthy = not others and not stop
        if healthy:
            detail = f"only {owner} holds {service_ip} and serves ({why})"
        elif kept:
            detail = f"{service_ip} is held by {', '.join([owner, *kept])}: two servers serve"
        else:
            detail = f"{owner} keeps {service_ip} ({why})"
        return GuardPlan(owner, take, tuple(sorted(stop)), healthy, detail, notes)
    if len(holders) == 1 and serving_holders:
        # The hosts say otherwise than the expectation, and they are healthy: change nothing.
        (holder,) = holders
        note = (
            f"expected {owner} ({why}), but {holder} holds {service_ip} and serves; nothing changed"
            if holder != owner
            else ""
        )
        return GuardPlan(
            holder,
            healthy=True,
            detail=f"only {holder} holds {service_ip} and serves",
            notes=(note,) if note else (),
        )
    if not holders:
        return GuardPlan(None, detail=f"nobody answers for {service_ip}: nothing taken from anyone")
    state = "does not answer" if not mine.answers else "does not serve" if not mine.serving else "lacks it"
    return GuardPlan(
        None,
        detail=(
            f"{service_ip} is held by {', '.join(holders)}"
            f"{' (serving: ' + ', '.join(serving_holders) + ')' if serving_holders else ', none serving'}; "
            f"the owner {owner} ({why}) {state}: nothing taken from anyone; "
            f"a person decides (`simrs guard --owner HOST`)"
        ),
    )


def outcome(plan: GuardPlan, arp_owners: list[str], unknown_macs: list[str]) -> bool:
    """Whether the hospital is right after the guard: one owner that serves, and every PC sees only it."""
    return plan.keep is not None and list(arp_owners) == [plan.keep] and not unknown_macs
