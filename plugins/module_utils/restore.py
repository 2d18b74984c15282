"""The restore role's hands on the standby: everything that streams bytes or parses tool output.

The module simrs.downtime.restore_step runs one step per task (`step: NAME`, `params: {...}`)
and returns the step's result as `out`; a step that cannot go on raises StepError, whose message
is the task's failure message. Steps:

  scan      read-only: the external disk, the source host's backup sets newest first, each
            checked against its manifest (size and sha256 of every file) until the first good one
  copy      dump: copy one set to local disk (into a .partial folder, renamed when complete), each
            file hashed as it is read from the disk
  state     read-only: the restore marker, the live databases, whether this host holds the service IP
  load      stream the dump into FRESH databases (<db>__restore_<stamp>), never into the live ones,
            hashing the file as it is read (expect: the manifest's entry)
  counts    read-only: row counts of the fresh databases against the manifest (parallel clients);
            objects RENAME cannot move
  replay    shipped binary logs from the backup's position (pass 1 finds the last complete
            transaction; pass 2 applies up to it); apply=false only measures
  switch    one atomic RENAME TABLE: live tables out to <db>__old_<stamp>, restored tables in
  accounts  CREATE USER / GRANT from the set (CREATE OR REPLACE, so existing accounts are renewed),
            applied only when the whole file matched the manifest
  mark      record which set (and binlog position) the live databases now come from
  cleanup   drop the fresh databases of a failed attempt; remove older local copies
  unpack    physical: stream a prepared set straight from the external disk into a FRESH data folder
            beside the live one, reading it once (sha256 and unpacking in the same pass); the folder
            is removed unless the whole file matched the manifest
  dswitch   physical: stop MariaDB, exchange the fresh and the live data folders (one atomic
            renameat2), start MariaDB on the restored data; if it does not start, switch back
  dback     physical: switch back to the previous data folder (a later step failed)
  dfinish   physical: remove (or keep) the previous data folder once the restore is checked

Only the standard library and the MariaDB command-line tools are used: they are on every MariaDB
server. The data file may be encrypted: to age recipients (public keys; the files end in .age,
decrypted with the private key given as the module's no_log option identity, set_identity), or by
the older openssl enc -aes-256-cbc -pbkdf2 passphrase (.enc; the no_log option encryption_key,
set_key). Both secrets reach the tool through a pipe (age -i /dev/fd/N, openssl -pass fd:N):
never on a command line, in an environment, in a file or in the output. age authenticates every
64 KiB chunk: a changed byte makes it fail before the bytes after it reach the restore.
"""

# S608: every statement here is built from names checked by ident() (plain identifiers, quoted
# with backticks) and values escaped by quote(); the mariadb client has no bind parameters.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ansible_collections.simrs.downtime.plugins.module_utils.backup_format import (  # noqa: F401
    ACCOUNTS_FILE,
    AGE_SUFFIX,
    BINLOG_RE,
    DATA_FILES,
    ENC_SUFFIX,
    OPENSSL_DEC,
    SET_NAME_ANY,
    UTC,
    encryption_tool,
    file_suffix,
    iso,
    parse_iso,
    quote_str,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Reads of a set's files (4 MiB: few system calls, and far below any pipe's or cache's size).
READ_BLOCK = 4 << 20
# System accounts are the standby's own: a set's accounts.sql must not replace them.
SYSTEM_ACCOUNTS = re.compile(
    rb"`(root|mysql)`@`localhost`|`mariadb\.sys`@|'(root|mysql)'@'localhost'|'mariadb\.sys'@"
)
HEADER = re.compile(
    r"^#(\d{6})\s+(\d{1,2}:\d\d:\d\d)\s+server id\s+\d+\s+end_log_pos\s+(\d+)\s+"
    r"(?:CRC32 0x[0-9a-fA-F]+\s+)?(.*)$"
)


class StepError(Exception):
    """A step that cannot go on; its message is the operator's explanation."""


# The passphrase of the older encrypted sets (set_key) and the age private key (set_identity),
# set once by the module from its no_log options.
_KEY = {"value": "", "identity": ""}


def set_key(value: str | None) -> None:
    """Remember the passphrase of encrypted sets for this step (the module's no_log option)."""
    _KEY["value"] = value or ""


def set_identity(value: str | None) -> None:
    """Remember the age private key (identity file text) for this step (the module's no_log option)."""
    text = (value or "").strip()
    _KEY["identity"] = text + "\n" if text else ""


def have_key() -> bool:
    return bool(_KEY["value"])


def have_identity() -> bool:
    return bool(_KEY["identity"])


@contextlib.contextmanager
def identity_pipe() -> Iterator[str]:
    """A pipe holding the age identity, named as /dev/fd/N for age's -i (age opens it as a file).
    Yields the name; give N in pass_fds. The parent's end is closed on leaving."""
    read_end, write_end = os.pipe()
    try:
        # An identity file is a few hundred bytes, far below a pipe's buffer: the write never blocks.
        os.write(write_end, _KEY["identity"].encode())
    finally:
        os.close(write_end)
    try:
        yield f"/dev/fd/{read_end}"
    finally:
        os.close(read_end)


def identity_recipients() -> list[str] | None:
    """The public keys of the given identity (age-keygen -y), None when they cannot be told (no
    identity, or an age-keygen too old for -y): then the decryption itself is the check."""
    if not have_identity() or not shutil.which("age-keygen"):
        return None
    with identity_pipe() as name:
        proc = subprocess.run(
            ["age-keygen", "-y", name],
            capture_output=True,
            check=False,
            pass_fds=(int(name.rsplit("/", 1)[1]),),
        )
    if proc.returncode != 0:
        return None
    return [line.strip() for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]


def age_decrypt(name: str) -> list[str]:
    return ["age", "--decrypt", "--identity", name]


@contextlib.contextmanager
def key_pipe() -> Iterator[int]:
    """A pipe holding the passphrase for openssl's -pass fd:N: the key is in neither argv nor any
    environment. Yields N (give it in pass_fds); the parent's end is closed on leaving (the child
    keeps its own copy)."""
    read_end, write_end = os.pipe()
    try:
        # One line, far below a pipe's buffer: the write never blocks.
        os.write(write_end, _KEY["value"].encode() + b"\n")
    finally:
        os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def ident(name: str) -> str:
    if not IDENT.match(name):
        raise StepError(f"{name!r} is not a plain database or table name (letters, digits, underscore)")
    return f"`{name}`"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- MariaDB through its client -----------------------------------------------------------------


def sql(args: dict[str, Any], statement: str) -> list[list[str]]:
    """Run statements with the mariadb client (root over the local socket); rows as lists."""
    proc = subprocess.run(
        [*args.get("mariadb", ["mariadb"]), "--batch", "--skip-column-names", "--raw", "-e", statement],
        capture_output=True,
        text=True,
        timeout=args.get("sql_timeout", 600),
        check=False,
    )
    if proc.returncode != 0:
        raise StepError(f"MariaDB refused: {proc.stderr.strip()[-600:]}")
    return [line.split("\t") for line in proc.stdout.splitlines()]


