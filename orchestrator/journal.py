"""The incident journal: an append-only SQLite log of facts and transitions.

An incident's state is never stored, only replayed from its events (``procedure.replay``), so a
crash loses nothing that was written and a restarted orchestrator sees exactly what happened.
Events are written before acting and after each result. A per-incident lock (flock, released
by the kernel if the process dies) keeps two operators from driving one incident; adding a
fact (an approval, "fail over now") needs no lock, and the driving process picks it up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import SimrsError

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


class JournalError(SimrsError):
    """The journal refuses (locked incident, unknown id); the message says what to do."""


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


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.secrets: tuple[str, ...] = ()  # known secret values, longest first (learn_secrets)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)
        with contextlib.suppress(OSError):
            path.chmod(0o600)  # incident notes can name patients' units and staff

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

    def append(
        self, incident: str, kind: str, data: dict[str, Any] | None = None, ts: float | None = None
    ) -> Event:
        clean = scrub(data or {}, self.secrets)
        stamp = time.time() if ts is None else ts
        with contextlib.closing(self._connect()) as db:
            cur = db.execute(
                "INSERT INTO events (incident, ts, kind, data) VALUES (?, ?, ?, ?)",
                (incident, stamp, kind, json.dumps(clean, sort_keys=True, default=str)),
            )
            return Event(cur.lastrowid or 0, incident, stamp, kind, clean)

    def events(self, incident: str) -> list[Event]:
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(
                "SELECT seq, incident, ts, kind, data FROM events WHERE incident = ? ORDER BY seq",
                (incident,),
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def incidents(self) -> list[str]:
        """Incident ids, oldest first."""
        with contextlib.closing(self._connect()) as db:
            rows = db.execute("SELECT incident FROM events WHERE kind = 'opened' ORDER BY seq").fetchall()
        return [r[0] for r in rows]

    def new_incident_id(self, now: float) -> str:
        day = time.strftime("%Y%m%d", time.localtime(now))
        taken = [i for i in self.incidents() if i.startswith(f"INC-{day}-")]
        return f"INC-{day}-{len(taken) + 1:03d}"

    def drills(self) -> list[str]:
        """Drill ids (``simrs drill``), oldest first. A drill has no 'opened' event, so it is never
        listed by ``incidents()`` nor replayed as an incident."""
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(
                "SELECT incident FROM events WHERE kind = 'drill_started' ORDER BY seq"
            ).fetchall()
        return [r[0] for r in rows]

    def new_drill_id(self, now: float) -> str:
        day = time.strftime("%Y%m%d", time.localtime(now))
        taken = [i for i in self.drills() if i.startswith(f"DRILL-{day}-")]
        return f"DRILL-{day}-{len(taken) + 1:03d}"

    def held_by(self, incident: str) -> str | None:  # incident: an incident id or DRILL_LOCK
        """Who holds this lock right now (None: nobody). Does not take it."""
        path = self.path.parent / "locks" / f"{incident}.lock"
        if not path.exists():
            return None
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return handle.read().strip() or "another process"
            return None

    def lock_or_refuse(self, incident: str, purpose: str, refusal: SimrsError) -> contextlib.ExitStack:
        """The lock, held until the returned stack closes, or ``refusal`` raised when another
        process holds it (a drill and a planned restart say in their own words who is first)."""
        held = contextlib.ExitStack()
        try:
            held.enter_context(self.lock(incident, purpose))
        except JournalError:
            raise refusal from None
        return held

    @contextlib.contextmanager
    def lock(self, incident: str, purpose: str) -> Iterator[None]:
        """Hold the incident for this process, or say who holds it."""
        lock_dir = self.path.parent / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        path = lock_dir / f"{incident}.lock"
        handle = path.open("a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise JournalError(
                    f"incident {incident} is being driven by {holder}; watch it with "
                    f"`simrs incident status {incident}` or wait for that run to stop",
                    exit_code=2,
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
