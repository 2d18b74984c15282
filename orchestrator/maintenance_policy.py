"""The maintenance policy (SOP 5) as the inventory gives it: ``simrs_maintenance`` (quiet times,
how often each routine is due, disk thresholds) and each server's ``simrs_in_service_since``, read
and checked with a clear refusal for each bad setting; and the quiet times it defines (pure)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.ansible import parse_inventory
from orchestrator.errors import InputError

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
    "backfill_due_days": 3,  # paper records still not typed in after this many days: due
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class MaintenanceError(InputError):
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
    backfill_due_days: int = 3
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
            backfill_due_days=int(_positive(s, "backfill_due_days", 1, 365)),
            in_service={
                h: parse_date(v["simrs_in_service_since"], f"simrs_in_service_since of {h}")
                for h, v in mine.items()
                if v.get("simrs_in_service_since")
            },
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


def backup_encryption(v: Mapping[str, Any]) -> str:
    """How the primary's backups are encrypted, from its variables: age (backup_recipients), openssl
    (the older backup_encryption_key passphrase) or none."""
    if v.get("backup_recipients"):
        return "age"
    return "openssl" if v.get("backup_encryption_key") else "none"
