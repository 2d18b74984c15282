"""The monthly availability report's numbers, from the journal only (pure: no I/O, no clock).

What management reads month by month: incidents by verdict, downtime and availability, MTTR and
the time to paper mode, failovers and failbacks with their RTO and RPO, drills, backups (runs,
failures, the newest verified set's age day by day), open backfills, planned restarts and routine
maintenance, and the servers near the end of their service life.

Downtime is the time the SIMRS could not serve its users: incidents whose triage found the server
or the network down, and manual failovers, from the first report (or the failover's start) to the
moment the SIMRS served again (clipped to the month; one still open counts to the period's end).
A client-local fault or no fault is not downtime. Planned restarts are announced and done at a
quiet time: their minutes are shown apart and not counted against availability.
Times are the admin machine's local time (the hospital's), as in the evaluation report.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import ledger, procedure
from orchestrator.errors import SimrsError
from orchestrator.i18n import _

DAY = 86400.0
DOWNTIME_VERDICTS = (procedure.Verdict.SERVER, procedure.Verdict.NETWORK)
BACKUPS = "BACKUPS"  # the journal id of backup runs and verifies (`simrs backup`)
MAINTENANCE = "MAINTENANCE"  # orchestrator/maintenance.py's stream


class MonthError(SimrsError):
    """A --month that is not YYYY-MM (exit 2)."""


def parse_month(text: str, today: dt.date) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{4})-(\d{2})", text or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise MonthError(
            _(
                "--month must be a month as YYYY-MM (e.g. {example}), not {given}",
                example=f"{today:%Y-%m}",
                given=repr(text),
            )
        )
    year, month = int(match.group(1)), int(match.group(2))
    if (year, month) > (today.year, today.month):
        raise MonthError(
            _("--month {given} has not started yet (this month is {now})", given=text, now=f"{today:%Y-%m}")
        )
    if year < 2000:
        raise MonthError(_("--month {given} is before the year 2000: give the month as YYYY-MM", given=text))
    return year, month


def bounds(year: int, month: int) -> tuple[float, float]:
    """The month's first and last instant (local time) as epoch seconds."""
    days = calendar.monthrange(year, month)[1]
    start = time.mktime((year, month, 1, 0, 0, 0, 0, 0, -1))
    end = time.mktime((year, month, days, 0, 0, 0, 0, 0, -1)) + DAY
    return start, end


@dataclass(frozen=True)
class IncidentRow:
    id: str
    opened_at: float
    verdict: str
    phase: str
    downtime_s: float | None  # inside the month; None when not downtime (client-local, no fault)
    repair_s: float | None  # first report -> served again (None: not back yet, or not an outage)
    to_paper_s: float | None  # first report -> the paper-mode notice sent
    failover: bool


@dataclass(frozen=True)
class Failover:
    incident: str
    at: float
    rto_s: float | None  # first report (or the failover's start) -> the standby served
    rpo_s: float | None  # the restore's upper bound of lost data
    manual: bool


@dataclass(frozen=True)
class Drill:
    id: str
    at: float
    ok: bool
    rto_s: float | None
    rpo_s: float | None


@dataclass
class Monthly:
    year: int
    month: int
    start: float
    end: float  # the period's end: the month's end, or now for the month in progress
    incidents: list[IncidentRow] = field(default_factory=list)
    by_verdict: dict[str, int] = field(default_factory=dict)
    downtime_s: float = 0.0
    availability_pct: float = 100.0
    mttr_s: float | None = None
    to_paper_s: float | None = None
    daily_availability: list[float] = field(default_factory=list)  # one % per day of the period
    failovers: list[Failover] = field(default_factory=list)
    failbacks: list[dict[str, Any]] = field(default_factory=list)  # {incident, at, ok, seconds}
    drills: list[Drill] = field(default_factory=list)
    backups: dict[str, Any] = field(default_factory=dict)  # runs, failed, verifies, bad
    backup_age_days: list[float | None] = field(default_factory=list)  # per day, newest verified set
    open_backfills: list[dict[str, Any]] = field(default_factory=list)  # {incident, unit, since}
    restarts: list[dict[str, Any]] = field(default_factory=list)  # {id, at, ok, seconds}
    maintenance: list[dict[str, Any]] = field(default_factory=list)  # {what, host, on, by}
    servers: list[dict[str, Any]] = field(default_factory=list)  # {host, since, years, state}

    @property
    def empty(self) -> bool:
        return not (self.incidents or self.drills or self.backups.get("runs") or self.restarts)

    @property
    def days(self) -> int:
        return len(self.daily_availability)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _overlap(a: float, b: float, lo: float, hi: float) -> float:
    return max(0.0, min(b, hi) - max(a, lo))


def _iso(text: Any) -> float | None:
    return ledger._iso(text)  # one parser for the restore's UTC stamps


