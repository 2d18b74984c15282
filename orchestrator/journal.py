"""The incident journal: an append-only SQLite log of facts and transitions.

An incident's state is never stored, only replayed from its events (``procedure.replay``), so a
crash loses nothing that was written and a restarted orchestrator sees exactly what happened.
Events are written before acting and after each result. A per-incident lock (flock, released
by the kernel if the process dies) keeps two operators from driving one incident; adding a
fact (an approval, "fail over now") needs no lock, and the driving process picks it up.

The journal is the memory of every incident, so its damage is handled here and only here: a
daily consistent copy beside it (SQLite's backup API, checked before it is kept, never taken
from a damaged journal), one error (``JournalDamagedError``) for every command that meets damaged
bytes, with the way back, and ``restore`` that sets the damaged file aside, never over it.
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

from orchestrator.errors import SimrsError

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


class JournalError(SimrsError):
    """The journal refuses (locked incident, unknown id); the message says what to do."""


COPIES_KEPT = 14
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # primary result codes (extended codes keep them in the low byte)


def is_damage(exc: BaseException) -> bool:
    """Damaged bytes, as opposed to a busy or missing file: corrupt pages, a header that is no
    longer SQLite's, or a text column whose bytes no longer decode."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return True
    return "could not decode" in str(exc).lower()


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


class JournalDamagedError(JournalError):
    """The journal's file is damaged. Raised before anything is written; the message names the
    file, the newest good copy and the command that goes back to it."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path, self.detail = path, detail
        good = next((c for c in copies(path) if inspect(c.path).sound), None)
        self.copy = good
        if good is None:
            way_back = (
                f"There is no good copy in {copies_dir(path)}. Keep the damaged file as it is (copy it "
                f"off this machine first), then move it aside (`mv {path} {path}.damaged`): the next "
                f"command starts an empty journal. `sqlite3 {path}.damaged .recover` may save events."
            )
        else:
            way_back = (
                f"The newest good copy is {good.path} (taken {when(good.taken)}, "
                f"events up to {when(good.last_event) if good.last_event else 'none'}). "
                f"Go back to it with `simrs journal restore --from {good.path}` (the damaged file is "
                "kept aside), then check the hosts: what happened after the copy is not in it."
            )
        super().__init__(
            f"the journal {path} is damaged ({detail}); nothing was written to it. {way_back}",
            exit_code=1,
        )


@dataclass(frozen=True)
class Verdict:
    """What ``inspect`` found: sound, or the problems (integrity_check's words, undecodable rows)."""

    path: Path
    exists: bool
    problems: tuple[str, ...]
    events: int
    last_event: float | None

    @property
    def sound(self) -> bool:
        return self.exists and not self.problems


@dataclass(frozen=True)
class Copy:
    path: Path
    day: str  # YYYYMMDD, from the name
    taken: float  # the file's time (set to when it was taken)
    last_event: float | None


def inspect(path: Path) -> Verdict:
    """PRAGMA integrity_check, then every event read and decoded (a row whose bytes were
    overwritten can pass the page checks). Reads only: the file's bytes stay as they are."""
    if not path.is_file():
        return Verdict(path, False, (), 0, None)
    problems: list[str] = []
    count, last = 0, None
    try:
        with contextlib.closing(_reader(path)) as db:
            found = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
            if found != ["ok"]:
                problems.extend(found)
            for seq, ts, data in db.execute("SELECT seq, ts, data FROM events ORDER BY seq"):
                try:
                    json.loads(data)
                except (TypeError, ValueError) as exc:
                    problems.append(f"event {seq} does not decode ({exc})")
                count, last = count + 1, ts
    except sqlite3.DatabaseError as exc:
        problems.append(str(exc))
    return Verdict(path, True, tuple(problems), count, last if isinstance(last, float | int) else None)


def _reader(path: Path) -> sqlite3.Connection:
    """A connection that reads and never writes. A -wal left by a crash holds committed events:
    read-only, they are read without being folded into a file that may be damaged (a read-write
    close would checkpoint them) and the -wal stays for ``restore`` to set aside with its file.
    Without a -wal a plain connection writes nothing either and leaves no -wal/-shm behind."""
    if path.with_name(path.name + "-wal").exists():
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30)


def copies_dir(path: Path) -> Path:
    return path.parent / "copies"


def copies(path: Path) -> list[Copy]:
    """The daily copies of this journal, newest first (not checked here: ``inspect`` each)."""
    pattern = re.compile(rf"{re.escape(path.stem)}-(\d{{8}})\.sqlite")
    found = []
    folder = copies_dir(path)
    for item in folder.iterdir() if folder.is_dir() else []:
        match = pattern.fullmatch(item.name)
        if match:
            found.append(Copy(item, match.group(1), item.stat().st_mtime, _last_event(item)))
    return sorted(found, key=lambda c: c.day, reverse=True)


def _last_event(path: Path) -> float | None:
    with contextlib.suppress(sqlite3.DatabaseError), contextlib.closing(_reader(path)) as db:
        return db.execute("SELECT max(ts) FROM events").fetchone()[0]
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _consistent_copy(source: Path, target: Path) -> Verdict:
    """``source`` into ``target`` through SQLite's backup API (a consistent snapshot even while
    others write), made 0600, fsynced, checked. The caller renames it into place if sound."""
    target.unlink(missing_ok=True)
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))  # 0600 before any byte
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())
    return inspect(target)


