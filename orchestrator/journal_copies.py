"""The journal's damage and its way back: the daily consistent copy beside the journal (SQLite's
backup API, checked before it is kept, never taken from a damaged journal), one error
(``JournalDamagedError``) for every command that meets damaged bytes, with the way back, and
``restore`` that sets the damaged file aside, never over it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import HostError, InputError, JournalError

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
        super().__init__(f"the journal {path} is damaged ({detail}); nothing was written to it. {way_back}")


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
            raise HostError(
                f"the copy of {path} failed its check ({'; '.join(made.problems[:3])}); no copy was "
                f"kept and the earlier copies in {folder} are untouched. Check the disk (`dmesg`, "
                "`df`) and run `simrs journal backup` again"
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
    raise InputError(
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
        raise InputError(
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
            raise HostError(f"the copy of {source} failed its check; nothing was changed")
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
