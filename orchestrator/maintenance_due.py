"""What SOP 5 finds due (pure): the servers' age, the planned restart, the routine upkeep of the
servers, the UPS and the generator, disk space and the UPS's own state, most urgent first."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.journal import Event
from orchestrator.maintenance_policy import ROUTINES, Policy, next_quiet, parse_date

STATES = ("due", "unknown", "soon", "ok")  # most urgent first
SOON_DAYS = 14  # routine upkeep within this many days counts as coming up
RESTART_SOON_DAYS = 7


@dataclass(frozen=True)
class Item:
    key: str  # age | restart | routine_server | routine_ups | routine_genset | ups | disk | health
    host: str  # a server, or "" for the hospital's UPS / generator
    state: str  # due | unknown | soon | ok
    detail: str
    action: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "host": self.host,
            "state": self.state,
            "detail": self.detail,
            "action": self.action,
        }


def last_done(records: Iterable[Event]) -> dict[tuple[str, str], dt.date]:
    """The newest recorded date per (routine, host) from ``maintenance_done`` events."""
    newest: dict[tuple[str, str], dt.date] = {}
    for event in records:
        if event.kind != "maintenance_done":
            continue
        day = parse_date(event.data["on"], "a recorded date")
        key = (str(event.data["what"]), str(event.data.get("host") or ""))
        if key not in newest or day > newest[key]:
            newest[key] = day
    return newest


def _age_item(host: str, policy: Policy, facts: Mapping[str, Any], today: dt.date) -> Item:
    since = policy.in_service.get(host)
    life = policy.service_life_years
    estimated = ""
    if since is None:
        firmware = str(facts.get("firmware_date") or "")
        with contextlib.suppress(ValueError):
            since = dt.datetime.strptime(firmware, "%m/%d/%Y").date()  # the DMI format
            estimated = f" (estimated from its firmware date {since.isoformat()}: set simrs_in_service_since)"
    if since is None:
        return Item(
            "age",
            host,
            "unknown",
            "in service since: not known",
            f"set simrs_in_service_since (YYYY-MM) for {host} in the inventory",
        )
    years = (today - since).days / 365.25
    detail = (
        f"{years:.1f} years in service (since {since.isoformat()}), service life {life:g} years{estimated}"
    )
    if years >= life:
        return Item(
            "age", host, "due", detail, "past its service life: plan and budget its replacement (SOP 5.3)"
        )
    if years >= life - 0.5:
        return Item(
            "age", host, "soon", detail, "reaches its service life within 6 months: plan the replacement"
        )
    return Item("age", host, "ok", detail)


def _restart_item(policy: Policy, facts: Mapping[str, Any], local_now: dt.datetime) -> Item:
    host = policy.primary
    if not facts.get("reachable"):
        return Item(
            "restart",
            host,
            "unknown",
            f"{host} does not answer",
            "if the SIMRS is down, start the SOP: simrs incident open --reporter PC",
        )
    up = facts.get("up_seconds")
    if not isinstance(up, int):
        return Item("restart", host, "unknown", "the time since its last start could not be read")
    days = up / 86400
    window = next_quiet(local_now, policy)
    when = (
        f"; next quiet time {window:%a %Y-%m-%d %H:%M}" if window else "; no quiet time in the next 14 days"
    )
    detail = (
        f"running for {days:.1f} days since {facts.get('up_since')}, "
        f"restart every {policy.restart_every_days} days{when}"
    )
    action = "simrs maintain restart (at a quiet time, announced to the units)"
    if days >= policy.restart_every_days:
        return Item("restart", host, "due", detail, action)
    if days >= policy.restart_every_days - RESTART_SOON_DAYS:
        return Item("restart", host, "soon", detail, action)
    return Item("restart", host, "ok", detail)


def _routine_item(
    what: str, host: str, policy: Policy, done: Mapping[tuple[str, str], dt.date], today: dt.date
) -> Item:
    every = policy.every_days[what]
    last = done.get((what, host))
    record = f"simrs maintain log {what}" + (f" --host {host}" if host else "")
    if last is None:
        return Item(
            f"routine_{what}",
            host,
            "due",
            f"{ROUTINES[what]}: never recorded (every {every} days)",
            f"do it, then record it: {record}",
        )
    age = (today - last).days
    detail = f"{ROUTINES[what]}: last done {last.isoformat()} ({age} days ago, every {every} days)"
    if age >= every:
        return Item(
            f"routine_{what}", host, "due", detail, f"overdue by {age - every} days: do it, then {record}"
        )
    if age >= every - min(SOON_DAYS, every // 2):
        return Item(f"routine_{what}", host, "soon", detail, f"due in {every - age} days")
    return Item(f"routine_{what}", host, "ok", detail)


def _ups_item(host: str, ups: Mapping[str, Any] | None) -> Item | None:
    if not ups:
        return None
    if ups.get("replace_battery"):
        return Item(
            "ups", host, "due", f"UPS {ups.get('name')} says: replace the battery", "replace the UPS battery"
        )
    if ups.get("on_battery"):
        return Item(
            "ups",
            host,
            "due",
            f"UPS {ups.get('name')} runs on battery now (charge {ups.get('battery_charge')}%)",
            "check the mains and the generator; the server goes down when the battery is empty",
        )
    if not ups.get("ok"):
        return Item(
            "ups",
            host,
            "unknown",
            f"UPS {ups.get('name')}: {ups.get('status') or ups.get('detail')}",
            "check the UPS and its NUT connection (upsc on the server)",
        )
    return Item(
        "ups",
        host,
        "ok",
        f"UPS {ups.get('name')} on mains, battery {ups.get('battery_charge')}%, "
        f"runtime {ups.get('battery_runtime_seconds')} s",
    )


def _disk_items(host: str, probe: Mapping[str, Any] | None, policy: Policy) -> list[Item]:
    items = []
    for mount in (probe or {}).get("mounts") or []:
        pct = int(mount.get("used_pct") or 0)
        detail = f"{mount.get('path')} ({mount.get('target')}) {pct}% used"
        if pct >= policy.disk_due_pct:
            items.append(
                Item("disk", host, "due", detail, "free space now: a full disk stops the SIMRS saving")
            )
        elif pct >= policy.disk_warn_pct:
            items.append(Item("disk", host, "soon", detail, "plan to free space or add a disk"))
        else:
            items.append(Item("disk", host, "ok", detail))
    return items


def _encryption_item(host: str, how: str) -> Item:
    if how == "age":
        return Item("backup_encryption", host, "ok", "backup sets are encrypted to backup_recipients (age)")
    if how == "openssl":
        return Item(
            "backup_encryption",
            host,
            "soon",
            "backup sets are encrypted with a passphrase the server holds (backup_encryption_key)",
            "make an age key pair and set backup_recipients (docs/runbook-backup-encryption.md)",
        )
    return Item(
        "backup_encryption",
        host,
        "soon",
        "backup sets are NOT encrypted: the external disk holds every patient record in the clear",
        "make an age key pair and set backup_recipients (docs/runbook-backup-encryption.md)",
    )


def assess(
    policy: Policy,
    health: Mapping[str, Mapping[str, Any]],
    probe: Mapping[str, Any] | None,
    records: Iterable[Event],
    local_now: dt.datetime,
) -> list[Item]:
    """Everything SOP 5 asks about, most urgent first. ``health``: server_health per server;
    ``probe``: the primary's server_probe view (disk, health), or None."""
    today = local_now.date()
    done = last_done(records)
    items: list[Item] = []
    primary = health.get(policy.primary) or {}
    if probe and probe.get("reachable") and not probe.get("healthy"):
        items.append(
            Item(
                "health",
                policy.primary,
                "due",
                f"the SIMRS has problems now: {', '.join(probe.get('problems') or [])}",
                "start the SOP: simrs incident open --reporter PC",
            )
        )
    items.append(_restart_item(policy, primary, local_now))
    items += _disk_items(policy.primary, probe, policy)
    items.append(_encryption_item(policy.primary, policy.backup_encryption))
    for host in policy.servers:
        items.append(_age_item(host, policy, health.get(host) or {}, today))
        items.append(_routine_item("server", host, policy, done, today))
        ups = _ups_item(host, (health.get(host) or {}).get("ups"))
        if ups:
            items.append(ups)
    items.append(_routine_item("ups", "", policy, done, today))
    items.append(_routine_item("genset", "", policy, done, today))
    return sorted(items, key=lambda i: STATES.index(i.state))


def check_exit_code(items: Iterable[Item]) -> int:
    """0 nothing needs a person; 3 something is due (a person must act)."""
    return 3 if any(i.state == "due" for i in items) else 0
