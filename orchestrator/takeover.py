"""The pre-staged takeover (playbooks/failover.yml, SOP 4b in one run): each step's fact, the live
clock that journals every step as it ends, and the dry run's plan (check mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orchestrator import procedure
from orchestrator.ansible import PlayResult
from orchestrator.contract import failover_step_facts
from orchestrator.inventory import Hospital


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
