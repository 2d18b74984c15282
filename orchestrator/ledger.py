"""The paper-mode ledger: which unit worked on paper, when, and which records it must still type
into the SIMRS (pure: from the incident's journal and the inventory's units; no I/O).

Paper mode starts with the paper-mode notice a unit's PCs were sent and ends with the notice that
the SIMRS works again. The records to re-enter: after a failover, from the restored data's last
transaction to the moment the standby served (verified); after a repair, from the first report of
the outage to the verification. A unit's backfill is closed by `simrs incident backfill --done`.

The SIMRS's own count next to the units' (``count_query``, ``simrs_count``): the visits in
``reg_periksa`` whose registration time (tgl_registrasi + jam_reg, the server's clock) lies in the
range. The range is the time the SIMRS took no entries (the data the standby restored ends at its
start; the server was down during a repair), so every such visit was typed in afterwards. The
query runs through the admin machine's existing probe (admin_check.yml, server_probe's
``server_probe_app_query``, the application's own account through the service IP).
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InputError
from orchestrator.procedure import Incident, replay

BACK_TO_NORMAL = ("restored", "restored_on_standby")


class BackfillError(InputError):
    """A backfill that cannot be recorded (exit 2): the message says why; nothing was written."""


@dataclass(frozen=True)
class UnitBackfill:
    unit: str
    pcs: tuple[str, ...]
    paper_from: float | None  # the paper-mode notice reached the unit
    paper_to: float | None  # the back-to-normal notice (None: still on paper)
    range_from: float | None  # the records of this time range must be typed in
    range_to: float | None
    done: dict[str, Any] | None = None  # {by, count, at} once the unit finished

    @property
    def open(self) -> bool:
        return self.done is None


def _iso(text: Any) -> float | None:
    """'YYYY-MM-DDTHH:MM:SSZ' (UTC, as the restore publishes) -> epoch seconds."""
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


def _record_range(inc: Incident, events: list[Any]) -> tuple[float | None, float | None]:
    served = next(
        (
            e.ts
            for e in events
            if e.kind == "failover_step" and e.data.get("step") == "verify" and e.data.get("ok")
        ),
        None,
    )
    if "ip_takeover" in inc.failover_done:
        anchor = _iso((inc.restored.get("rpo_anchor") or {}).get("at")) or inc.opened_at
        return anchor, served
    return inc.opened_at or inc.outage_confirmed_at, inc.verified_at


def ledger(inc: Incident, events: list[Any], units: dict[str, str]) -> list[UnitBackfill]:
    """One row per unit whose PCs were sent the paper-mode notice (every unit when the notice
    names no PC), in the inventory's order of units."""
    paper = next(
        (
            e
            for e in events
            if e.kind == "notice" and e.data.get("event") == "outage_paper_mode" and e.data.get("sent")
        ),
        None,
    )
    if paper is None:
        return []
    normal = next(
        (
            e
            for e in events
            if e.kind == "notice" and e.data.get("event") in BACK_TO_NORMAL and e.data.get("sent")
        ),
        None,
    )
    told = {
        key.split(":", 1)[1]
        for key, channel in (paper.data.get("channels") or {}).items()
        if key.startswith("screen:") and channel.get("ok")
    }
    pcs_of: dict[str, list[str]] = {}
    for pc, unit in units.items():
        if not told or pc in told:
            pcs_of.setdefault(unit, []).append(pc)
    done = {e.data["unit"]: {**e.data, "at": e.ts} for e in events if e.kind == "backfill_done"}
    start, end = _record_range(inc, events)
    return [
        UnitBackfill(
            unit,
            tuple(sorted(pcs)),
            paper.ts,
            normal.ts if normal else None,
            start,
            end,
            done.get(unit),
        )
        for unit, pcs in pcs_of.items()
    ]


def record_done(
    journal: Any, inc: Incident, units: dict[str, str], unit: str, by: str, count: int | None
) -> list[UnitBackfill]:
    """Close a unit's backfill (journaled: who, how many), after check_done; the ledger after it."""
    check_done(ledger(inc, journal.events(inc.id), units), unit, set(units.values()), count)
    journal.append(inc.id, "backfill_done", {"unit": unit, "by": by, "count": count})
    return ledger(inc, journal.events(inc.id), units)


