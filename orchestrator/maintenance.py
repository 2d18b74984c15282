"""SOP step 5, prevention (`simrs maintain`): what is due, the routine-maintenance record, and the
planned restart of the SIMRS server at a quiet time.

Owns the policy read from the inventory's ``simrs_maintenance`` (and each server's
``simrs_in_service_since``), the decisions as pure functions (is now a quiet time, what is due:
server age, restart, routine upkeep of server, UPS and generator, disk space, the UPS's own state),
the journal records (stream ``MAINTENANCE``: ``maintenance_done``, ``maintenance_check``; planned
restarts as ``RESTART-YYYYMMDD-NNN`` with ``restart_started`` / ``restart_finished``, never an
``opened`` event, so none is ever replayed as an incident), and running ``maintain_check.yml`` and
``maintain_restart.yml`` through the gateway. The clock is always passed in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import drill
from orchestrator.ansible import Gateway, PlayResult, Progress, parse_inventory
from orchestrator.errors import SimrsError
from orchestrator.journal import DRILL_LOCK, Event, Journal

STREAM = "MAINTENANCE"  # the journal id of routine-maintenance records and checks
RESTART_TIMEOUT_S = 3600
ROUTINES = {
    "server": "the servers' routine upkeep (dust, fans, disks' SMART state, event log)",
    "ups": "the server UPS's routine check (battery test, load, runtime)",
    "genset": "the hospital generator's routine test run (start, transfer, fuel)",
}
DEFAULTS: dict[str, Any] = {
    "quiet_hours": ["01:00-04:00"],
    "quiet_weekdays": [],
    "holidays": [],
    "restart_every_days": 30,
    "service_life_years": 5,
    "every_days": {"server": 90, "ups": 90, "genset": 30},
    "announce_minutes": 10,
    "disk_warn_pct": 80,
    "disk_due_pct": 90,
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
STATES = ("due", "unknown", "soon", "ok")  # most urgent first
SOON_DAYS = 14  # routine upkeep within this many days counts as coming up
RESTART_SOON_DAYS = 7


class MaintenanceError(SimrsError):
    """Bad settings or a refused action (exit 2, nothing changed) unless said otherwise."""


# ---- settings -------------------------------------------------------------------------------------


def parse_date(value: Any, what: str) -> dt.date:
    """A date from YYYY-MM-DD, or YYYY-MM (the first of the month), as YAML or text gives it."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(text, fmt).date()
    raise MaintenanceError(f"{what} is {value!r}: write a date as YYYY-MM-DD (or YYYY-MM)")


def _window(text: Any) -> tuple[int, int]:
    match = WINDOW.match(str(text).replace(" ", ""))
    if not match:
        raise MaintenanceError(
            f"simrs_maintenance.quiet_hours has {text!r}: write each window as HH:MM-HH:MM in the admin "
            "machine's local time, e.g. '01:00-04:00' (a window may pass midnight: '22:00-02:00')"
        )
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > 24 * 60 or start == end:
        raise MaintenanceError(
            f"simrs_maintenance.quiet_hours has {text!r}: the window is empty or past 24:00"
        )
    return start, end


def _positive(settings: Mapping[str, Any], key: str, low: float, high: float) -> Any:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise MaintenanceError(
            f"simrs_maintenance.{key} is {value!r}: give a number from {low:g} to {high:g}"
        )
    return value


@dataclass(frozen=True)
class Policy:
    primary: str
    servers: tuple[str, ...]  # primary first, then the standby
    quiet_hours: tuple[tuple[int, int], ...]
    quiet_weekdays: frozenset[int]
    holidays: frozenset[dt.date]
    restart_every_days: int
    service_life_years: float
    every_days: dict[str, int]
    announce_minutes: int
    disk_warn_pct: int
    disk_due_pct: int
    in_service: dict[str, dt.date] = field(default_factory=dict)
    backup_encryption: str = "age"  # age | openssl (the older passphrase) | none

    @classmethod
    def from_inventory(cls, raw: dict[str, Any]) -> Policy:
        inv = parse_inventory(raw)
        groups, hostvars = inv["groups"], inv["hostvars"]
        primary = groups.get("simrs_primary", [])
        if len(primary) != 1:
            raise MaintenanceError(
                f"maintenance needs exactly one host in simrs_primary; the inventory has {primary}"
            )
        servers = tuple(primary + [h for h in groups.get("simrs_standby", []) if h not in primary])
        s = _settings(hostvars.get(primary[0], {}).get("simrs_maintenance"))
        hours = [s["quiet_hours"]] if isinstance(s["quiet_hours"], str) else s["quiet_hours"] or []
        warn = _positive(s, "disk_warn_pct", 1, 99)
        due = _positive(s, "disk_due_pct", 1, 100)
        if warn >= due:
            raise MaintenanceError(
                f"simrs_maintenance.disk_warn_pct ({warn}) must be below disk_due_pct ({due})"
            )
        mine = {h: hostvars.get(h, {}) for h in servers}
        return cls(
            backup_encryption=backup_encryption(hostvars.get(primary[0], {})),
            primary=primary[0],
            servers=servers,
            quiet_hours=tuple(_window(w) for w in hours),
            quiet_weekdays=frozenset(_weekday(d) for d in s["quiet_weekdays"] or []),
            holidays=frozenset(
                parse_date(d, "a date in simrs_maintenance.holidays") for d in s["holidays"] or []
            ),
            restart_every_days=int(_positive(s, "restart_every_days", 1, 3660)),
            service_life_years=float(_positive(s, "service_life_years", 1, 30)),
            every_days=_every_days(s["every_days"]),
            announce_minutes=int(_positive(s, "announce_minutes", 0, 240)),
            disk_warn_pct=int(warn),
            disk_due_pct=int(due),
            in_service={
                h: parse_date(v["simrs_in_service_since"], f"simrs_in_service_since of {h}")
                for h, v in mine.items()
                if v.get("simrs_in_service_since")
            },
        )


