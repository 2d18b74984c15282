"""Scheduled runs (SOP step 5): systemd timers, or cron where there is no systemd.

Owns the jobs (nightly dump, weekly physical backup, nightly verify, binlog shipping every few
minutes, the monthly DR drill, the weekly maintenance check and, when asked for, the planned
restart), their times from the inventory's ``simrs_schedule``, the unit
files rendered from them (pure functions), and installing or removing exactly the files this
module wrote (each carries ``MARKER``) in one directory, atomically. Running ``systemctl`` is
the CLI's call, through ``Systemctl``; nothing here looks at the clock.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import HostError, InputError

PREFIX = "simrs-"
MARKER = "# Managed by `simrs schedule install` (simrs.downtime): `simrs schedule remove` deletes it."
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
CRON_DIR = Path("/etc/cron.d")
CRON_FILE = "simrs-schedule"
SYSTEMD_RUNNING = Path("/run/systemd/system")
OPERATOR = "simrs-schedule"  # who the journal names for scheduled runs


@dataclass(frozen=True)
class Job:
    key: str  # the simrs_schedule key
    description: str
    args: tuple[str, ...]  # the simrs command after the global options
    default: str  # OnCalendar
    random_delay: str  # RandomizedDelaySec: spreads load, never moves a job by much
    timeout: str  # TimeoutStartSec: a hung run must not block the next ones forever

    @property
    def unit(self) -> str:
        return PREFIX + self.key.replace("_", "-")


JOBS: tuple[Job, ...] = (
    Job("backup_dump", "nightly backup (mariadb-dump) onto the external disk",
        ("backup", "run", "--method", "dump"), "*-*-* 01:30", "10min", "6h"),
    Job("backup_physical", "weekly physical backup (mariadb-backup) onto the external disk",
        ("backup", "run", "--method", "physical"), "Sun *-*-* 02:30", "10min", "8h"),
    Job("backup_verify", "re-hash the backups on the external disk against their manifests",
        ("backup", "verify"), "*-*-* 05:00", "10min", "4h"),
    Job("binlog_ship", "ship the binary logs to the external disk (point-in-time recovery)",
        ("backup", "ship-binlogs"), "*:0/5", "30s", "10min"),
    Job("drill", "monthly DR drill: restore onto the standby on a test address, measure RTO/RPO",
        ("drill",), "Sun *-*-01..07 03:00", "15min", "4h"),
    Job("maintenance_check", "SOP 5: what preventive maintenance is due (age, restart, UPS, genset, disks)",
        ("maintain", "check", "--notify"), "Mon *-*-* 07:00", "10min", "30min"),
    # Off unless the inventory sets a time: it restarts the SIMRS server (only when due, in a quiet
    # time, announced; a restart that does not come back opens an incident).
    Job("planned_restart", "SOP 5.2: planned restart of the SIMRS server at a quiet time, when due",
        ("maintain", "restart", "--if-due", "--incident-on-failure"), "", "5min", "2h"),
)  # fmt: skip
JOB_KEYS = tuple(job.key for job in JOBS)

# Safe in a unit file's ExecStart and a cron line without quoting: no spaces, quotes, specifiers.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]+$")


# ---- settings -------------------------------------------------------------------------------


def resolve(settings: Mapping[str, Any] | None) -> dict[str, str]:
    """The inventory's simrs_schedule over the defaults: {job key: OnCalendar}; a job set to
    null, '' or false is left out. Unknown keys and non-text times are refused (exit code 2)."""
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise InputError(
            f"simrs_schedule must be a mapping of job to time (keys: {', '.join(JOB_KEYS)}), not {settings!r}"
        )
    unknown = sorted(set(settings) - set(JOB_KEYS))
    if unknown:
        raise InputError(
            f"simrs_schedule has unknown job(s) {', '.join(map(str, unknown))}: "
            f"the jobs are {', '.join(JOB_KEYS)}"
        )
    chosen: dict[str, str] = {}
    for job in JOBS:
        value = settings.get(job.key, job.default)
        if value in (None, "", False):
            continue
        if not isinstance(value, str) or "\n" in value or not value.strip():
            raise InputError(
                f"simrs_schedule.{job.key} is {value!r}: give a systemd calendar time in quotes "
                f"(e.g. {job.default!r}) or null to switch the job off"
            )
        chosen[job.key] = " ".join(value.split())
    return chosen


def job(key: str) -> Job:
    return next(j for j in JOBS if j.key == key)


def check_paths(simrs: Path, inventory: Path) -> None:
    for what, path in (("the simrs executable", simrs), ("the inventory", inventory)):
        if not SAFE_PATH.match(str(path)):
            raise InputError(
                f"{what} is at {str(path)!r}: scheduled commands need an absolute path of letters, "
                "digits and ._-/+@ only (no spaces or quotes); install or link it under such a path"
            )


def validate(schedule: Mapping[str, str], analyze: Callable[[str], str | None] | None) -> None:
    """Every time must parse. ``analyze(expr)`` returns an error text or None (systemd-analyze
    calendar where it exists); without it the times must be in the form cron can express."""
    for key, expr in schedule.items():
        if analyze is not None:
            problem = analyze(expr)
            if problem:
                raise InputError(
                    f"simrs_schedule.{key} is {expr!r}, which systemd cannot read ({problem}): "
                    f"write e.g. {job(key).default!r} (see `man systemd.time`, CALENDAR EVENTS)"
                )
        else:
            to_cron(key, expr)


# ---- systemd ---------------------------------------------------------------------------------


def command(simrs: Path, inventory: Path, entry: Job, vault: str | None = None) -> str:
    """The job's command line; ``vault`` names the file with the vault password (never the password)."""
    opts = ("--vault-password-file", vault) if vault else ()
    return " ".join((str(simrs), "-i", str(inventory), *opts, *entry.args))


