"""The paper-mode ledger: which unit worked on paper, when, and which records it must still type
into the SIMRS (pure: from the incident's journal and the inventory's units; no I/O).

Paper mode starts with the paper-mode notice a unit's PCs were sent and ends with the notice that
the SIMRS works again. The records to re-enter: after a failover, from the restored data's last
transaction to the moment the standby served (verified); after a repair, from the first report of
the outage to the verification. A unit's backfill is closed by `simrs incident backfill --done`.
"""

from __future__ import annotations

import calendar
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
