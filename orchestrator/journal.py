"""The incident journal: an append-only SQLite log of facts and transitions.

An incident's state is never stored, only replayed from its events (``procedure.replay``), so a
crash loses nothing that was written and a restarted orchestrator sees exactly what happened.
Events are written before acting and after each result. A per-incident lock (flock, released
by the kernel if the process dies) keeps two operators from driving one incident; adding a
fact (an approval, "fail over now") needs no lock, and the driving process picks it up.

The journal is the memory of every incident, so its damage is handled in one place beside it
(``journal_copies``: the daily copy, ``JournalDamagedError`` with the way back, ``restore``).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import logging
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import JournalError, SimrsError
from orchestrator.journal_copies import (  # the journal's damage and copies, for the journal's users
    COPIES_KEPT,
    Copy,
    JournalDamagedError,
    Restored,
    Survey,
    Verdict,
    copies,
    copies_dir,
    daily_copy,
    held_by_file,
    inspect,
    is_damage,
    locks_held,
    resolve_copy,
    restore,
    survey,
    take_copy,
    when,
)

__all__ = [
    "COPIES_KEPT",
    "DRILL_LOCK",
    "Copy",
    "Event",
    "Journal",
    "JournalDamagedError",
    "JournalError",
    "Restored",
    "Survey",
    "Verdict",
    "copies",
    "copies_dir",
    "daily_copy",
    "held_by_file",
    "inspect",
    "is_damage",
    "locks_held",
    "resolve_copy",
    "restore",
    "scrub",
    "shared",
    "survey",
    "take_copy",
    "when",
]

log = logging.getLogger(__name__)

SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential", re.IGNORECASE)
REDACTED = "***"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  incident TEXT NOT NULL,
  ts REAL NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident, seq);
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""


# `simrs drill` holds this lock while it uses the standby; the incident engine waits for it.
DRILL_LOCK = "DRILL"


@dataclass(frozen=True)
class Event:
    seq: int
    incident: str
    ts: float
    kind: str
    data: dict[str, Any]


# A known secret shorter than this is not looked for inside text: it would blank out ordinary words.
MIN_SECRET_LENGTH = 4


def scrub(value: Any, secrets: Sequence[str] = ()) -> Any:
    """Drop anything that looks like a secret before it reaches the disk: the value of a key that
    names a secret, and every occurrence of a known secret value (``secrets``, longest first)
    inside any text, e.g. a password quoted in a failure message or a token in a URL."""
    if isinstance(value, dict):
        return {
            scrub(k, secrets): (REDACTED if SECRET_KEY.search(str(k)) else scrub(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


SHARED_GROUP = "simrs"  # the operators' group of a site state shared by every operator and timer


def shared(folder: Path) -> bool:
    """Whether ``folder`` is a site state shared through the group simrs (files 0660, folders 2770)."""
    try:
        return folder.stat().st_gid == grp.getgrnam(SHARED_GROUP).gr_gid
    except (KeyError, OSError):
        return False


class Journal:
    def __init__(self, path: Path, copy_daily: bool = True) -> None:
        self.path = path
        self.secrets: tuple[str, ...] = ()  # known secret values, longest first (learn_secrets)
        self._sound = False  # checked once before this process's first write
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._opened() as db:
            db.executescript(SCHEMA)
        self.shared = shared(path.parent)
        with contextlib.suppress(OSError):
            # Incident notes can name patients' units and staff: the site's operators only (SQLite
            # gives its -wal and -shm files the same mode).
            path.chmod(0o660 if self.shared else 0o600)
        if copy_daily:
            self._copy_daily()

    def _copy_daily(self) -> None:
        """Today's copy if it is missing. Damage stops the command (``JournalDamagedError``); a copy
        that cannot be made (a full disk) must not stop an incident, so it is only said."""
        try:
            if daily_copy(self.path) is not None:
                self._sound = True  # the copy's check read the whole journal just now
        except JournalDamagedError:
            raise
        except (OSError, sqlite3.Error, JournalError) as exc:
            log.warning(
                "no daily copy of the journal %s today: %s (run `simrs journal backup`)", self.path, exc
            )

    def learn_secrets(self, values: Iterable[str]) -> None:
        """Secret values (from the inventory) that no event may hold, wherever they appear; told
        once by whoever builds the journal. Values shorter than MIN_SECRET_LENGTH are ignored."""
        known = set(self.secrets) | {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        self.secrets = tuple(sorted(known, key=lambda v: (-len(v), v)))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # an event that returned is on disk
        return db

    @contextlib.contextmanager
    def _opened(self) -> Iterator[sqlite3.Connection]:
        """Every open, read and write of the journal goes through here: damaged bytes become
        ``JournalDamagedError`` (the file named, the way back), never a raw DatabaseError."""
        try:
            with contextlib.closing(self._connect()) as db:
                yield db
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise JournalDamagedError(self.path, str(exc)) from exc
            raise

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        with self._opened() as db:
            return db.execute(sql, params).fetchall()

    def append(
        self, incident: str, kind: str, data: dict[str, Any] | None = None, ts: float | None = None
    ) -> Event:
        clean = scrub(data or {}, self.secrets)
        stamp = time.time() if ts is None else ts
        with self._opened() as db:
            if not self._sound:
                # A write can land on sound pages of a damaged file and hide the damage behind
                # new events: look at the whole file once before this process writes at all.
                found = [r[0] for r in db.execute("PRAGMA quick_check(3)")]
                if found != ["ok"]:
                    raise JournalDamagedError(self.path, "; ".join(found))
                self._sound = True
            cur = db.execute(
                "INSERT INTO events (incident, ts, kind, data) VALUES (?, ?, ?, ?)",
                (incident, stamp, kind, json.dumps(clean, sort_keys=True, default=str)),
            )
            return Event(cur.lastrowid or 0, incident, stamp, kind, clean)

    def events(self, incident: str) -> list[Event]:
        rows = self._rows(
            "SELECT seq, incident, ts, kind, data FROM events WHERE incident = ? ORDER BY seq", incident
        )
        try:
            return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
        except (TypeError, ValueError) as exc:
            raise JournalDamagedError(self.path, f"an event of {incident} does not decode: {exc}") from exc

    def incidents(self) -> list[str]:
        """Incident ids, oldest first."""
        return [r[0] for r in self._rows("SELECT incident FROM events WHERE kind = 'opened' ORDER BY seq")]

    def new_incident_id(self, now: float) -> str:
        day = time.strftime("%Y%m%d", time.localtime(now))
        taken = [i for i in self.incidents() if i.startswith(f"INC-{day}-")]
        return f"INC-{day}-{len(taken) + 1:03d}"

    def drills(self) -> list[str]:
        """Drill ids (``simrs drill``), oldest first. A drill has no 'opened' event, so it is never
        listed by ``incidents()`` nor replayed as an incident."""
        rows = self._rows("SELECT incident FROM events WHERE kind = 'drill_started' ORDER BY seq")
        return [r[0] for r in rows]

    def new_drill_id(self, now: float) -> str:
        day = time.strftime("%Y%m%d", time.localtime(now))
        taken = [i for i in self.drills() if i.startswith(f"DRILL-{day}-")]
        return f"DRILL-{day}-{len(taken) + 1:03d}"

    def held_by(self, incident: str) -> str | None:  # incident: an incident id or DRILL_LOCK
        """Who holds this lock right now (None: nobody). Does not take it."""
        return held_by_file(self.path.parent / "locks" / f"{incident}.lock")

    def lock_or_refuse(self, incident: str, purpose: str, refusal: SimrsError) -> contextlib.ExitStack:
        """The lock, held until the returned stack closes, or ``refusal`` raised when another
        process holds it (a drill and a planned restart say in their own words who is first)."""
        held = contextlib.ExitStack()
        try:
            held.enter_context(self.lock(incident, purpose))
        except JournalError:
            raise refusal from None
        return held

    def _lock_file(self, name: str) -> Any:
        lock_dir = self.path.parent / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True, mode=0o2770 if self.shared else 0o700)
        path = lock_dir / f"{name}.lock"
        handle = path.open("a+")
        if self.shared:
            with contextlib.suppress(OSError):  # another operator's file: theirs to set
                path.chmod(0o660)
        return handle

    @contextlib.contextmanager
    def exclusive(self, purpose: str, wait_s: float = 30.0) -> Iterator[None]:
        """The whole journal for a moment (checking that no incident is open, allocating the next
        id and writing its first event): two operators opening at once never share an id."""
        handle = self._lock_file("JOURNAL")
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise JournalError(
                            f"the journal {self.path} stayed busy for {wait_s:.0f} s ({purpose}): try again"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            handle.close()

    @contextlib.contextmanager
    def lock(self, incident: str, purpose: str) -> Iterator[None]:
        """Hold the incident for this process, or say who holds it."""
        handle = self._lock_file(incident)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise JournalError(
                    f"incident {incident} is being driven by {holder}; watch it with "
                    f"`simrs incident status {incident}` or wait for that run to stop"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()} ({purpose}, since {time.strftime('%H:%M:%S')})"
            )
            handle.flush()
            yield
        finally:
            handle.close()
