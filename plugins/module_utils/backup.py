"""The on-disk backup format of docs/backup-format.md, shared by the backup_* modules (role backup).

Owns: where sets and shipped binary logs live on the external disk, what makes a set complete,
good or verified, the disk's module options and the checks every module repeats (mounted, and
for writers marked), the lock that keeps two writers apart, the stream pipeline that compresses,
encrypts, hashes and writes a file in one pass, and the few SQL calls made through the mariadb
client. Runs on the SIMRS server with its own python3 and the MariaDB command-line tools; no
Python package beyond the standard library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

# The format's names, patterns and helpers live in backup_format (shared with restore.py); they
# are imported here under their old names too, for the backup_* modules.
from ansible_collections.simrs.downtime.plugins.module_utils.backup_format import (  # noqa: F401
    AGE_SUFFIX,
    BINLOG_DIR,
    BINLOG_RE,
    ENC_SUFFIX,
    FORMAT,
    HIDDEN_RE,
    LOCK,
    MANIFEST,
    MARKER,
    OPENSSL_ENC,
    ROOT_DIR,
    SET_RE,
    STAMP_FORMAT,
    UTC,
    VERIFY,
    encryption_tool,
    file_suffix,
    iso,
    parse_iso,
    parse_stamp,
    quote_ident,
    quote_str,
)

CHUNK = 1 << 20
# Public-key encryption (age, docs/backup-format.md): files end in .age; only recipients (public
# keys, age1...) are given, so the server writing a set cannot read it back.
RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def check_recipients(recipients: list[str]) -> list[str]:
    """The recipients, stripped; BackupError naming the first one that is not an age public key
    (a private key pasted by mistake is refused without echoing it)."""
    cleaned = [r.strip() for r in recipients if r and r.strip()]
    for recipient in cleaned:
        if recipient.upper().startswith("AGE-SECRET-KEY-"):
            raise BackupError(
                "backup_recipients holds a PRIVATE key (AGE-SECRET-KEY-...): put only the public key "
                "(age1...) there, and keep the private key in Vault"
            )
        if not RECIPIENT_RE.match(recipient):
            raise BackupError(
                f"backup_recipients: {recipient[:12]}... is not an age public key (age1 and 58 characters; "
                "make one with age-keygen)"
            )
    return cleaned


def age_encrypt_command(recipients: list[str]) -> list[str]:
    command = ["age", "--encrypt"]
    for recipient in recipients:
        command += ["--recipient", recipient]
    return command


@contextlib.contextmanager
def key_pipe(key: str) -> Iterator[int]:
    """A pipe holding the passphrase for openssl's -pass fd:N. Yields N (give it in pass_fds; the
    low-priority prefix commands keep it open for openssl); this process's end is closed on leaving."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, key.encode() + b"\n")  # one line, far below a pipe's buffer
    finally:
        os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)


class BackupError(Exception):
    """A failure an operator can act on; the message says what to do."""


class DiskFullError(BackupError):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def source_dir(mount_point: str, host: str) -> str:
    return os.path.join(mount_point, ROOT_DIR, host)


def binlog_dir(mount_point: str, host: str) -> str:
    return os.path.join(mount_point, ROOT_DIR, BINLOG_DIR, host)


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


# --- the disk -----------------------------------------------------------------------------------


def read_marker(mount_point: str) -> dict[str, str] | None:
    """The marker's key=value lines, or None when the disk has no marker."""
    try:
        with open(os.path.join(mount_point, MARKER), encoding="utf-8") as handle:
            text = handle.read(4096)
    except FileNotFoundError:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def disk_argument_spec(*, marker: bool = False) -> dict[str, dict]:
    """The disk's module options, as doc_fragments/backup_disk.py documents them: mount_point, and
    with marker also disk_label, disk_uuid and require_marker. A new dict on every call."""
    spec: dict[str, dict] = {"mount_point": {"type": "path", "required": True}}
    if marker:
        spec.update(
            {
                "disk_label": {"type": "str", "required": True},
                "disk_uuid": {"type": "str", "default": ""},
                "require_marker": {"type": "bool", "default": True},
            }
        )
    return spec