def check_vault_file(vault: Path) -> None:
    """The vault password a job reads must be root's alone (0600 or 0400, owned by root)."""
    check_paths(vault, vault)
    info = vault.stat()
    if info.st_mode & 0o077 or info.st_uid != 0:
        raise InputError(
            f"the vault password file {vault} can be read by others (mode {info.st_mode & 0o777:o}, "
            f"owner uid {info.st_uid}): scheduled jobs only use a root-only file "
            f"(`chown root:root {vault} && chmod 0600 {vault}`)"
        )


def render_service(entry: Job, simrs: Path, inventory: Path, vault: Path | None = None) -> str:
    # systemd hands the vault password to the job as a credential (LoadCredential=): a copy only
    # the job can read, under %d, never in its environment or on its command line.
    credential = f"LoadCredential=vault:{vault}\n" if vault else ""
    return f"""{MARKER}
[Unit]
Description=SIMRS: {entry.description}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
Environment=SIMRS_OPERATOR={OPERATOR}
{credential}ExecStart={command(simrs, inventory, entry, "%d/vault" if vault else None)}
TimeoutStartSec={entry.timeout}
"""


def render_timer(entry: Job, calendar: str) -> str:
    return f"""{MARKER}
[Unit]
Description=SIMRS: when to run the {entry.description}

[Timer]
OnCalendar={calendar}
# A run missed while the machine was off runs at the next boot.
Persistent=true
RandomizedDelaySec={entry.random_delay}
Unit={entry.unit}.service

[Install]
WantedBy=timers.target
"""


def render_systemd(
    schedule: Mapping[str, str], simrs: Path, inventory: Path, vault: Path | None = None
) -> dict[str, str]:
    """{file name: content}: a .service and a .timer per scheduled job."""
    check_paths(simrs, inventory)
    if vault is not None:
        check_vault_file(vault)
    files = {}
    for key, calendar in schedule.items():
        entry = job(key)
        files[f"{entry.unit}.service"] = render_service(entry, simrs, inventory, vault)
        files[f"{entry.unit}.timer"] = render_timer(entry, calendar)
    return files