def take_copy(path: Path, now: float | None = None) -> Copy:
    """Today's copy of the journal (replacing an earlier one of today), then the oldest pruned to
    the newest COPIES_KEPT. Never from a damaged journal; a copy that fails its check is dropped
    and the copies already kept stay as they were."""
    stamp = time.time() if now is None else now
    source = inspect(path)
    if not source.exists:
        raise JournalError(f"there is no journal at {path} yet: nothing to copy")
    if not source.sound:
        raise JournalDamagedError(path, "; ".join(source.problems[:3]))
    folder = copies_dir(path)
    folder.mkdir(mode=0o700, exist_ok=True)
    final = folder / f"{path.stem}-{time.strftime('%Y%m%d', time.localtime(stamp))}.sqlite"
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    try:
        made = _consistent_copy(path, tmp)
        if not made.sound:
            raise JournalError(
                f"the copy of {path} failed its check ({'; '.join(made.problems[:3])}); no copy was "
                f"kept and the earlier copies in {folder} are untouched. Check the disk (`dmesg`, "
                "`df`) and run `simrs journal backup` again",
                exit_code=1,
            )
        os.utime(tmp, (stamp, stamp))
        tmp.replace(final)
        _fsync_dir(folder)
    finally:
        tmp.unlink(missing_ok=True)
    for old in copies(path)[COPIES_KEPT:]:
        old.path.unlink(missing_ok=True)
    return Copy(final, final.name[-15:-7], stamp, made.last_event)


def daily_copy(path: Path, now: float | None = None) -> Copy | None:
    """Take today's copy if there is none yet (a stat when there is: cheap on every open). An
    empty journal has nothing to keep: its first copy comes with the first command after events."""
    stamp = time.time() if now is None else now
    day = time.strftime("%Y%m%d", time.localtime(stamp))
    if (copies_dir(path) / f"{path.stem}-{day}.sqlite").exists() or _empty(path):
        return None
    return take_copy(path, stamp)


def _empty(path: Path) -> bool:
    with contextlib.suppress(sqlite3.DatabaseError), contextlib.closing(_reader(path)) as db:
        return db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None
    return False  # unreadable: take_copy's check says how


@dataclass(frozen=True)
class Survey:
    """``simrs journal check``: the journal's verdict, each copy's, and the way back."""

    journal: Verdict
    copies: list[tuple[Copy, Verdict]]

    @property
    def good_copy(self) -> Copy | None:
        return next((c for c, v in self.copies if v.sound), None)


def survey(path: Path) -> Survey:
    return Survey(inspect(path), [(c, inspect(c.path)) for c in copies(path)])


@dataclass(frozen=True)
class Restored:
    journal: Path
    copy: Copy
    aside: list[Path]  # the damaged file and its -wal/-shm, under their new names
    events: int
    damaged_changed: float | None  # the damaged file's last change: the lost span ends there


def locks_held(path: Path) -> list[str]:
    """Who holds any lock of this journal now (a run that is alive)."""
    folder = path.parent / "locks"
    held = [held_by_file(lock) for lock in sorted(folder.glob("*.lock"))] if folder.is_dir() else []
    return [h for h in held if h]


def held_by_file(path: Path) -> str | None:
    if not path.exists():
        return None
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        return None


def resolve_copy(path: Path, name: str) -> Path:
    """--from as a path, a file name in the copies folder, or its day (YYYYMMDD)."""
    for candidate in (Path(name), copies_dir(path) / name, copies_dir(path) / f"{path.stem}-{name}.sqlite"):
        if candidate.is_file():
            return candidate
    raise JournalError(
        f"there is no copy {name!r}: `simrs journal check` lists the copies in {copies_dir(path)}"
    )


def restore(path: Path, source: Path, force: bool = False, now: float | None = None) -> Restored:
    """Go back to a good copy. The damaged file is never written: it (and its -wal/-shm) is set
    aside under ``.damaged-<time>`` (``.replaced-`` with force), and the copy goes into place
    through a temp file in the same folder (backup API, fsync, rename), so the journal's name
    never holds half a file."""
    chosen = inspect(source)
    if not chosen.sound:
        raise JournalError(
            f"the copy {source} is damaged too ({'; '.join(chosen.problems[:3]) or 'missing'}); nothing "
            "was changed. Pick an older copy from `simrs journal check`"
        )
    current = inspect(path)
    if current.sound and not force:
        raise JournalError(
            f"the journal {path} is sound ({current.events} events); nothing was changed. Going back "
            f"to {source} would lose what was journaled since: add --force only if you mean it"
        )
    running = locks_held(path)
    if running:
        raise JournalError(
            f"a run holds the journal ({'; '.join(running)}); nothing was changed. Stop it or wait "
            "for it, then restore"
        )
    stamp = time.time() if now is None else now
    tmp = path.with_name(f".{path.name}.restore-{os.getpid()}")
    aside: list[Path] = []
    changed = path.stat().st_mtime if path.exists() else None
    try:
        if not _consistent_copy(source, tmp).sound:
            raise JournalError(f"the copy of {source} failed its check; nothing was changed", exit_code=1)
        why = "replaced" if current.sound else "damaged"  # --force over a sound journal
        suffix = f".{why}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(stamp))}"
        # The -wal/-shm go first and under the aside file's own names: an old WAL next to the
        # restored file would be replayed into it, and next to the aside file it stays readable.
        for extra in ("-wal", "-shm"):
            old = path.with_name(path.name + extra)
            if old.exists():
                aside.append(old.rename(path.with_name(path.name + suffix + extra)))
        if path.exists():
            kept = path.with_name(path.name + suffix)
            try:
                os.link(path, kept)  # the damaged bytes keep their inode; the rename below is atomic
            except OSError:  # a filesystem without hard links: a moment without a journal
                path.rename(kept)
            aside.insert(0, kept)
        tmp.replace(path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    day = source.stem[-8:] if re.fullmatch(r".*-\d{8}", source.stem) else ""
    copy = Copy(source, day, source.stat().st_mtime, chosen.last_event)
    return Restored(path, copy, aside, chosen.events, changed)


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