def backup_encryption(v: Mapping[str, Any]) -> str:
    """How the primary's backups are encrypted, from its variables: age (backup_recipients), openssl
    (the older backup_encryption_key passphrase) or none."""
    if v.get("backup_recipients"):
        return "age"
    return "openssl" if v.get("backup_encryption_key") else "none"


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


def _settings(given: Any) -> dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise MaintenanceError(f"simrs_maintenance must be a mapping of settings, not {given!r}")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise MaintenanceError(
            f"simrs_maintenance has unknown setting(s) {', '.join(map(str, unknown))}: "
            f"the settings are {', '.join(DEFAULTS)}"
        )
    return {**DEFAULTS, **given}


def _every_days(given: Any) -> dict[str, int]:
    every = {**DEFAULTS["every_days"], **(given or {})}
    strange = sorted(set(every) - set(ROUTINES))
    if strange:
        raise MaintenanceError(
            f"simrs_maintenance.every_days knows {', '.join(ROUTINES)}, not {', '.join(map(str, strange))}"
        )
    for key, days in every.items():
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise MaintenanceError(
                f"simrs_maintenance.every_days.{key} is {days!r}: give days from 1 to 3660"
            )
    return every


def _weekday(day: Any) -> int:
    name = str(day).strip().lower()[:3]
    if name not in WEEKDAYS:
        raise MaintenanceError(f"simrs_maintenance.quiet_weekdays has {day!r}: use day names (Mon ... Sun)")
    return WEEKDAYS.index(name)


# ---- quiet times (pure) ----------------------------------------------------------------------------


def quiet_reason(local: dt.datetime, policy: Policy) -> str | None:
    """Why this local time counts as quiet (a holiday, a quiet weekday, a quiet window), or None."""
    day = local.date()
    if day in policy.holidays:
        return f"{day.isoformat()} is a holiday (simrs_maintenance.holidays)"
    if local.weekday() in policy.quiet_weekdays:
        return f"{WEEKDAYS[local.weekday()].title()} is a quiet day (simrs_maintenance.quiet_weekdays)"
    minute = local.hour * 60 + local.minute
    for start, end in policy.quiet_hours:
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if inside:
            return f"{_hhmm(start)}-{_hhmm(end)} is a quiet time (simrs_maintenance.quiet_hours)"
    return None


def next_quiet(local: dt.datetime, policy: Policy, horizon_days: int = 14) -> dt.datetime | None:
    """The first minute from ``local`` on that is quiet (``local`` itself if it is), or None."""
    probe = local.replace(second=0, microsecond=0)
    for _ in range(horizon_days * 24 * 4):  # quarter-hour steps are fine for a maintenance window
        if quiet_reason(probe, policy):
            return probe
        probe = (probe + dt.timedelta(minutes=15)).replace(minute=(probe.minute // 15 + 1) % 4 * 15)
    return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---- what is due (pure) ----------------------------------------------------------------------------


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
        raise SimrsError(f"the maintenance check published nothing: {result.explanation}", exit_code=1)
    local = local_now()
    events = journal.events(STREAM)
    items = assess(policy, health, probe, events, local)
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


def restart_refusal(journal: Journal, policy: Policy, local: dt.datetime, now_ok: bool) -> str | None:
    """Why a planned restart must not start now, or None. The caller holds the drill lock (a drill
    or another restart is refused before this)."""
    inc = drill.active_incident(journal)
    if inc is not None:
        return f"incident {inc.id} is open ({inc.phase}): finish it first (`simrs incident status {inc.id}`)"
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
    refusal = MaintenanceError(
        "REFUSED: a DR drill or another restart is running; wait for it. Nothing was changed."
    )
    with journal.lock_or_refuse(DRILL_LOCK, "restarting the SIMRS server", refusal):
        why = restart_refusal(journal, policy, local_now(), now_ok)
        if why:
            raise MaintenanceError(f"REFUSED: {why}. Nothing was changed.")
        restart_id = new_restart_id(journal, now())
        journal.append(STREAM, "restart_id", {"id": restart_id})
        journal.append(
            restart_id, "restart_started", {"server": policy.primary, "announce_minutes": minutes, "by": by}
        )
        try:
            result = gateway.run(
                "maintain_restart",
                extravars={"simrs_restart_id": restart_id, "simrs_restart_announce_minutes": minutes},
                progress=progress,
                timeout=RESTART_TIMEOUT_S + minutes * 60,
            )
        except KeyboardInterrupt:
            journal.append(restart_id, "restart_finished", {**INTERRUPTED, "detail": INTERRUPTED_TEXT})
            raise MaintenanceError(
                f"{restart_id} interrupted: {INTERRUPTED_TEXT}", exit_code=EXIT_INTERRUPTED
            ) from None
        facts = restart_facts(result, policy)
        journal.append(restart_id, "restart_finished", facts)
    return restart_id, facts


EXIT_INTERRUPTED = 130
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