def quote(text: str) -> str:
    return quote_str(text)


def base_tables(args: dict[str, Any], db: str) -> list[str]:
    rows = sql(
        args,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        f"{quote(db)} AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    return [r[0] for r in rows]


def other_objects(args: dict[str, Any], db: str) -> list[str]:
    """Views, triggers, routines and events: RENAME TABLE cannot move them between databases."""
    rows = sql(
        args,
        f"SELECT CONCAT('view ', table_name) FROM information_schema.views WHERE table_schema = {quote(db)} "
        f"UNION ALL SELECT CONCAT('trigger ', trigger_name) FROM information_schema.triggers "
        f"WHERE trigger_schema = {quote(db)} "
        f"UNION ALL SELECT CONCAT(LOWER(routine_type), ' ', routine_name) FROM information_schema.routines "
        f"WHERE routine_schema = {quote(db)} "
        f"UNION ALL SELECT CONCAT('event ', event_name) FROM information_schema.events "
        f"WHERE event_schema = {quote(db)}",
    )
    return [f"{db}: {r[0]}" for r in rows]


def db_exists(args: dict[str, Any], db: str) -> bool:
    return bool(sql(args, f"SELECT 1 FROM information_schema.schemata WHERE schema_name = {quote(db)}"))


def databases_like(args: dict[str, Any], prefix: str) -> list[str]:
    escaped = prefix.replace("_", "\\_")
    return [r[0] for r in sql(args, f"SHOW DATABASES LIKE {quote(escaped + '%')}")]


# --- scan -----------------------------------------------------------------------------------------


# One return per way a set can be unusable: each names its own problem for the operator.
def check_set(  # noqa: PLR0911, PLR0912
    path: Path, args: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None) for a good set, (manifest or None, problem) for a bad or unusable one."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        return None, "no manifest.json (an unfinished set)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"manifest.json unreadable: {exc}"
    if not isinstance(manifest, dict) or manifest.get("format") != 1:
        return (
            None,
            f"manifest format {manifest.get('format') if isinstance(manifest, dict) else '?'} "
            "(this restore reads format 1)",
        )
    if manifest.get("source_host") != args["source_host"]:
        return manifest, f"made on {manifest.get('source_host')}, not {args['source_host']}"
    method = manifest.get("method")
    if method not in args["methods"]:
        return (
            manifest,
            f"method {method} is not restored by this role (it restores: {', '.join(args['methods'])})",
        )
    missing_dbs = [db for db in args["databases"] if db not in manifest.get("databases", [])]
    if missing_dbs:
        return manifest, f"does not hold the database(s) {', '.join(missing_dbs)}"
    if method == "physical" and not (manifest.get("physical") or {}).get("prepared"):
        return manifest, "a physical set that was not prepared (this restore needs no --prepare step)"
    tool = encryption_tool(manifest)
    if tool == "openssl" and not args.get("have_key"):
        return manifest, "encrypted, and no restore_encryption_key is set"
    if tool == "age":
        problem = identity_problem(manifest, args)
        if problem:
            return manifest, problem
    files = manifest.get("files") or []
    names = [f.get("name") for f in files]
    data_name = DATA_FILES.get(method, "") + file_suffix(manifest)
    if data_name not in names:
        return manifest, f"the manifest lists no {data_name}"
    for entry in files:
        name = entry.get("name", "")
        if "/" in name or name.startswith("."):
            return manifest, f"the manifest names a file outside the set: {name!r}"
        file_path = path / name
        if not file_path.is_file():
            return manifest, f"{name} is missing"
        stat = file_path.stat()
        if entry.get("size") is not None and stat.st_size != entry["size"]:
            return manifest, f"{name} has {stat.st_size} bytes, the manifest says {entry['size']}"
        if cached_sha256(file_path, stat, args) != entry.get("sha256"):
            return manifest, f"{name}: sha256 does not match the manifest (corrupt)"
    return manifest, None


KEY_PROBLEM = "encrypted to age recipient(s)"


def identity_problem(manifest: dict[str, Any], args: dict[str, Any]) -> str | None:
    """Why an age set cannot be read with the identity at hand, or None."""
    recipients = [str(r) for r in (manifest.get("encryption") or {}).get("recipients") or []]
    shown = ", ".join(r[:12] + "..." for r in recipients) or "recipients not recorded"
    if not have_identity():
        return (
            f"encrypted to age recipient(s) {shown}, and no backup_private_key (the backup private key, "
            "from Ansible Vault) is given"
        )
    if "_identity_recipients" not in args:
        args["_identity_recipients"] = identity_recipients()
    mine = args["_identity_recipients"]
    if mine is not None and recipients and not set(mine) & set(recipients):
        return (
            f"encrypted to age recipient(s) {shown}, not to the key in backup_private_key "
            f"({', '.join(r[:12] + '...' for r in mine)}): give the matching private key"
        )
    return None


def cached_sha256(path: Path, stat: os.stat_result, args: dict[str, Any]) -> str:
    """The file's sha256, from this host's recent scan when the file is unchanged since (same size
    and modification time, hashed less than hash_cache_seconds ago), else read in full. A takeover
    right after the pre-staging then does not read a large set from the disk a second time."""
    cache: dict[str, Any] = args.setdefault("_hash_cache", {})
    key = str(path)
    hit = cache.get(key)
    now = time.time()
    if (
        hit
        and hit.get("size") == stat.st_size
        and hit.get("mtime_ns") == stat.st_mtime_ns
        and now - float(hit.get("at", 0)) <= float(args.get("hash_cache_seconds") or 0)
    ):
        return str(hit["sha256"])
    digest = sha256_of(path)
    cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest, "at": now}
    return digest


def load_hash_cache(args: dict[str, Any]) -> None:
    path = args.get("hash_cache")
    args["_hash_cache"] = {}
    if not path or not float(args.get("hash_cache_seconds") or 0):
        return
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict):
        args["_hash_cache"] = data


def save_hash_cache(args: dict[str, Any]) -> None:
    """Best effort (the cache only saves time): written atomically, 0600, never in check mode."""
    path = args.get("hash_cache")
    if not path or not args.get("write_hash_cache") or not float(args.get("hash_cache_seconds") or 0):
        return
    write_hash_cache(Path(path), args.get("_hash_cache", {}))


def write_hash_cache(target: Path, data: dict[str, Any]) -> None:
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, target)
    except OSError:
        return