def _first(events: Sequence[Any], kind: str, **match: Any) -> Any:
    return next(
        (e for e in events if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())), None
    )


def _served_at(inc: procedure.Incident, events: Sequence[Any]) -> float | None:
    """When the SIMRS served users again: verified after the repair or on the standby, else the
    back-to-normal notice, else the incident's resolution."""
    if inc.verified_at:
        return inc.verified_at
    verify = _first(events, "failover_step", step="verify", ok=True)
    if verify is not None:
        return verify.ts
    normal = next(
        (
            e.ts
            for e in events
            if e.kind == "notice" and e.data.get("event") in ledger.BACK_TO_NORMAL and e.data.get("sent")
        ),
        None,
    )
    return normal or next((e.ts for e in events if e.kind == "resolved"), None)


def _incident(
    inc: procedure.Incident, events: Sequence[Any], start: float, end: float
) -> tuple[IncidentRow, tuple[float, float] | None, Failover | None]:
    outage = bool(inc.manual_failover) or inc.verdict in DOWNTIME_VERDICTS
    served = _served_at(inc, events)
    paper = _first(events, "notice", event="outage_paper_mode", sent=True)
    span = (inc.opened_at, served if served else end) if outage else None
    took_over = "ip_takeover" in inc.failover_done
    row = IncidentRow(
        inc.id,
        inc.opened_at,
        "MANUAL_FAILOVER" if inc.manual_failover and not inc.verdict else str(inc.verdict or "-"),
        str(inc.phase),
        _overlap(*span, start, end) if span else None,
        (served - inc.opened_at) if outage and served else None,
        (paper.ts - inc.opened_at) if paper else None,
        took_over,
    )
    failover = None
    if took_over:
        verify = _first(events, "failover_step", step="verify", ok=True)
        rpo = inc.restored.get("rpo_seconds")
        failover = Failover(
            inc.id,
            verify.ts if verify else inc.opened_at,
            (verify.ts - inc.opened_at) if verify else None,
            float(rpo) if rpo is not None else None,
            bool(inc.manual_failover),
        )
    return row, span, failover


def _next_day(day: float) -> float:
    """The next local midnight (a day is not always 86400 s where clocks change)."""
    return time.mktime((*time.localtime(day + DAY + 7200)[:3], 0, 0, 0, 0, 0, -1))


def _daily(spans: Sequence[tuple[float, float]], start: float, end: float) -> list[float]:
    """Availability % per day of the period (the last day counted to the period's end)."""
    out = []
    day = start
    while day < end - 1e-6:
        nxt = min(day + DAY, end)
        if nxt - day < 1:
            break
        down = sum(_overlap(a, b, day, nxt) for a, b in spans)
        out.append(round(100.0 * (1 - min(down, nxt - day) / (nxt - day)), 3))
        day = _next_day(day)  # DST-safe
    return out


def _backups(
    records: Sequence[Any], drills: Sequence[Any], start: float, end: float
) -> tuple[dict[str, Any], list[float | None]]:
    runs = [e for e in records if e.kind == "backup_run" and start <= e.ts < end]
    verifies = [e for e in records if e.kind == "backup_verify" and start <= e.ts < end]
    # (when it was known good, when the set was taken): a verify that found it good, or a drill
    # that restored it and served from it.
    good: list[tuple[float, float]] = []
    for e in records:
        if e.kind == "backup_verify":
            for s in e.data.get("sets") or []:
                taken = _iso(s.get("created_at"))
                if s.get("state") == "ok" and taken is not None:
                    good.append((e.ts, taken))
    for e in drills:
        taken = _iso((e.data.get("restore") or {}).get("created_at"))
        if e.kind == "drill_finished" and e.data.get("ok") and taken is not None:
            good.append((e.ts, taken))
    ages: list[float | None] = []
    day = start
    while day < end - 1:
        cut = min(day + DAY, end)
        known = [taken for at, taken in good if at < cut]
        ages.append(round((cut - max(known)) / DAY, 2) if known else None)
        day = _next_day(day)
    summary = {
        "runs": len(runs),
        "failed": sum(not e.data.get("ok") for e in runs),
        "verifies": len(verifies),
        "bad_sets": sum(s.get("state") == "BAD" for e in verifies for s in (e.data.get("sets") or [])),
    }
    return summary, ages