def check_done(rows: list[UnitBackfill], unit: str, all_units: set[str], count: int | None) -> UnitBackfill:
    """The row a `--done` closes, or BackfillError saying why it cannot."""
    if unit not in all_units:
        raise BackfillError(
            f"there is no unit {unit!r} in the inventory (simrs_unit): {', '.join(sorted(all_units))}"
        )
    row = next((r for r in rows if r.unit == unit), None)
    if row is None:
        raise BackfillError(f"unit {unit} was not on paper in this incident: there is nothing to enter")
    if not row.open:
        by = (row.done or {}).get("by", "?")
        raise BackfillError(f"the backfill of {unit} is already closed (by {by}); nothing was written")
    if row.paper_to is None:
        raise BackfillError(
            f"{unit} still works on paper (the SIMRS is not back yet): enter the records afterwards"
        )
    if count is not None and count < 0:
        raise BackfillError(f"--count must be 0 or more, not {count}")
    return row


@dataclass(frozen=True)
class OpenBackfill:
    incident: str
    unit: str
    since: float  # the SIMRS was back (the unit could start typing in)
    days: float  # since then, at ``now``
    due: bool  # open longer than the allowed days


def open_backfills(
    incidents: dict[str, list[Any]], units: dict[str, str], now: float, due_days: int
) -> list[OpenBackfill]:
    """Every unit's backfill still open once the SIMRS was back, over all incidents (for
    `simrs maintain check`): due after ``due_days`` days."""
    found = []
    for incident_id, events in incidents.items():
        inc = replay(incident_id, events)
        for row in ledger(inc, events, units):
            if row.open and row.paper_to is not None:
                days = max(0.0, now - row.paper_to) / 86400
                found.append(
                    OpenBackfill(incident_id, row.unit, row.paper_to, round(days, 1), days >= due_days)
                )
    return found


# The SIMRS table whose rows the paper forms become (SIMRS Khanza's registrations).
COUNT_TABLE = "reg_periksa"


def count_query(start: float, end: float) -> str:
    """The count of visits registered inside (start, end] by the server's own clock; the range's
    start is the restored data's last transaction (already in the data) or the first report. Only
    integers go into the statement; the date bounds let MariaDB use the tgl_registrasi index."""
    low, high = math.floor(start), math.ceil(end)
    if high < low:
        raise ValueError(f"the range ends before it starts: {start} > {end}")
    at = "TIMESTAMP(tgl_registrasi, jam_reg)"
    # S608: only integers and this module's own names go into the statement.
    return (
        f"SELECT COUNT(*) AS entered_later FROM {COUNT_TABLE}"  # noqa: S608
        f" WHERE tgl_registrasi BETWEEN DATE(FROM_UNIXTIME({low})) AND DATE(FROM_UNIXTIME({high}))"
        f" AND {at} > FROM_UNIXTIME({low}) AND {at} <= FROM_UNIXTIME({high})"
    )


@dataclass(frozen=True)
class SimrsCount:
    count: int | None  # None: the SIMRS could not be asked (detail says why)
    range_from: float | None
    range_to: float | None
    served_by: str | None = None
    detail: str = ""
    table: str = COUNT_TABLE


def count_range(rows: list[UnitBackfill]) -> tuple[float, float] | None:
    """The range the SIMRS can be asked about: every unit's is the incident's; none while the
    SIMRS is not back (a unit still on paper) or when the journal has no range."""
    if not rows or any(r.paper_to is None for r in rows):
        return None
    row = rows[0]
    if row.range_from is None or row.range_to is None:
        return None
    return row.range_from, row.range_to


def simrs_count(data: dict[str, Any], start: float, end: float) -> SimrsCount:
    """admin_check's published view (``{localhost: {checks: {db_query}, db, served_by}}``) ->
    the count, or why there is none (the probe's own words)."""
    view = data.get("localhost") or {}
    query = (view.get("checks") or {}).get("db_query") or {}
    row = view.get("db") or {}
    value = row.get("entered_later")
    if query.get("ok") and value is not None:
        try:
            return SimrsCount(int(value), start, end, view.get("served_by"))
        except (TypeError, ValueError):
            pass
    detail = str(query.get("detail") or "the probe published no answer")
    return SimrsCount(None, start, end, view.get("served_by"), detail)