def forget_hash(cache_path: str | None, path: Path) -> None:
    """Drop one file's cached hash (it failed its check when read in full)."""
    if not cache_path:
        return
    try:
        data = json.loads(Path(cache_path).read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.pop(str(path), None) is not None:
        write_hash_cache(Path(cache_path), data)


def step_scan(args: dict[str, Any]) -> dict[str, Any]:
    mount = Path(args["mount_point"])
    root = mount / "simrs-backups"
    source_dir = root / args["source_host"]
    disk = {
        "mount_point": str(mount),
        "mounted": os.path.ismount(mount),
        "marker": (mount / ".simrs-backup-disk").is_file(),
        "sets_folder": root.is_dir(),
        "source_folder": source_dir.is_dir(),
    }
    disk["present"] = disk["sets_folder"] and (disk["mounted"] or disk["marker"])
    result: dict[str, Any] = {
        "now": iso(now_utc()),
        "disk": disk,
        "checked": [],
        "chosen": None,
        "binlogs": [],
    }
    if not disk["source_folder"]:
        return result
    names = sorted(
        (p.name for p in source_dir.iterdir() if p.is_dir() and SET_NAME_ANY.match(p.name)), reverse=True
    )
    result["sets_on_disk"] = len(names)
    load_hash_cache(args)
    for name in names:
        manifest, problem = check_set(source_dir / name, args)
        stamp = dt.datetime.strptime(SET_NAME_ANY.match(name)["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        try:
            created = iso(parse_iso((manifest or {}).get("created_at") or ""))
        except ValueError:
            created = iso(stamp)
        entry = {
            "set": name,
            "path": str(source_dir / name),
            "created_at": created,
            "good": problem is None,
            "problem": problem,
        }
        result["checked"].append(entry)
        if (
            problem is not None
            and encryption_tool(manifest or {}) == "age"
            and problem.startswith(KEY_PROBLEM)
        ):
            # Not a bad set: the right key is missing. An older set is no answer (it would restore
            # older data, or an unencrypted copy, for want of a setting): stop and say so.
            result["key_problem"] = f"{name}: {problem}"
            break
        if problem is None:
            result["chosen"] = {**entry, "manifest": manifest}
            break
    if result["chosen"]:
        chosen_at = parse_iso(result["chosen"]["created_at"])
        for entry in result["checked"][:-1]:
            entry["newer_by_seconds"] = int((parse_iso(entry["created_at"]) - chosen_at).total_seconds())
        result["chosen"]["age_seconds"] = int((now_utc() - chosen_at).total_seconds())
    save_hash_cache(args)
    binlog_dir = root / "binlogs" / args["source_host"]
    result["binlog_dir"] = str(binlog_dir)
    if binlog_dir.is_dir():
        result["binlogs"] = sorted(
            p.name for p in binlog_dir.iterdir() if p.is_file() and BINLOG_RE.match(p.name)
        )
    return result


# --- copy -----------------------------------------------------------------------------------------


def verify_copy(path: Path, files: list[dict[str, Any]]) -> str | None:
    for entry in files:
        file_path = path / entry["name"]
        if not file_path.is_file():
            return f"{entry['name']} is missing from the copy"
        if sha256_of(file_path) != entry["sha256"]:
            return f"{entry['name']}: the copy's sha256 does not match the manifest"
    return None


def step_copy(args: dict[str, Any]) -> dict[str, Any]:
    src = Path(args["src"])
    dest_root = Path(args["dest_root"])
    target = dest_root / args["set"]
    files = args["files"]
    dest_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dest_root, 0o700)
    if target.is_dir() and (target / "manifest.json").is_file() and verify_copy(target, files) is None:
        return {"changed": False, "path": str(target), "detail": "a verified copy was already on local disk"}
    needed = sum((src / f["name"]).stat().st_size for f in files) + (src / "manifest.json").stat().st_size
    free = shutil.disk_usage(dest_root).free
    if free < needed * 1.05:
        raise StepError(
            f"{dest_root} has {free // 2**20} MiB free, the set needs {needed // 2**20} MiB: "
            "free space there "
            f"or set restore_local_dir to a larger disk"
        )
    partial = dest_root / f".{args['set']}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    partial.mkdir(mode=0o700)
    started = time.monotonic()
    digests = {f["name"]: f["sha256"] for f in files}
    for name in [f["name"] for f in files] + ["manifest.json"]:
        dest = partial / name
        digest = hashlib.sha256()
        with (
            (src / name).open("rb", buffering=0) as reader,
            os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer,
        ):
            for block in iter(lambda: reader.read(READ_BLOCK), b""):
                digest.update(block)
                writer.write(block)
        # Hashed as read from the disk, so the copy is not read back; neither is it fsynced: load
        # and accounts hash every byte again as they read the copy, and a copy found here on a
        # later run is hashed before it is used.
        if name in digests and digest.hexdigest() != digests[name]:
            shutil.rmtree(partial, ignore_errors=True)
            raise StepError(
                f"copying {args['set']} to local disk went wrong: {name} as read from the disk does "
                "not match the manifest's sha256; the copy was removed"
            )
    partial.rename(target)
    return {
        "changed": True,
        "path": str(target),
        "bytes": needed,
        "seconds": round(time.monotonic() - started, 2),
        "detail": f"copied {needed} bytes, hashed as read; load and accounts hash them again as they read",
    }


# --- reading a set's compressed (and maybe encrypted) files ---------------------------------------


class HashedFeed(threading.Thread):
    """Reads one file of a set once into the first process of a pipe, hashing every byte on the way:
    what the pipe gets is exactly what is checked against the manifest, with no second read.

    When the pipe stops early (a tool failed) the rest of the file is still read and hashed, so
    that the step can say whether the file itself is corrupt or the tool failed on good bytes."""

    def __init__(self, path: Path, sink: Any) -> None:
        super().__init__(name=f"read {path.name}", daemon=True)
        self.path = path
        self.sink = sink
        self.size = 0
        self.digest = ""
        self.error: OSError | None = None
        self.cut = False
        self.stop = threading.Event()

    def run(self) -> None:
        digest = hashlib.sha256()
        try:
            with self.path.open("rb", buffering=0) as handle:
                while not self.stop.is_set():
                    block = handle.read(READ_BLOCK)
                    if not block:
                        break
                    digest.update(block)
                    self.size += len(block)
                    if not self.cut:
                        try:
                            self.sink.write(block)
                        except (BrokenPipeError, ValueError):
                            self.cut = True
        except OSError as exc:
            self.error = exc
        finally:
            with contextlib.suppress(OSError, ValueError):
                self.sink.close()
            self.digest = digest.hexdigest()


@dataclasses.dataclass
class Reading:
    """A set's file being read: the decompressed bytes (stream), the processes to wait for, and the
    reader that hashes the file as it goes (when the manifest's entry was given)."""

    path: Path
    stream: Any
    procs: list[subprocess.Popen]
    feed: HashedFeed | None = None
    expect: dict[str, Any] | None = None

    def kill(self) -> None:
        if self.feed is not None:
            self.feed.stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()
        if self.feed is not None:
            self.feed.join()
        self.close()

    def close(self) -> None:
        for handle in [self.stream] + [p.stdin for p in self.procs] + [p.stderr for p in self.procs]:
            if handle is not None:
                with contextlib.suppress(OSError, ValueError):
                    handle.close()


def open_stream(path: Path, encrypted: bool, expect: dict[str, Any] | None = None) -> Reading:
    """A binary stream of the decompressed file. With expect (the manifest's entry of the file:
    size, sha256) the file is read by a HashedFeed and finish() checks it against the entry."""
    procs: list[subprocess.Popen] = []
    source: Any = None
    if encrypted and path.name.endswith(AGE_SUFFIX):
        if not have_identity():
            raise StepError(
                "the set is encrypted to age recipients and no backup_private_key (the backup private "
                "key) was given"
            )
        with identity_pipe() as name:
            dec = subprocess.Popen(
                age_decrypt(name) + ([] if expect else [str(path)]),
                stdin=subprocess.PIPE if expect else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(int(name.rsplit("/", 1)[1]),),
            )
        procs.append(dec)
        source = dec.stdout
    elif encrypted:
        if not have_key():
            raise StepError("the set is encrypted and no restore_encryption_key was given")
        with key_pipe() as key_fd:
            dec = subprocess.Popen(
                [*OPENSSL_DEC, "-pass", f"fd:{key_fd}"] + ([] if expect else ["-in", str(path)]),
                stdin=subprocess.PIPE if expect else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(key_fd,),
            )
        procs.append(dec)
        source = dec.stdout
    zstd = subprocess.Popen(
        ["zstd", "-dc"] + ([] if encrypted or expect else [str(path)]),
        stdin=source if encrypted else subprocess.PIPE if expect else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if source is not None:
        source.close()
    procs.append(zstd)
    reading = Reading(path, zstd.stdout, procs, expect=expect)
    if expect:
        reading.feed = HashedFeed(path, procs[0].stdin)
        reading.feed.start()
    return reading


def finish(reading: Reading, what: str) -> None:
    """Wait for the pipe; the file's hash is checked first (corrupt bytes make the tools fail too,
    and the corruption is the reason to give), then every tool's exit code."""
    try:
        check_reading(reading, what)
    finally:
        reading.close()


def check_reading(reading: Reading, what: str) -> None:
    for proc in reading.procs:
        proc.wait()
    feed, expect = reading.feed, reading.expect
    if feed is not None and expect is not None:
        feed.join()
        name = reading.path.name
        if feed.error is not None:
            raise StepError(f"{what}: reading {name} failed: {feed.error}")
        if feed.size != expect.get("size", feed.size) or feed.digest != expect.get("sha256"):
            raise StepError(
                f"{what}: {name} read {feed.size} bytes whose sha256 does not match the manifest "
                "(the file changed or is corrupt on the disk since it was checked)"
            )
    for proc in reading.procs:
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise StepError(f"{what}: {Path(proc.args[0]).name} exited {proc.returncode}: {err[-600:]}")


# --- load -----------------------------------------------------------------------------------------

STATEMENT_START = re.compile(
    rb"^(CREATE DATABASE|USE |DROP TABLE|CREATE TABLE|INSERT |LOCK TABLES|/\*!50001|DROP VIEW"
    rb"|/\*!40000 DROP DATABASE|DROP DATABASE)"
)
# Every line of a dump that names a database: CREATE DATABASE, USE, and DROP DATABASE
# (--add-drop-database): each is pointed at the fresh database, or the load stops.
DB_LINE = re.compile(rb"^(CREATE DATABASE|USE |/\*!40000 DROP DATABASE|DROP DATABASE)")
FIRST_IDENT = re.compile(rb"^(.*?`)([^`]+)(`.*)$", re.S)


def rewrite_db_line(line: bytes, dbmap: dict[str, str]) -> bytes:
    match = FIRST_IDENT.match(line)
    name = match.group(2).decode(errors="replace") if match else "?"
    if name not in dbmap:
        raise StepError(
            f"the dump names database {name!r}, which the manifest does not list; stopped before touching it"
        )
    return match.group(1) + dbmap[name].encode() + match.group(3)


def preamble(first_statement: bytes, dbmap: dict[str, str]) -> list[bytes]:
    """A --databases dump names its databases (CREATE DATABASE / USE); a dump of one database's
    tables does not, and goes into the single fresh database."""
    if DB_LINE.match(first_statement):
        return []
    if len(dbmap) != 1:
        raise StepError(
            "the dump names no database but the manifest lists several: cannot tell which table "
            "belongs where; stopped"
        )
    fresh = ident(next(iter(dbmap.values())))
    return [f"CREATE DATABASE {fresh};\nUSE {fresh};\n".encode()]


def step_load(args: dict[str, Any]) -> dict[str, Any]:
    dbmap: dict[str, str] = args["dbmap"]
    for fresh in list(dbmap.values()) + [
        d for orig in dbmap for d in databases_like(args, f"{orig}__restore_")
    ]:
        sql(args, f"DROP DATABASE IF EXISTS {ident(fresh)}")
    data = Path(args["path"]) / args["data_file"]
    # Hashed as it is loaded: the rows come from exactly the bytes the manifest lists.
    reading = open_stream(data, args.get("encrypted", False), args.get("expect"))
    stream = reading.stream
    client = subprocess.Popen(
        [*args.get("mariadb", ["mariadb"]), "--batch", "--max-allowed-packet=1G"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    total = 0
    head: list[bytes] | None = []  # lines before the first statement; None once it was seen
    try:
        for raw in stream:
            total += len(raw)
            if head is not None:
                if not STATEMENT_START.match(raw):
                    head.append(raw)
                    continue
                client.stdin.writelines([*head, *preamble(raw, dbmap)])
                head = None
            client.stdin.write(rewrite_db_line(raw, dbmap) if DB_LINE.match(raw) else raw)
        if head:
            client.stdin.writelines(head)
        client.stdin.close()
    except BrokenPipeError:
        # The client stopped (an SQL error): its message says why; stop the readers too.
        reading.kill()
    except BaseException:
        client.kill()
        reading.kill()
        raise
    client.wait()
    if client.returncode != 0:
        reading.kill()
        raise StepError(
            f"loading {data.name} failed: {client.stderr.read().decode(errors='replace').strip()[-600:]}"
        )
    finish(reading, f"reading {data.name}")
    return {"bytes": total, "seconds": round(time.monotonic() - started, 2)}


# --- counts ---------------------------------------------------------------------------------------


def spread(tables: list[tuple[str, str, str]], expected: dict[str, int], workers: int) -> list[list[str]]:
    """COUNT(*) statements for the tables, in at most `workers` lists of about equal rows (largest
    first to the emptiest list): each list is one mariadb client, and the clients count at once."""
    lists: list[list[str]] = [[] for _ in range(max(1, min(workers, len(tables))))]
    load = [0] * len(lists)
    for key, db, table in sorted(tables, key=lambda t: (-expected.get(t[0], 0), t[0])):
        i = load.index(min(load))
        lists[i].append(f"SELECT {quote(key)}, COUNT(*) FROM {ident(db)}.{ident(table)};")
        load[i] += max(expected.get(key, 0), 1)
    return [part for part in lists if part]


def count_rows(args: dict[str, Any], tables: list[tuple[str, str, str]], expected: dict[str, int]) -> dict:
    """Row counts by key of (key, database, table), counted in parallel clients. A client that
    fails (a damaged table) is retried table by table, so that only that table counts as None."""
    argv = [*args.get("mariadb", ["mariadb"]), "--batch", "--skip-column-names", "--raw", "-e"]
    procs = [
        subprocess.Popen([*argv, " ".join(part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for part in spread(tables, expected, int(args.get("count_workers") or 2))
    ]
    counts: dict[str, int | None] = {}
    failed = False
    for proc in procs:
        out, _err = proc.communicate(timeout=args.get("sql_timeout", 600))
        failed = failed or proc.returncode != 0
        for line in out.splitlines():
            key, _, got = line.partition("\t")
            counts[key] = int(got)
    for key, db, table in tables if failed else []:
        if key not in counts:
            try:
                counts[key] = int(sql(args, f"SELECT COUNT(*) FROM {ident(db)}.{ident(table)}")[0][0])
            except StepError:
                counts[key] = None
    return counts


def step_counts(args: dict[str, Any]) -> dict[str, Any]:
    dbmap: dict[str, str] = args["dbmap"]
    expected: dict[str, int] = args["row_counts"]
    present = {db: base_tables(args, fresh) for db, fresh in dbmap.items()}
    wanted = [
        (key, dbmap[db], table)
        for key in sorted(expected)
        for db, _, table in [key.partition(".")]
        if db in dbmap and table in present[db]
    ]
    got = count_rows(args, wanted, expected) if wanted else {}
    counts: dict[str, int | None] = {}
    mismatches = []
    for key, want in sorted(expected.items()):
        if key.partition(".")[0] not in dbmap:
            continue
        # A table the manifest lists but the restored database lacks counts as None: a mismatch.
        counts[key] = got.get(key)
        if counts[key] != want:
            mismatches.append({"table": key, "expected": want, "restored": counts[key]})
    extra = []
    objects = []
    for db, fresh in dbmap.items():
        extra += [f"{db}.{t}" for t in present[db] if f"{db}.{t}" not in expected]
        objects += other_objects(args, fresh)
    return {
        "ok": not mismatches and bool(counts),
        "counts": counts,
        "mismatches": mismatches,
        "tables_not_in_manifest": extra,
        "unsupported_objects": objects,
    }


# --- replay ---------------------------------------------------------------------------------------


def scan_binlog(lines, start: int) -> dict[str, Any]:
    """The end of the last complete transaction at or after start, its time, and whether the file
    ended with a rotation (then it is complete and the next file follows without a gap)."""
    safe, safe_time, groups = start, None, 0
    group = None  # None | "pending" (GTID seen) | "trans" (inside BEGIN ... COMMIT)
    group_time = None
    last_end = start
    rotated = False
    in_range = False
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("# at "):
            in_range = int(line[5:].strip() or 0) >= start
            continue
        header = HEADER.match(line)
        if header:
            if not in_range:
                continue
            when = dt.datetime.strptime(f"{header.group(1)} {header.group(2)}", "%y%m%d %H:%M:%S")
            end, kind = int(header.group(3)), header.group(4)
            last_end = end
            if kind.startswith("GTID"):
                group, group_time = "pending", when
            elif group == "pending":
                # A GTID not followed by BEGIN: one standalone event (DDL) is the whole group.
                safe, safe_time, groups, group = end, group_time, groups + 1, None
            elif group is None:
                if kind.startswith("Rotate to"):
                    rotated = True
                safe = (
                    max(safe, end)
                    if not kind.startswith(
                        ("Table_map", "Write_rows", "Update_rows", "Delete_rows", "Query", "Annotate")
                    )
                    else safe
                )
            continue
        if not in_range:
            continue
        text = line.strip()
        if group == "pending" and text.startswith(("START TRANSACTION", "BEGIN")):
            group = "trans"
        elif group == "trans" and text.startswith(("COMMIT", "ROLLBACK")):
            safe, safe_time, groups, group = last_end, group_time, groups + 1, None
    return {"safe_end": safe, "last_time": safe_time, "transactions": groups, "rotated": rotated}


def binlog_text(args: dict[str, Any], path: Path, start: int, stop: int | None = None) -> list[str]:
    argv = [*args.get("mariadb_binlog", ["mariadb-binlog"]), f"--start-position={start}"]
    if stop is not None:
        argv.append(f"--stop-position={stop}")
    return [*argv, str(path)]


def shipped_binlogs(binlog_dir: Path, base: str) -> dict[int, Path]:
    """The shipped binlogs of one base name by number: NAME.NNNNNN, or NAME.NNNNNN.age (.enc) when
    encrypted."""
    found: dict[int, Path] = {}
    if not binlog_dir.is_dir():
        return found
    for path in binlog_dir.iterdir():
        match = BINLOG_RE.match(path.name)
        if path.is_file() and match and match["base"] == base:
            found[int(match["number"])] = path
    return found


def plain_binlog(path: Path, scratch: Path) -> tuple[Path | None, str | None]:
    """The binlog as mariadb-binlog can read it: checked against its .sha256 (when shipped with
    one) and decrypted into scratch when it is encrypted. (None, problem) when it cannot be used."""
    digest_file = path.with_name(path.name + ".sha256")
    if digest_file.is_file():
        want = digest_file.read_text().split()[0] if digest_file.read_text().split() else ""
        if sha256_of(path) != want:
            return None, f"{path.name} does not match its .sha256 (corrupt)"
    aged = path.name.endswith(AGE_SUFFIX)
    if not aged and not path.name.endswith(ENC_SUFFIX):
        return path, None
    if aged and not have_identity():
        return None, f"{path.name} is encrypted to age recipients and no backup_private_key was given"
    if not aged and not have_key():
        return None, f"{path.name} is encrypted and no restore_encryption_key was given"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    plain = scratch / path.name.removesuffix(AGE_SUFFIX if aged else ENC_SUFFIX)
    # Nested, not one parenthesized with: the standby's Python may be 3.9.
    with os.fdopen(os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        if aged:
            with identity_pipe() as name:
                proc = subprocess.run(
                    [*age_decrypt(name), str(path)],
                    stdout=out,
                    stderr=subprocess.PIPE,
                    check=False,
                    pass_fds=(int(name.rsplit("/", 1)[1]),),
                )
        else:
            with key_pipe() as key_fd:
                proc = subprocess.run(
                    [*OPENSSL_DEC, "-pass", f"fd:{key_fd}", "-in", str(path)],
                    stdout=out,
                    stderr=subprocess.PIPE,
                    check=False,
                    pass_fds=(key_fd,),
                )
    if proc.returncode != 0:
        plain.unlink(missing_ok=True)
        return (
            None,
            f"{path.name} could not be decrypted: {proc.stderr.decode(errors='replace').strip()[-200:]}",
        )
    return plain, None


def replay_file(args: dict[str, Any], plain: Path, pos: int, stop: int) -> None:
    """Apply [pos, stop) of one binlog to the databases of dbmap, each renamed to its target."""
    env = {**os.environ, "TZ": "UTC"}
    for orig, target in args["dbmap"].items():
        # --database filters by the original name (MariaDB 10.11 filters before rewriting).
        reader = subprocess.Popen(
            [
                *binlog_text(args, plain, pos, stop)[:-1],
                f"--rewrite-db={orig}->{target}",
                f"--database={orig}",
                str(plain),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        client = subprocess.run(
            [*args.get("mariadb", ["mariadb"]), "--batch", "--max-allowed-packet=1G"],
            stdin=reader.stdout,
            capture_output=True,
            check=False,
        )
        reader.stdout.close()
        reader_err = reader.stderr.read().decode(errors="replace")
        reader.wait()
        if reader.returncode != 0 or client.returncode != 0:
            reason = (client.stderr.decode(errors="replace") or reader_err).strip()[-600:]
            raise StepError(f"replaying {plain.name} from {pos} into {target} failed: {reason}")


def step_replay(args: dict[str, Any]) -> dict[str, Any]:
    binlog_dir = Path(args["binlog_dir"])
    # Decrypted binlogs are patient data: under the role's private local folder (restore_local_dir).
    scratch = Path(args["scratch_dir"]) / ".simrs-restore-binlogs"
    start_file, start_pos = args["start"]["file"], int(args["start"]["position"])
    result: dict[str, Any] = {
        "files": [],
        "end": {"file": start_file, "position": start_pos},
        "last_event_at": None,
        "stopped": None,
        "transactions": 0,
    }
    match = BINLOG_RE.match(start_file)
    if not match or match["suffix"]:
        result["stopped"] = f"the backup's binlog name {start_file!r} is not BASENAME.NNNNNN"
        return result
    number = int(match["number"])
    available = shipped_binlogs(binlog_dir, match["base"])
    if not available or max(available) < number:
        result["stopped"] = "no shipped binlogs at or after the backup's position"
        return result
    if number not in available:
        result["stopped"] = (
            f"{start_file} (where the backup ends) is not on the disk: later ones would leave a gap"
        )
        return result
    env = {**os.environ, "TZ": "UTC"}
    pos = start_pos
    try:
        while number in available:
            plain, problem = plain_binlog(available[number], scratch)
            if plain is None:
                result["stopped"] = f"{problem}; replay stopped before it"
                break
            # Streamed: a binlog's text can be far larger than memory should hold. The exit code is
            # not checked: a truncated copy ends with a read error, and only whole transactions count.
            with subprocess.Popen(
                binlog_text(args, plain, pos),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                errors="replace",
                env=env,
            ) as scan_proc:
                found = scan_binlog(scan_proc.stdout, pos)
            if found["transactions"] and args.get("apply"):
                replay_file(args, plain, pos, found["safe_end"])
            if found["transactions"]:
                result["files"].append(
                    {
                        "file": plain.name,
                        "from": pos,
                        "to": found["safe_end"],
                        "transactions": found["transactions"],
                    }
                )
                result["transactions"] += found["transactions"]
                result["last_event_at"] = iso(found["last_time"].replace(tzinfo=UTC))
            result["end"] = {"file": plain.name, "position": found["safe_end"]}
            if not found["rotated"]:
                # The newest file (still being written when it was copied) or a truncated copy: a
                # later file would leave a gap, so the replay ends here.
                if number + 1 in available:
                    result["stopped"] = (
                        f"{plain.name} ends without a rotation (truncated copy); later ones not replayed"
                    )
                break
            number, pos = number + 1, 4
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# --- switch ---------------------------------------------------------------------------------------


def step_switch(args: dict[str, Any]) -> dict[str, Any]:
    dbmap: dict[str, str] = args["dbmap"]
    stamp = args["stamp"]
    pairs: list[str] = []
    previous = []
    moved = 0
    for orig, fresh in dbmap.items():
        objects = other_objects(args, orig) + other_objects(args, fresh)
        if objects:
            raise StepError(
                "RENAME TABLE cannot move these between databases: "
                + ", ".join(objects)
                + "; this restore switches tables only. The live database was not touched."
            )
        live = base_tables(args, orig) if db_exists(args, orig) else []
        restored = base_tables(args, fresh)
        if not restored:
            raise StepError(
                f"{fresh} holds no tables: nothing to switch to; the live database was not touched"
            )
        charset = sql(
            args,
            "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
            f"WHERE schema_name = {quote(fresh)}",
        )[0]
        sql(
            args,
            f"CREATE DATABASE IF NOT EXISTS {ident(orig)} CHARACTER SET {charset[0]} COLLATE {charset[1]}",
        )
        if live:
            old = f"{orig}__old_{stamp}"[:64]
            sql(args, f"DROP DATABASE IF EXISTS {ident(old)}; CREATE DATABASE {ident(old)}")
            pairs += [f"{ident(orig)}.{ident(t)} TO {ident(old)}.{ident(t)}" for t in live]
            previous.append(old)
        pairs += [f"{ident(fresh)}.{ident(t)} TO {ident(orig)}.{ident(t)}" for t in restored]
        moved += len(restored)
    # One statement: MariaDB renames all of them or none (atomic DDL), so no client ever sees a
    # database that is half the old data and half the restored.
    sql(args, "RENAME TABLE " + ", ".join(pairs))
    for fresh in dbmap.values():
        sql(args, f"DROP DATABASE IF EXISTS {ident(fresh)}")
    dropped = []
    if not args.get("keep_previous"):
        for orig in dbmap:
            for old in databases_like(args, f"{orig}__old_"):
                sql(args, f"DROP DATABASE IF EXISTS {ident(old)}")
                dropped.append(old)
    return {"tables": moved, "previous": [p for p in previous if p not in dropped], "dropped": dropped}


# --- accounts -------------------------------------------------------------------------------------


def renew_create_user(line: bytes) -> bytes:
    """CREATE USER [IF NOT EXISTS] -> CREATE OR REPLACE USER: the set's account wins over one the
    standby may already have (with another password or host)."""
    for prefix in (b"CREATE USER IF NOT EXISTS ", b"CREATE USER "):
        if line.startswith(prefix):
            return b"CREATE OR REPLACE USER " + line[len(prefix) :]
    return line


def step_accounts(args: dict[str, Any]) -> dict[str, Any]:
    path = Path(args["path"]) / args["accounts_file"]
    if not path.is_file() or ("expect" in args and not args["expect"]):
        # A file the manifest does not list is not the set's: it is never applied unchecked.
        return {"statements": 0, "skipped_system": 0, "detail": f"the set has no {path.name}"}
    # Hashed as it is read: nothing is applied unless the whole file matches the manifest.
    reading = open_stream(path, args.get("encrypted", False), args.get("expect"))
    out = []
    statements = skipped = 0
    for raw in reading.stream:
        if SYSTEM_ACCOUNTS.search(raw):
            skipped += 1
            continue
        line = renew_create_user(raw)
        if line.startswith((b"CREATE", b"GRANT", b"ALTER USER", b"SET DEFAULT ROLE", b"/*")):
            statements += 1
        out.append(line)
    finish(reading, f"reading {path.name}")
    proc = subprocess.run(
        [*args.get("mariadb", ["mariadb"]), "--batch"],
        input=b"".join(out) + b"\nFLUSH PRIVILEGES;\n",
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StepError(
            f"recreating the accounts failed: {proc.stderr.decode(errors='replace').strip()[-600:]}"
        )
    return {"statements": statements, "skipped_system": skipped}


# --- state, mark, cleanup -------------------------------------------------------------------------


def step_state(args: dict[str, Any]) -> dict[str, Any]:
    marker_db = args["marker_db"]
    markers: dict[str, Any] = {}
    if db_exists(args, marker_db):
        rows = sql(args, f"SELECT db, info FROM {ident(marker_db)}.restored")
        markers = {r[0]: json.loads(r[1]) for r in rows}
    live = {}
    for db in args["databases"]:
        live[db] = len(base_tables(args, db)) if db_exists(args, db) else None
    last_visit = None
    if args.get("last_visit_query") and live.get(args["databases"][0]):
        try:
            rows = sql(args, f"USE {ident(args['databases'][0])}; {args['last_visit_query']}")
            if rows:
                no_rawat, tgl_registrasi, jam_reg = rows[0][:3]
                last_visit = {"no_rawat": no_rawat, "tgl_registrasi": tgl_registrasi, "jam_reg": jam_reg}
        except StepError:
            last_visit = None
    in_service = False
    if args.get("service_ip"):
        addrs = subprocess.run(
            ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
        ).stdout
        in_service = f" {args['service_ip']}/" in addrs
    leftovers = [
        d for db in args["databases"] for p in ("__restore_", "__old_") for d in databases_like(args, db + p)
    ]
    return {
        "markers": markers,
        "live_tables": live,
        "last_visit": last_visit,
        "in_service": in_service,
        "leftovers": leftovers,
    }


def step_mark(args: dict[str, Any]) -> dict[str, Any]:
    marker_db = ident(args["marker_db"])
    sql(
        args,
        f"CREATE DATABASE IF NOT EXISTS {marker_db}; CREATE TABLE IF NOT EXISTS {marker_db}.restored "
        "(db VARCHAR(64) NOT NULL PRIMARY KEY, info TEXT NOT NULL, updated_at DATETIME NOT NULL) "
        "ENGINE=InnoDB",
    )
    info = dict(args["info"], marked_at=iso(now_utc()))
    for db in args["databases"]:
        sql(
            args,
            f"REPLACE INTO {marker_db}.restored VALUES "
            f"({quote(db)}, {quote(json.dumps(info, sort_keys=True))}, UTC_TIMESTAMP())",
        )
    return {"info": info}


def step_cleanup(args: dict[str, Any]) -> dict[str, Any]:
    dropped = []
    for db in args.get("databases", []):
        for fresh in databases_like(args, f"{db}__restore_"):
            sql(args, f"DROP DATABASE IF EXISTS {ident(fresh)}")
            dropped.append(fresh)
    removed = []
    keep = args.get("keep_copy")
    root = Path(args["local_root"]) if args.get("local_root") else None
    if keep and root and root.is_dir():
        for child in root.iterdir():
            if child.name != keep and (SET_NAME_ANY.match(child.name) or child.name.endswith(".partial")):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
    return {"dropped": dropped, "removed_copies": removed}


# --- physical: a fresh data folder, exchanged with the live one -------------------------------------

FRESH_TAG = ".restore-"
PREVIOUS_TAG = ".previous-"
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def live_datadir(args: dict[str, Any]) -> Path:
    """The running server's data folder (its own word, not a guess from the configuration)."""
    rows = sql(args, "SELECT @@datadir")
    return Path(rows[0][0].rstrip("/"))


def fresh_path(datadir: Path, stamp: str) -> Path:
    return datadir.with_name(f".{datadir.name}{FRESH_TAG}{stamp}")


def exchange(one: Path, other: Path) -> str:
    """Swap two directories in one atomic renameat2(RENAME_EXCHANGE): at every instant the live
    path names a complete data folder. Where the filesystem cannot exchange, three renames
    (the window between them is while MariaDB is stopped)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.renameat2(AT_FDCWD, bytes(one), AT_FDCWD, bytes(other), RENAME_EXCHANGE)
        if rc == 0:
            return "renameat2"
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise StepError(f"exchanging {one} and {other} failed: {os.strerror(code)}")
    except AttributeError:
        pass  # a C library without renameat2
    swap = one.with_name(one.name + ".swap")
    os.rename(one, swap)
    os.rename(other, one)
    os.rename(swap, other)
    return "rename"


def systemctl(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *argv], capture_output=True, text=True, timeout=600, check=False)


def units_active(units: list[str]) -> dict[str, bool]:
    return {u: systemctl("is-active", "--quiet", u).returncode == 0 for u in units}


def stop_units(units: list[str]) -> None:
    # Sockets first: Debian's mariadb.socket would start MariaDB again on the next connection.
    for unit in sorted(units, key=lambda u: not u.endswith(".socket")):
        proc = systemctl("stop", unit)
        if proc.returncode != 0 and "not loaded" not in proc.stderr:
            raise StepError(f"systemctl stop {unit} failed: {proc.stderr.strip()[-300:]}")
    if subprocess.run(["pidof", "mariadbd"], capture_output=True, check=False).returncode == 0:
        raise StepError("mariadbd still runs after stopping its units: its data folder cannot be switched")


def start_units(args: dict[str, Any], units: list[str], was_active: dict[str, bool]) -> None:
    service = args["service"]
    proc = systemctl("start", service)
    if proc.returncode != 0:
        raise StepError(f"systemctl start {service} failed: {proc.stderr.strip()[-300:]}")
    deadline = time.monotonic() + args.get("start_timeout", 600)
    while True:
        try:
            sql({**args, "sql_timeout": 10}, "SELECT 1")
            break
        except (StepError, subprocess.TimeoutExpired) as exc:
            if time.monotonic() > deadline:
                raise StepError(f"MariaDB did not answer after starting: {exc}") from None
            time.sleep(1)
    for unit in units:
        if unit != service and was_active.get(unit):
            systemctl("start", unit)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP (a stopped ansible-playbook, a closed session) raise as Ctrl-C does, so
    that the step's clean-up runs instead of the process vanishing with a half-written folder."""

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_unpacked(fresh: Path, name: str) -> None:
    if not (fresh / "mysql").is_dir() or not (fresh / "ibdata1").is_file():
        raise StepError(f"{name} unpacked to no MariaDB data folder (no mysql/ or ibdata1)")


def step_unpack(args: dict[str, Any]) -> dict[str, Any]:
    datadir = live_datadir(args)
    if os.path.ismount(datadir):
        raise StepError(
            f"{datadir} is a mount point: a fresh data folder beside it would be on another filesystem "
            "and cannot be switched in by a rename. Restore a dump set instead, or move the data folder "
            "into a folder of that filesystem. Nothing was changed."
        )
    fresh = fresh_path(datadir, args["stamp"])
    # Leftovers of an earlier attempt that never switched (never the live folder itself).
    for stale in datadir.parent.glob(f".{datadir.name}{FRESH_TAG}*"):
        shutil.rmtree(stale, ignore_errors=True)
    needed = int(args.get("unpacked_bytes") or 0)
    free = shutil.disk_usage(datadir.parent).free
    if needed and free < needed * 1.1 + 64 * 2**20:
        raise StepError(
            f"{datadir.parent} has {free // 2**20} MiB free; the restored data folder needs "
            f"{needed // 2**20} MiB beside the live one (which is kept until the restore is checked). "
            "Free space there. Nothing was changed."
        )
    data = Path(args["path"]) / args["data_file"]
    expect = args.get("expect") or {}
    if not expect.get("sha256"):
        raise StepError(f"no sha256 of {data.name} was given: a set is never unpacked unchecked")
    started = time.monotonic()
    fresh.mkdir(mode=0o700)
    reading = None
    try:
        with interruptible():
            # Straight from the external disk, read once: the same bytes go to sha256 and to
            # (decryption,) decompression and mbstream. The fresh folder is not live; it is
            # switched in only after the whole file matched the manifest.
            reading = open_stream(data, args.get("encrypted", False), expect)
            # Two writer threads: mbstream's time is the kernel's writes, not its own CPU.
            unpack = subprocess.Popen(
                ["mbstream", "-x", "-p", "2", "-C", str(fresh)],
                stdin=reading.stream,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            reading.stream.close()
            reading.procs.append(unpack)
            try:
                finish(reading, f"unpacking {data.name}")
            except StepError as exc:
                if reading.feed is None or reading.feed.digest == expect["sha256"]:
                    raise
                # The scan may have trusted a cached hash: the next scan reads the file again.
                forget_hash(args.get("hash_cache"), data)
                raise StepError(
                    f"{exc} Nothing of it was used. Run the restore again: its scan then hashes the "
                    "set in full and skips it if it is corrupt."
                ) from None
            check_unpacked(fresh, data.name)
            live = datadir.stat()
            total = 0
            for root, dirs, files in os.walk(fresh):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    os.chown(path, live.st_uid, live.st_gid, follow_symlinks=False)
                    if name in files:
                        total += os.path.getsize(path)
            os.chown(fresh, live.st_uid, live.st_gid)
            os.chmod(fresh, live.st_mode & 0o7777)
            # On disk before anything depends on it (MariaDB does not fsync the files it finds).
            subprocess.run(["sync", "-f", str(fresh)], check=True, timeout=3600)
    except BaseException:
        # Ctrl-C, a signal, a failed tool or a hash that does not match: the tools are stopped
        # before the fresh folder goes, so that nothing writes into it afterwards.
        if reading is not None:
            reading.kill()
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return {
        "datadir": str(datadir),
        "fresh": str(fresh),
        "bytes": total,
        "read_bytes": reading.feed.size if reading.feed else None,
        "verified": True,
        "seconds": round(time.monotonic() - started, 2),
    }


def step_dswitch(args: dict[str, Any]) -> dict[str, Any]:
    datadir, fresh = Path(args["datadir"]), Path(args["fresh"])
    if not fresh.is_dir():
        raise StepError(f"the unpacked data folder {fresh} is missing; nothing was switched")
    units = args["units"]
    was_active = units_active(units)
    started = time.monotonic()
    stop_units(units)
    how = exchange(fresh, datadir)
    try:
        start_units(args, units, was_active)
    except StepError as exc:
        # The restored folder does not start: the previous one goes back in, and is started.
        stop_units(units)
        exchange(fresh, datadir)
        start_units(args, units, was_active)
        raise StepError(
            f"MariaDB did not start on the restored data ({exc}); switched back to the previous data "
            f"folder, which runs again (the restored one is left at {fresh} for a look; the next run "
            "removes it)"
        ) from None
    return {
        "switched": True,
        "how": how,
        "previous": str(fresh),
        "units_active_before": was_active,
        "seconds": round(time.monotonic() - started, 2),
    }


def step_dback(args: dict[str, Any]) -> dict[str, Any]:
    datadir, previous = Path(args["datadir"]), Path(args["previous"])
    if not previous.is_dir():
        raise StepError(f"the previous data folder {previous} is gone: cannot switch back")
    units = args["units"]
    was_active = {**units_active(units), **args.get("units_active_before", {})}
    stop_units(units)
    exchange(previous, datadir)
    start_units(args, units, was_active)
    # The previous name now holds the restored data that failed its check.
    shutil.rmtree(previous, ignore_errors=True)
    return {"switched_back": True}


def step_dfinish(args: dict[str, Any]) -> dict[str, Any]:
    datadir, previous = Path(args["datadir"]), Path(args["previous"])
    kept = None
    if args.get("keep_previous") and previous.is_dir():
        kept = datadir.with_name(f"{datadir.name}{PREVIOUS_TAG}{args['stamp']}")
        shutil.rmtree(kept, ignore_errors=True)
        previous.rename(kept)
    else:
        shutil.rmtree(previous, ignore_errors=True)
    removed = []
    if not args.get("keep_previous"):
        for old in datadir.parent.glob(f"{datadir.name}{PREVIOUS_TAG}*"):
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
    return {"kept": str(kept) if kept else None, "removed": removed}


STEPS = {
    "scan": step_scan,
    "copy": step_copy,
    "state": step_state,
    "load": step_load,
    "counts": step_counts,
    "replay": step_replay,
    "switch": step_switch,
    "accounts": step_accounts,
    "mark": step_mark,
    "cleanup": step_cleanup,
    "unpack": step_unpack,
    "dswitch": step_dswitch,
    "dback": step_dback,
    "dfinish": step_dfinish,
}