def require_mounted(mount_point: str, label: str = "") -> None:
    """Refuse a mount point with no filesystem mounted on it: that folder is on the server's own
    disk, which a backup would fill and where a reader finds nothing of the external disk. Raises
    BackupError saying what to do; a writer names the disk's label."""
    if os.path.ismount(mount_point):
        return
    if label:
        raise BackupError(
            f"{mount_point} is not a mounted filesystem: plug in the external backup disk "
            f"(label {label}) and mount it there; a plain folder would fill the server's own disk"
        )
    raise BackupError(f"{mount_point} is not a mounted filesystem: plug in and mount the backup disk")


def check_disk(mount_point: str, label: str, uuid: str, require_marker: bool) -> None:
    """The rules of the role's disk preflight, repeated where the data is written (the disk may
    have been unplugged in between). Raises BackupError saying what to do."""
    require_mounted(mount_point, label)
    if require_marker:
        marker = read_marker(mount_point)
        if marker is None:
            raise BackupError(f"the disk at {mount_point} has no {MARKER} marker: is it the backup disk?")
        if uuid and marker.get("uuid", "") != uuid:
            raise BackupError(
                f"the disk at {mount_point} is marked uuid={marker.get('uuid', '')!r}, not {uuid}"
            )
        if not uuid and marker.get("label", "") != label:
            raise BackupError(
                f"the disk at {mount_point} is marked label={marker.get('label', '')!r}, not {label}"
            )


def make_private_dirs(path: str, top: str) -> None:
    """Create path and its parents below top, each 0700 (the sets hold patient data)."""
    missing = []
    current = path
    while current != top and not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
        os.chmod(directory, 0o700)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def free_bytes(path: str) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@contextlib.contextmanager
def locked(directory: str, *, exclusive: bool, wait_seconds: int, what: str) -> Iterator[None]:
    """flock on DIRECTORY/.lock: writers (backup, prune, binlog shipping) exclusive, verify shared.
    Waits up to wait_seconds, then says who holds it."""
    path = os.path.join(directory, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(wait_seconds, 0)
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
                    raise BackupError(
                        f"{directory} is busy ({holder}) after waiting {wait_seconds} s: "
                        f"let it finish, then run the {what} again"
                    ) from None
                time.sleep(1)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what} pid {os.getpid()} since {iso(utcnow())}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


# --- sets ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class BackupSet:
    name: str
    path: str
    stamp: dt.datetime
    method: str
    manifest: dict | None
    verify: dict | None

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def known_bad(self) -> bool:
        return self.verify is not None and self.verify.get("ok") is False

    @property
    def verified_good(self) -> bool:
        return self.verify is not None and self.verify.get("ok") is True

    @property
    def size(self) -> int:
        return sum(int(f.get("size", 0)) for f in (self.manifest or {}).get("files", []))


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def list_sets(src: str) -> list[BackupSet]:
    """Every directory under its final name, oldest first (manifest None: not a complete set)."""
    sets = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(src):
            match = SET_RE.match(name)
            path = os.path.join(src, name)
            if match and os.path.isdir(path):
                sets.append(
                    BackupSet(
                        name=name,
                        path=path,
                        stamp=parse_stamp(match["stamp"]),
                        method=match["method"],
                        manifest=_read_json(os.path.join(path, MANIFEST)),
                        verify=_read_json(os.path.join(path, VERIFY)),
                    )
                )
    return sorted(sets, key=lambda s: (s.stamp, s.name))