# ---- cron ------------------------------------------------------------------------------------

DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
SHORTHANDS = {
    "minutely": "* * * * *",
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}
CALENDAR = re.compile(
    r"^(?:(?P<dow>[A-Za-z]{3}(?:(?:,|\.\.)[A-Za-z]{3})*)\s+)?"
    r"(?:\*-\*-(?P<day>\*|\d{1,2}(?:\.\.\d{1,2})?)\s+)?"
    r"(?P<hour>\*|\d{1,2}):(?P<minute>\d{1,2}(?:/\d{1,2})?)(?::0{1,2})?$"
)


def _cron_dow(text: str) -> str:
    parts = []
    for part in text.split(","):
        ends = part.split("..")
        try:
            numbers = [DAYS.index(end.capitalize()) for end in ends]
        except ValueError:
            raise InputError(f"{part!r} is not a weekday: use Mon, Tue, Wed, Thu, Fri, Sat, Sun") from None
        parts.append("-".join(str(n) for n in numbers))
    return ",".join(parts)


def to_cron(key: str, expr: str) -> tuple[str, int | None]:
    """(the five cron fields, a weekday 0-6 the command must also check, or None).

    cron runs a job when EITHER its day of month or its weekday matches, systemd when both do:
    "Sun *-*-01..07" (the first Sunday) becomes days 1-7 plus a weekday test in the command."""
    text = " ".join(expr.split())
    if text.lower() in SHORTHANDS:
        return SHORTHANDS[text.lower()], None
    match = CALENDAR.match(text)
    bad = InputError(
        f"simrs_schedule.{key} is {expr!r}, which this machine's cron cannot express (it has no "
        "systemd): use the form [Weekday] [*-*-DAY[..DAY]] HH:MM or *:0/N (every N minutes)"
    )
    if not match:
        raise bad
    hour, minute, day, dow = match["hour"], match["minute"], match["day"], match["dow"]
    if "/" in minute:
        start, step = minute.split("/")
        if int(start) > 59 or not 1 <= int(step) <= 59:
            raise bad
        minute_field = f"*/{int(step)}" if int(start) == 0 else f"{int(start)}-59/{int(step)}"
    else:
        if int(minute) > 59:
            raise bad
        minute_field = str(int(minute))
    if hour != "*" and int(hour) > 23:
        raise bad
    hour_field = hour if hour == "*" else str(int(hour))
    day_field = "*"
    if day and day != "*":
        ends = [int(d) for d in day.split("..")]
        if not all(1 <= d <= 31 for d in ends) or ends != sorted(ends):
            raise bad
        day_field = "-".join(str(d) for d in ends)
    dow_field = _cron_dow(dow) if dow else "*"
    guard = None
    if day_field != "*" and dow_field != "*":
        if not dow_field.isdigit():
            raise bad  # one weekday only, checked in the command
        guard, dow_field = int(dow_field), "*"
    return f"{minute_field} {hour_field} {day_field} * {dow_field}", guard