def _servers(
    in_service: Mapping[str, dt.date | None], life_years: float, checks: Sequence[Any], end: float
) -> list[dict[str, Any]]:
    """Servers past or within half a year of their service life at the period's end: from the
    inventory's dates, else the newest maintenance check's age items (firmware estimates)."""
    today = dt.date.fromtimestamp(end - 1)
    rows = []
    for host, since in in_service.items():
        if since is None:
            continue
        years = (today - since).days / 365.25
        state = "due" if years >= life_years else "soon" if years >= life_years - 0.5 else "ok"
        rows.append({"host": host, "since": since.isoformat(), "years": round(years, 1), "state": state})
    known = {r["host"] for r in rows}
    newest = max((c for c in checks if c.ts < end), key=lambda c: c.ts, default=None)
    for item in (newest.data.get("items") or []) if newest else []:
        late = item.get("state") in ("soon", "due")
        if item.get("key") == "age" and item.get("host") not in known and late:
            rows.append({"host": item["host"], "since": "-", "years": None, "state": item["state"]})
    return [r for r in rows if r["state"] in ("soon", "due")]


def _incidents(report: Monthly, incidents: Mapping[str, Sequence[Any]], units: Mapping[str, str]) -> list:
    """The incidents of the period into ``report`` (rows, failovers, failbacks, open backfills);
    returns the outages' (from, to) spans."""
    start, end = report.start, report.end
    spans: list[tuple[float, float]] = []
    for incident_id, events in incidents.items():
        inc = procedure.replay(incident_id, events)
        row, span, failover = _incident(inc, events, start, end)
        inside = start <= inc.opened_at < end or (span is not None and _overlap(*span, start, end) > 0)
        if not inside:
            continue
        report.incidents.append(row)
        if span:
            spans.append(span)
        if failover and start <= failover.at < end:
            report.failovers.append(failover)
        began = None
        for e in events:
            if e.kind == "action_started" and e.data.get("action") == "failback":
                began = e.ts
            elif e.kind == "failback" and start <= e.ts < end:
                report.failbacks.append(
                    {"incident": inc.id, "at": e.ts, "ok": bool(e.data.get("ok")), "seconds": e.ts - began}
                    if began
                    else {"incident": inc.id, "at": e.ts, "ok": bool(e.data.get("ok")), "seconds": None}
                )
        for r in ledger.ledger(inc, list(events), dict(units)) if units else ():
            if r.open and r.paper_to is not None:
                report.open_backfills.append({"incident": inc.id, "unit": r.unit, "since": r.paper_to})
    return spans


def summarize(
    year: int,
    month: int,
    incidents: Mapping[str, Sequence[Any]],
    drills: Mapping[str, Sequence[Any]],
    restarts: Mapping[str, Sequence[Any]],
    maintenance: Sequence[Any],
    backups: Sequence[Any],
    now: float,
    units: Mapping[str, str] | None = None,
    in_service: Mapping[str, dt.date | None] | None = None,
    life_years: float = 5.0,
) -> Monthly:
    """Everything the monthly report shows, from the journal's records (events by stream id)."""
    start, month_end = bounds(year, month)
    end = min(month_end, max(now, start))
    report = Monthly(year, month, start, end)
    spans = _incidents(report, incidents, units or {})
    report.incidents.sort(key=lambda r: r.opened_at)
    for r in report.incidents:
        report.by_verdict[r.verdict] = report.by_verdict.get(r.verdict, 0) + 1
    report.downtime_s = sum(r.downtime_s or 0.0 for r in report.incidents)
    period = max(end - start, 1.0)
    report.availability_pct = round(100.0 * (1 - min(report.downtime_s, period) / period), 3)
    report.mttr_s = _mean([r.repair_s for r in report.incidents if r.repair_s is not None])
    report.to_paper_s = _mean([r.to_paper_s for r in report.incidents if r.to_paper_s is not None])
    report.daily_availability = _daily(spans, start, end)
    drill_events = [e for events in drills.values() for e in events]
    for drill_id, events in drills.items():
        done = next((e for e in events if e.kind == "drill_finished"), None)
        if done is not None and start <= done.ts < end:
            d = done.data
            report.drills.append(
                Drill(drill_id, done.ts, bool(d.get("ok")), d.get("rto_seconds"), d.get("rpo_seconds"))
            )
    report.drills.sort(key=lambda d: d.at)
    report.backups, report.backup_age_days = _backups(backups, drill_events, start, end)
    for restart_id, events in restarts.items():
        done = next((e for e in events if e.kind == "restart_finished"), None)
        if done is not None and start <= done.ts < end:
            d = done.data
            report.restarts.append(
                {"id": restart_id, "at": done.ts, "ok": bool(d.get("ok")), "seconds": d.get("seconds")}
            )
    first, last = dt.date.fromtimestamp(start), dt.date.fromtimestamp(month_end - 1)
    for e in maintenance:
        if e.kind == "maintenance_done" and first.isoformat() <= str(e.data.get("on")) <= last.isoformat():
            report.maintenance.append({k: e.data.get(k) for k in ("what", "host", "on", "by")})
    checks = [e for e in maintenance if e.kind == "maintenance_check"]
    report.servers = _servers(in_service or {}, life_years, checks, end)
    return report