def remove_hidden(src: str) -> list[str]:
    """Remove sets left half-written (.partial) or half-deleted (.deleting) by an interrupted run.
    Only called under the exclusive lock, so none of them belongs to a running backup."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(src)):
            if HIDDEN_RE.match(name):
                shutil.rmtree(os.path.join(src, name))
                removed.append(name)
    return removed


def sha256_file(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def write_private(path: str, data: bytes) -> None:
    """Write a small file 0600 under a temporary name, fsync, rename: never half-written."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- processes ----------------------------------------------------------------------------------


def low_priority(enabled: bool) -> list[str]:
    """The backup's own processes yield to the SIMRS on the server: the idle CPU class (SCHED_IDLE:
    they run only on a CPU nobody else wants, and a waking database thread takes it back at once),
    else nice 19; and the lowest best-effort I/O priority. Measured under load: with nice 10 the
    registration desk's p99 commit latency was 2.5-3.7x its baseline during a physical backup, the
    slow commits falling in the prepare and the packing (zstd on every core)."""
    if not enabled:
        return []
    if shutil.which("chrt"):
        prefix = ["chrt", "--idle", "0"]
    elif shutil.which("nice"):
        prefix = ["nice", "-n", "19"]
    else:
        prefix = []
    if shutil.which("ionice"):
        prefix += ["ionice", "-c2", "-n7"]
    return prefix


def client_args(defaults_file: str) -> list[str]:
    """Connection options for the MariaDB tools: root through the unix socket unless a defaults
    file (e.g. /etc/mysql/debian.cnf) names another account. Must come first on the command line."""
    return [f"--defaults-extra-file={defaults_file}"] if defaults_file else []


def sql(query: str, defaults_file: str = "", socket: str = "", timeout: int = 120) -> list[list[str]]:
    """Rows of one or more statements, through the mariadb client (batch, raw, no headers).

    The client has no bind parameters (ruff's S608 is waived where queries are built): every name
    is quoted with quote_ident and every value with quote_str, and they come from the inventory
    or the server itself, never from a user."""
    cmd = ["mariadb", *client_args(defaults_file), "--batch", "--raw", "--skip-column-names"]
    if socket:
        cmd.append(f"--socket={socket}")
    proc = subprocess.run(
        [*cmd, "--execute", query], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise BackupError(f"the database refused {query.split(maxsplit=1)[0]} ...: {proc.stderr.strip()}")
    return [line.split("\t") for line in proc.stdout.splitlines()]


def tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return " | ".join(line.strip() for line in handle.read().splitlines()[-lines:] if line.strip())
    except FileNotFoundError:
        return ""


class _Chain:
    """The processes of one stream, their stderr kept in files (never a pipe that could fill up)."""

    def __init__(self, prefix: list[str], workdir: str) -> None:
        self.prefix = prefix
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen, str]] = []

    def start(self, name: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        errpath = os.path.join(self.workdir, f"{name}.stderr")
        with open(errpath, "wb") as err:
            proc = subprocess.Popen([*self.prefix, *cmd], stderr=err, **kwargs)
        self.procs.append((name, proc, errpath))
        return proc

    def check(self, errors: list[BaseException]) -> None:
        """Raise for the first process that failed (with its own words), else for a pump error."""
        failed = [
            f"{name} exited {proc.returncode}: {tail(errpath) or 'no message'}"
            for name, proc, errpath in self.procs
            if proc.wait() != 0
        ]
        if failed:
            raise BackupError("; ".join(failed))
        if errors:
            raise errors[0]

    def kill(self) -> None:
        for _name, proc, _errpath in self.procs:
            if proc.poll() is None:
                proc.kill()
        for _name, proc, _errpath in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=30)


def _pump(source, data: bytes | None, sink, on_chunk, errors: list[BaseException]) -> None:
    """Copy the producer's output (or data) into the first stage, showing each chunk to on_chunk."""
    try:
        if source is not None:
            chunks = iter(lambda: source.read(CHUNK), b"")
        else:
            chunks = (data[offset : offset + CHUNK] for offset in range(0, len(data or b""), CHUNK))
        for chunk in chunks:
            if on_chunk:
                on_chunk(chunk)
            sink.write(chunk)
    except BaseException as exc:  # reported by _Chain.check once the chain is down
        errors.append(exc)
    finally:
        with contextlib.suppress(OSError):
            sink.close()