def render_cron(
    schedule: Mapping[str, str], simrs: Path, inventory: Path, vault: Path | None = None
) -> dict[str, str]:
    """{file name: content}: one /etc/cron.d file. flock keeps a slow run from overlapping the
    next; the output goes to syslog under the job's name. ``vault``: a root-only password file."""
    check_paths(simrs, inventory)
    if vault is not None:
        check_vault_file(vault)
    lines = [
        MARKER,
        "# Times are this machine's local time. cron has no catch-up: a run missed while the",
        "# machine was off is skipped (systemd timers catch up; see `simrs schedule`).",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    for key, calendar in schedule.items():
        entry = job(key)
        fields, weekday = to_cron(key, calendar)
        run = (
            f"SIMRS_OPERATOR={OPERATOR} flock -n /run/lock/{entry.unit}.lock "
            f"{command(simrs, inventory, entry, str(vault) if vault else None)} 2>&1 | logger -t {entry.unit}"
        )
        if weekday is not None:
            # cron would run on every day of the range OR every such weekday; systemd on both.
            run = f'[ "$(date +\\%w)" = {weekday} ] && {run}'
        lines += [f"# {entry.description} (OnCalendar {calendar})", f"{fields} root {run}"]
    return {CRON_FILE: "\n".join(lines) + "\n"}


def cron_jobs(text: str) -> list[dict[str, str]]:
    """The jobs of a cron file render_cron wrote: {job, when, next (''), command}."""
    rows = []
    lines = text.splitlines()
    for comment, line in itertools.pairwise(lines):
        found = re.match(r"^# (?P<what>.+) \(OnCalendar (?P<when>.+)\)$", comment)
        if found and line and not line.startswith("#"):
            unit = re.search(r"logger -t (\S+)$", line)
            rows.append(
                {
                    "job": unit[1] if unit else found["what"],
                    "when": found["when"],
                    "next": "",
                    "command": line,
                }
            )
    return rows


# ---- files on disk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    write: dict[str, str]  # new or changed
    remove: tuple[str, ...]  # installed by us, no longer wanted
    unchanged: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return bool(self.write or self.remove)


def installed(unit_dir: Path) -> dict[str, str]:
    """The files this module wrote in unit_dir (prefix and marker), never anyone else's."""
    found = {}
    if not unit_dir.is_dir():
        return found
    for path in sorted(unit_dir.glob(f"{PREFIX}*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.startswith(MARKER):
            found[path.name] = text
    return found


def plan(desired: Mapping[str, str], current: Mapping[str, str]) -> Plan:
    return Plan(
        write={name: text for name, text in desired.items() if current.get(name) != text},
        remove=tuple(sorted(set(current) - set(desired))),
        unchanged=tuple(sorted(name for name, text in desired.items() if current.get(name) == text)),
    )


def write_atomic(path: Path, text: str) -> None:
    """Under a temporary name in the same folder, fsynced, then renamed: never half a unit file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.chmod(0o644)
    tmp.replace(path)


def apply(unit_dir: Path, change: Plan) -> None:
    if not unit_dir.is_dir():
        raise InputError(f"{unit_dir} does not exist: create it, or give another --unit-dir")
    if not os.access(unit_dir, os.W_OK):
        raise InputError(f"cannot write to {unit_dir}: run as root (sudo), or give another --unit-dir")
    for name, text in change.write.items():
        write_atomic(unit_dir / name, text)
    for name in change.remove:
        (unit_dir / name).unlink(missing_ok=True)


def timer_calendar(text: str) -> str | None:
    match = re.search(r"^OnCalendar=(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else None


def service_command(text: str) -> str | None:
    match = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else None


# ---- systemctl -------------------------------------------------------------------------------


class Systemctl:
    """The few systemctl calls, through one runner (tests pass a fake; nothing else shells out)."""

    def __init__(self, runner: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None) -> None:
        self._runner = runner or _run

    def _call(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self._runner(["systemctl", *args])
        if proc.returncode != 0:
            raise HostError(f"systemctl {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def reload(self) -> None:
        self._call("daemon-reload")

    def enable(self, timers: list[str]) -> None:
        if timers:
            self._call("enable", "--now", *timers)

    def disable(self, timers: list[str]) -> None:
        if timers:
            self._call("disable", "--now", *timers)

    def next_run(self, timer: str) -> str:
        proc = self._runner(["systemctl", "show", "--property=NextElapseUSecRealtime", "--value", timer])
        return proc.stdout.strip() if proc.returncode == 0 else ""


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def analyze_calendar(expr: str) -> tuple[str | None, str]:
    """(error or None, next elapse) from systemd-analyze calendar."""
    proc = _run(["systemd-analyze", "calendar", expr])
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return (lines[-1] if lines else "not a calendar time"), ""
    match = re.search(r"Next elapse:\s*(.+)$", proc.stdout, re.MULTILINE)
    return None, match[1].strip() if match else ""