class StreamWriter:
    """Produce, compress (zstd), encrypt (age to recipients, or the old openssl passphrase; optional)
    and write one file in a single pass,
    hashing the bytes as they are written, so the manifest's sha256 is of exactly what is on disk.

    The producer is a command (mariadb-dump, mbstream -c) or bytes; on_chunk sees the producer's
    plain output (the dump's row counter). Any failure kills the whole chain and raises; a full
    disk raises DiskFullError. The caller removes the half-written file with its .partial set.
    """

    def __init__(
        self,
        *,
        level: int | None,
        key: str,
        prefix: list[str],
        workdir: str,
        recipients: list[str] | None = None,
    ) -> None:
        if level is None and not key and not recipients:
            raise BackupError("internal: a stream needs compression or encryption")
        if key and recipients:
            raise BackupError("internal: a stream is encrypted to recipients or with a passphrase, not both")
        self.level = level
        self.key = key
        self.recipients = list(recipients or [])
        self.prefix = prefix
        self.workdir = workdir

    def write(
        self,
        dest: str,
        *,
        command: list[str] | None = None,
        data: bytes | None = None,
        cwd: str | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> tuple[int, str]:
        chain = _Chain(self.prefix, self.workdir)
        errors: list[BaseException] = []
        try:
            producer = None
            if command is not None:
                producer = chain.start(
                    os.path.basename(command[0]),
                    command,
                    stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    cwd=cwd,
                )
            head, last = self._stages(chain)
            thread = threading.Thread(
                target=_pump, args=(producer.stdout if producer else None, data, head.stdin, on_chunk, errors)
            )
            thread.daemon = True
            thread.start()
            with last.stdout:  # closed once read, or the pipe's end stays open until collected
                size, digest = self._write_out(dest, last.stdout)
            thread.join()
            chain.check(errors)
        except BaseException:
            chain.kill()
            raise
        return size, digest

    def _stages(self, chain: _Chain) -> tuple[subprocess.Popen, subprocess.Popen]:
        stages = []
        if self.level is not None:
            stages.append(
                chain.start(
                    "zstd",
                    ["zstd", "-q", f"-{self.level}", "-T0", "-c"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
        if self.key:
            stdin = stages[-1].stdout if stages else subprocess.PIPE
            with key_pipe(self.key) as key_fd:
                stages.append(
                    chain.start(
                        "openssl",
                        [*OPENSSL_ENC, "-pass", f"fd:{key_fd}"],
                        stdin=stdin,
                        stdout=subprocess.PIPE,
                        pass_fds=(key_fd,),
                    )
                )
            if len(stages) > 1:
                stages[0].stdout.close()  # openssl owns it now: zstd sees EPIPE if openssl dies
        if self.recipients:
            stdin = stages[-1].stdout if stages else subprocess.PIPE
            stages.append(
                chain.start(
                    "age",
                    age_encrypt_command(self.recipients),
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                )
            )
            if len(stages) > 1:
                stages[0].stdout.close()  # age owns it now: zstd sees EPIPE if age dies
        return stages[0], stages[-1]

    @staticmethod
    def _write_out(dest: str, source) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"the external disk filled up after {human_bytes(size)} of {os.path.basename(dest)} "
                    f"(No space left on device)"
                ) from None
            if exc.errno == errno.EROFS:
                raise BackupError("the external disk became read-only while writing") from None
            raise
        finally:
            os.close(fd)
        return size, digest.hexdigest()


# --- a throwaway server on a prepared physical copy ---------------------------------------------


@contextlib.contextmanager
def scratch_server(datadir: str, *, prefix: list[str]) -> Iterator[str]:
    """Start mariadbd on datadir with no configuration of its own (no network, no binary log,
    no grants, own socket), yield its socket, shut it down. Used to count the rows of a prepared
    physical copy; the SIMRS's own server is never touched.

    Read-write on purpose: a copy taken under load holds the transaction that was in flight at
    the backup point (prepared, not yet in the binary log). Crash recovery rolls it back, as on a
    real restore; InnoDB read-only mode skips that rollback and its rows would be counted."""
    rundir = tempfile.mkdtemp(prefix="simrs-backup-scratch-")
    socket = os.path.join(rundir, "mysqld.sock")
    errlog = os.path.join(rundir, "error.log")
    cmd = [
        *prefix,
        "mariadbd",
        "--no-defaults",
        "--user=root",
        f"--datadir={datadir}",
        f"--socket={socket}",
        f"--pid-file={rundir}/mysqld.pid",
        f"--log-error={errlog}",
        f"--tmpdir={rundir}",
        f"--aria-log-dir-path={rundir}",
        "--skip-networking",
        "--skip-grant-tables",
        "--skip-log-bin",
        "--skip-slave-start",
        "--event-scheduler=OFF",
        "--innodb-buffer-pool-size=64M",
        # Crash recovery writes a new redo log: small, since it sits on the backup disk or in scratch_dir.
        "--innodb-log-file-size=8M",
        "--skip-name-resolve",
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(socket):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BackupError(f"the scratch server on {datadir} did not start: {tail(errlog, 8)}")
            time.sleep(0.2)
        yield socket
    finally:
        if proc.poll() is None:
            subprocess.run(
                ["mariadb-admin", f"--socket={socket}", "shutdown"],
                capture_output=True,
                timeout=120,
                check=False,
            )
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(rundir, ignore_errors=True)


def count_rows(databases: list[str], socket: str = "", defaults_file: str = "") -> dict[str, int]:
    """Rows of every base table of the databases, keyed "db.table"."""
    names = ",".join(quote_str(db) for db in databases)
    tables = sql(
        "SELECT table_schema, table_name FROM information_schema.tables "  # noqa: S608 (see sql())
        f"WHERE table_type = 'BASE TABLE' AND table_schema IN ({names}) ORDER BY 1, 2",
        defaults_file,
        socket,
    )
    if not tables:
        return {}
    union = " UNION ALL ".join(
        f"SELECT {quote_str(db + '.' + table)}, COUNT(*) FROM {quote_ident(db)}.{quote_ident(table)}"  # noqa: S608
        for db, table in tables
    )
    return {key: int(count) for key, count in sql(union, defaults_file, socket, timeout=3600)}


LAST_VISIT_COLUMNS = ("no_rawat", "tgl_registrasi", "jam_reg")


def last_visit(databases: list[str], table: str, socket: str = "", defaults_file: str = "") -> dict | None:
    """The newest visit (by date, time, then no_rawat) in the first database that has the table."""
    if not table:
        return None
    for db in databases:
        found = sql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "  # noqa: S608 (see sql())
            f"{quote_str(db)} AND table_name = {quote_str(table)}",
            defaults_file,
            socket,
        )
        if found and found[0][0] != "0":
            rows = sql(
                f"SELECT no_rawat, tgl_registrasi, jam_reg FROM {quote_ident(db)}.{quote_ident(table)} "  # noqa: S608
                "ORDER BY tgl_registrasi DESC, jam_reg DESC, no_rawat DESC LIMIT 1",
                defaults_file,
                socket,
            )
            if not rows:
                return None
            if len(rows[0]) != len(LAST_VISIT_COLUMNS):  # zip's strict flag is 3.10+
                raise BackupError(f"{db}.{table}: the newest visit has {len(rows[0])} columns, not 3")
            return dict(zip(LAST_VISIT_COLUMNS, rows[0]))
    return None
