#!/usr/bin/python
"""Ansible module simrs.downtime.backup_take (role backup): write one backup set onto the disk.

Owns the writing side of docs/backup-format.md: a set is built in .<stamp>-<method>.partial/,
every file hashed as it is written, manifest.json last, then renamed to its final name; on any
failure the .partial directory is removed and nothing else on the disk is touched.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_take
short_description: Take one backup set (dump or physical) of the SIMRS databases onto the external
  disk
description:
- C(dump) runs mariadb-dump C(--single-transaction --master-data=2 --gtid) (one consistent snapshot,
  no global read lock) and counts the rows of every table and the newest visit from the dump stream
  itself, so the counts are exactly those of the data in the set.
- C(physical) runs mariadb-backup C(--backup) into a staging folder inside the set, prepares it, streams
  the prepared folder with mbstream into the set, then counts rows on a scratch server started on the
  staging copy (its crash recovery rolls back the transaction in flight at the backup point, as a real
  restore does), and removes the staging folder.
- Both write accounts.sql.zst (CREATE USER IF NOT EXISTS / ALTER USER / GRANT with password hashes
  only) for the accounts named in O(accounts).
- Changes nothing in check mode (returns what it would do).
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
- simrs.downtime.backup_disk.marker
options:
  source_host:
    description: Name of this server, the set's folder on the disk.
    type: str
    required: true
  method:
    description: dump or physical.
    type: str
    choices:
    - dump
    - physical
    default: dump
  databases:
    description: The SIMRS databases.
    type: list
    elements: str
    required: true
  accounts:
    description: Database accounts (user names) to save with their grants.
    type: list
    elements: str
    default: []
  last_visit_table:
    description: Table whose newest row is the set's last_visit (empty for none).
    type: str
    default: reg_periksa
  recipients:
    description:
    - age public keys (age1...) to encrypt every file of the set to (C(<name>.age)); the manifest
      records them. Only their private keys (kept off this server) can read the set.
    type: list
    elements: str
    default: []
  encryption_key:
    description:
    - Encrypt data files with openssl enc (aes-256-cbc, pbkdf2), the older passphrase scheme kept
      for compatibility; prefer O(recipients). Not with O(recipients).
    type: str
    default: ''
  compression_level:
    description: zstd level.
    type: int
    default: 3
  low_priority:
    description:
    - Run the backup's own processes in the idle CPU class (C(chrt --idle), else C(nice -n 19)) and
      under C(ionice -c2 -n7).
    - Not C(mariadb-backup --backup), which holds a commit lock on the live server at its end.
    type: bool
    default: true
  physical_throttle:
    description:
    - C(mariadb-backup --backup --throttle=N), at most N I/O operations (pairs of read and write) per
      second while it copies the data files; 0 for no limit.
    - Spreads the copy's I/O over a longer backup, for a server whose disk the SIMRS shares.
    type: int
    default: 0
  defaults_file:
    description: MariaDB client option file with the backup account (empty for root via the socket).
    type: str
    default: ''
  lock_wait_seconds:
    description: How long to wait for another backup or prune on this disk.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Take a dump of the SIMRS databases
  simrs.downtime.backup_take:
    mount_point: /media/simrs-backup
    disk_label: SIMRS-BACKUP
    source_host: "{{ inventory_hostname }}"
    method: dump
    databases: [sik]
    accounts: [simrs_app]
  register: __backup_take
"""

RETURN = r"""
set:
  description: Name of the new set.
  type: str
  returned: success
path:
  description: Its directory.
  type: str
  returned: success
manifest:
  description: The manifest written (docs/backup-format.md).
  type: dict
  returned: success
removed_partials:
  description: Half-written sets of interrupted runs, removed first.
  type: list
  returned: always
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    AGE_SUFFIX,
    FORMAT,
    MANIFEST,
    ROOT_DIR,
    STAMP_FORMAT,
    BackupError,
    StreamWriter,
    check_disk,
    check_recipients,
    client_args,
    count_rows,
    disk_argument_spec,
    free_bytes,
    fsync_dir,
    human_bytes,
    iso,
    last_visit,
    locked,
    low_priority,
    make_private_dirs,
    quote_str,
    remove_hidden,
    scratch_server,
    source_dir,
    sql,
    utcnow,
    write_private,
)

# A string literal of a mariadb-dump INSERT (backslash escapes, SQL_MODE without NO_BACKSLASH_ESCAPES).
STRING = re.compile(rb"'(?:[^'\\]|\\.)*'")
TUPLE = re.compile(rb"\(((?:'(?:[^'\\]|\\.)*'|[^'()])*)\)")
FIELD = re.compile(rb"'((?:[^'\\]|\\.)*)'|([^,']+)")
IDENT = re.compile(rb"^`((?:[^`]|``)+)`")


class DumpCounter:
    """Reads the dump as it streams past: rows per table, the newest visit, the binary log
    position of the snapshot and whether the dump completed. Exact by construction: it counts
    the rows that are in the file, whatever was committed on the server meanwhile.

    mariadb-dump escapes newlines inside values, so every statement line is complete; a row
    tuple is a parenthesis outside a string literal (binary columns are 0x.. with --hex-blob).
    """

    def __init__(self, last_visit_table: str) -> None:
        self.last_visit_table = last_visit_table.encode()
        self.rows: dict[str, int] = {}
        self.columns: dict[str, list[str]] = {}
        self.database = ""
        self.creating = ""
        self.inserting = ""
        self.binlog: dict = {}
        self.gtid = ""
        self.server_version = ""
        self.completed = False
        # Newest visit per "db.table", keyed (tgl_registrasi, jam_reg, no_rawat).
        self.visits: dict[str, tuple] = {}
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        data = self._buffer + chunk
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self._buffer:
            self._line(self._buffer)
            self._buffer = b""

    @staticmethod
    def _ident(text: bytes) -> str:
        match = IDENT.match(text)
        return match[1].replace(b"``", b"`").decode("utf-8", "replace") if match else ""

    def _line(self, line: bytes) -> None:
        if self.inserting:
            self._values(line)
        elif line.startswith(b"INSERT INTO `"):
            table = self._ident(line[len(b"INSERT INTO ") :])
            self.inserting = f"{self.database}.{table}"
            _, _, values = line.partition(b" VALUES")
            self._values(values)
        elif line.startswith(b"USE `"):
            self.database = self._ident(line[4:])
        elif line.startswith(b"CREATE TABLE `"):
            table = self._ident(line[len(b"CREATE TABLE ") :])
            self.creating = f"{self.database}.{table}"
            self.rows[self.creating] = 0
            self.columns[self.creating] = []
        elif self.creating and line.startswith(b"  `"):
            self.columns[self.creating].append(self._ident(line[2:]))
        elif self.creating and line.startswith(b")"):
            self.creating = ""
        elif line.startswith(b"-- CHANGE MASTER TO MASTER_LOG_FILE="):
            match = re.search(rb"MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)", line)
            if match:
                self.binlog = {"file": match[1].decode(), "position": int(match[2])}
        elif line.startswith(b"-- SET GLOBAL gtid_slave_pos="):
            match = re.search(rb"'([^']*)'", line)
            self.gtid = match[1].decode() if match else ""
        elif line.startswith(b"-- Server version"):
            self.server_version = line.split(b"\t", 1)[-1].strip().decode("utf-8", "replace")
        elif line.startswith(b"-- Dump completed"):
            self.completed = True

    def _values(self, text: bytes) -> None:
        table = self.inserting
        plain = STRING.sub(b"''", text)
        self.rows[table] = self.rows.get(table, 0) + plain.count(b"(")
        if self.last_visit_table and table.split(".", 1)[-1].encode() == self.last_visit_table:
            self._track_visit(table, text)
        if plain.rstrip().endswith(b";"):
            self.inserting = ""

    def _track_visit(self, table: str, text: bytes) -> None:
        columns = self.columns.get(table, [])
        try:
            index = [columns.index(name) for name in ("tgl_registrasi", "jam_reg", "no_rawat")]
        except ValueError:
            return
        for match in TUPLE.finditer(text):
            fields = [
                (quoted if quoted or not bare else bare.strip()).replace(b"\\'", b"'").replace(b"\\\\", b"\\")
                for quoted, bare in FIELD.findall(match[1])
            ]
            if len(fields) != len(columns):
                continue
            key = tuple(fields[i].decode("utf-8", "replace") for i in index)
            if table not in self.visits or key > self.visits[table]:
                self.visits[table] = key

    def last_visit(self, databases: list[str]) -> dict | None:
        """The newest visit in the first database that has the table (as the physical method)."""
        for db in databases:
            key = self.visits.get(f"{db}.{self.last_visit_table.decode()}")
            if key:
                return {"no_rawat": key[2], "tgl_registrasi": key[0], "jam_reg": key[1]}
        return None


def accounts_sql(accounts: list[str], defaults_file: str, host: str) -> bytes:
    """CREATE USER IF NOT EXISTS + ALTER USER + GRANTs of every host entry of the named accounts:
    the server's own SHOW CREATE USER, so only password hashes (or plugin data) are written."""
    if not accounts:
        return f"-- No application accounts were named (backup_accounts) on {host}.\n".encode()
    names = ",".join(quote_str(name) for name in accounts)
    # Quoted by quote_str: the mariadb client has no bind parameters (see module_utils sql()).
    query = f"SELECT User, Host FROM mysql.user WHERE User IN ({names}) ORDER BY 1, 2"  # noqa: S608
    entries = sql(query, defaults_file)
    missing = sorted(set(accounts) - {user for user, _host in entries})
    if missing:
        raise BackupError(
            f"backup_accounts names {', '.join(missing)}, but no such database account exists on "
            f"{host}: fix backup_accounts (default: the inventory's simrs_db_app_user)"
        )
    out = [
        f"-- SIMRS application accounts of {host} (simrs.downtime.backup). Password hashes only.",
        "-- CREATE USER IF NOT EXISTS keeps an existing account; ALTER USER then gives it this password.",
    ]
    for user, account_host in entries:
        account = f"{quote_str(user)}@{quote_str(account_host)}"
        create = sql(f"SHOW CREATE USER {account}", defaults_file)[0][0]
        if not create.startswith("CREATE USER "):
            raise BackupError(f"unexpected SHOW CREATE USER answer for {user}@{account_host}")
        spec = create[len("CREATE USER ") :]
        out.append(f"CREATE USER IF NOT EXISTS {spec};")
        out.append(f"ALTER USER {spec};")
        out.extend(f"{row[0]};" for row in sql(f"SHOW GRANTS FOR {account}", defaults_file))
    out.append("FLUSH PRIVILEGES;")
    return ("\n".join(out) + "\n").encode()


class Take:
    def __init__(self, module: AnsibleModule) -> None:
        self.m = module
        self.p = module.params
        self.prefix = low_priority(self.p["low_priority"])
        self.p["recipients"] = check_recipients(self.p["recipients"])
        if self.p["recipients"] and self.p["encryption_key"]:
            raise BackupError(
                "both backup_recipients and backup_encryption_key are set: keep backup_recipients "
                "(public keys) and remove the passphrase"
            )
        self.ext = ".zst" + (
            AGE_SUFFIX if self.p["recipients"] else ".enc" if self.p["encryption_key"] else ""
        )

    def writer(self, workdir: str, level: int | None) -> StreamWriter:
        return StreamWriter(
            level=level,
            key=self.p["encryption_key"],
            recipients=self.p["recipients"],
            prefix=self.prefix,
            workdir=workdir,
        )

    def run(self) -> dict:
        p = self.p
        check_disk(p["mount_point"], p["disk_label"], p["disk_uuid"], p["require_marker"])
        src = source_dir(p["mount_point"], p["source_host"])
        tool = "mariadb-dump" if p["method"] == "dump" else "mariadb-backup"
        for needed in (
            [tool, "zstd", "mariadb"]
            + (["openssl"] if p["encryption_key"] else [])
            + (["age"] if p["recipients"] else [])
            + (["mbstream", "mariadbd"] if p["method"] == "physical" else [])
        ):
            if not shutil.which(needed):
                raise BackupError(f"{needed} is not installed on {p['source_host']}: install it first")
        if self.m.check_mode:
            return {
                "changed": True,
                "set": None,
                "path": src,
                "removed_partials": [],
                "msg": f"check mode: would take a {p['method']} backup into {src}",
            }
        make_private_dirs(src, p["mount_point"])
        os.chmod(os.path.join(p["mount_point"], ROOT_DIR), 0o700)
        with locked(src, exclusive=True, wait_seconds=p["lock_wait_seconds"], what="backup"):
            removed = remove_hidden(src)
            started = utcnow()
            name = f"{started.strftime(STAMP_FORMAT)}-{p['method']}"
            while os.path.exists(os.path.join(src, name)):  # two runs within one second
                time.sleep(1)
                started = utcnow()
                name = f"{started.strftime(STAMP_FORMAT)}-{p['method']}"
            final = os.path.join(src, name)
            partial = os.path.join(src, f".{name}.partial")
            os.mkdir(partial, 0o700)
            clock = time.monotonic()
            workdir = tempfile.mkdtemp(prefix="simrs-backup-")
            try:
                manifest = self._build(partial, workdir, started)
                manifest["duration_seconds"] = round(time.monotonic() - clock, 2)
                write_private(os.path.join(partial, MANIFEST), (_dumps(manifest) + "\n").encode())
                fsync_dir(partial)
                os.rename(partial, final)
                fsync_dir(src)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        return {
            "changed": True,
            "set": name,
            "path": final,
            "manifest": manifest,
            "removed_partials": removed,
        }

    def _build(self, partial: str, workdir: str, started) -> dict:
        p = self.p
        files = []
        accounts = accounts_sql(p["accounts"], p["defaults_file"], p["source_host"])
        name = "accounts.sql" + self.ext
        size, digest = self.writer(workdir, p["compression_level"]).write(
            os.path.join(partial, name), data=accounts
        )
        files.append({"name": name, "size": size, "sha256": digest})
        if p["method"] == "dump":
            data_file, extra = self._dump(partial, workdir)
        else:
            data_file, extra = self._physical(partial, workdir)
        files.insert(0, data_file)
        manifest = {
            "format": FORMAT,
            "created_at": iso(started),
            "source_host": p["source_host"],
            "method": p["method"],
            "databases": p["databases"],
            "compression": "zstd",
            "encrypted": bool(p["encryption_key"] or p["recipients"]),
            "files": files,
        }
        if p["recipients"]:
            manifest["encryption"] = {
                "tool": "age",
                "format": "age-encryption.org/v1",
                "recipients": p["recipients"],
            }
        elif p["encryption_key"]:
            manifest["encryption"] = {"tool": "openssl enc", "cipher": "aes-256-cbc", "kdf": "pbkdf2"}
        manifest.update(extra)
        return manifest

    def _dump(self, partial: str, workdir: str) -> tuple[dict, dict]:
        p = self.p
        counter = DumpCounter(p["last_visit_table"])
        command = [
            "mariadb-dump",
            *client_args(p["defaults_file"]),
            "--single-transaction",
            "--master-data=2",
            "--gtid",
            "--routines",
            "--events",
            "--triggers",
            "--hex-blob",
            "--quick",
            "--default-character-set=utf8mb4",
            "--databases",
            *p["databases"],
        ]
        name = "data.sql" + self.ext
        size, digest = self.writer(workdir, p["compression_level"]).write(
            os.path.join(partial, name), command=command, on_chunk=counter.feed
        )
        counter.close()
        if not counter.completed:
            raise BackupError("mariadb-dump ended without its 'Dump completed' line: the dump is incomplete")
        binlog = dict(counter.binlog, gtid=counter.gtid) if counter.binlog else None
        wanted = set(p["databases"])
        extra = {
            "row_counts": {k: v for k, v in sorted(counter.rows.items()) if k.split(".", 1)[0] in wanted},
            "server_version": counter.server_version or _server_version(p["defaults_file"]),
            "binlog": binlog,
            "last_visit": counter.last_visit(p["databases"]),
        }
        return {"name": name, "size": size, "sha256": digest}, extra

    def _physical(self, partial: str, workdir: str) -> tuple[dict, dict]:
        p = self.p
        staging = os.path.join(partial, "prepare")
        base = ["mariadb-backup", *client_args(p["defaults_file"])]
        # The log copier polls every 1000 ms by default, and BACKUP STAGE BLOCK_COMMIT waits for it:
        # commits stalled up to a second (measured: max insert latency 1025 ms, with 50 ms: 72 ms).
        backup = [*base, "--backup", "--log-copy-interval=50", f"--target-dir={staging}"]
        if p["physical_throttle"] > 0:
            backup.append(f"--throttle={p['physical_throttle']}")
        phases: dict[str, float] = {}
        clock = time.monotonic()
        # Never niced: at its end it holds BACKUP STAGE BLOCK_COMMIT on the live server, and a niced
        # process holding that lock on a busy machine stretches every waiting commit (priority
        # inversion). The prepare, the packing and the row counts after it do yield.
        self._backup_tool(backup, workdir, "backup", partial, prefix=[])
        phases["copy"], clock = round(time.monotonic() - clock, 2), time.monotonic()
        self._backup_tool(
            ["mariadb-backup", "--prepare", f"--target-dir={staging}"], workdir, "prepare", partial
        )
        phases["prepare"], clock = round(time.monotonic() - clock, 2), time.monotonic()
        binlog = None
        with (
            contextlib.suppress(FileNotFoundError),
            open(os.path.join(staging, "xtrabackup_binlog_info")) as info,
        ):
            fields = info.read().split()
            if len(fields) >= 2:
                binlog = {
                    "file": fields[0],
                    "position": int(fields[1]),
                    "gtid": fields[2] if len(fields) > 2 else "",
                }
        unpacked = 0
        members = []
        for root, _dirs, names in os.walk(staging):
            for member in names:
                path = os.path.join(root, member)
                unpacked += os.path.getsize(path)
                members.append(os.path.relpath(path, staging))
        name = "data.mbstream" + self.ext
        # The stream is packed from the pristine prepared copy, before the scratch server opens it.
        size, digest = self.writer(workdir, p["compression_level"]).write(
            os.path.join(partial, name), command=["mbstream", "-c", *sorted(members)], cwd=staging
        )
        phases["pack"], clock = round(time.monotonic() - clock, 2), time.monotonic()
        with scratch_server(staging, prefix=self.prefix) as socket:
            rows = count_rows(p["databases"], socket=socket)
            visit = last_visit(p["databases"], p["last_visit_table"], socket=socket)
            version = sql("SELECT VERSION()", socket=socket)[0][0]
        shutil.rmtree(staging)
        phases["count"] = round(time.monotonic() - clock, 2)
        extra = {
            "row_counts": rows,
            "server_version": version,
            "binlog": binlog,
            "last_visit": visit,
            "physical": {
                "prepared": True,
                "unpacked_bytes": unpacked,
                "tool": "mariadb-backup",
                "phase_seconds": phases,
            },
        }
        return {"name": name, "size": size, "sha256": digest}, extra

    def _backup_tool(
        self, command: list[str], workdir: str, step: str, partial: str, prefix: list[str] | None = None
    ) -> None:
        log = os.path.join(workdir, f"mariadb-backup-{step}.log")
        with open(log, "wb") as out:
            proc = subprocess.run(
                [*(self.prefix if prefix is None else prefix), *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if proc.returncode != 0:
            with open(log, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
            if "No space left" in text or "errno 28" in text.lower() or free_bytes(partial) < 1 << 20:
                raise BackupError(
                    f"the external disk filled up during mariadb-backup --{step} "
                    f"({human_bytes(free_bytes(partial))} left; No space left on device)"
                )
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            raise BackupError(
                f"mariadb-backup --{step} failed (exit {proc.returncode}): {' | '.join(lines[-4:])}"
            )


def _server_version(defaults_file: str) -> str:
    return sql("SELECT VERSION()", defaults_file)[0][0]


def _dumps(value) -> str:
    return json.dumps(value, indent=2)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **disk_argument_spec(marker=True),
            "source_host": {"type": "str", "required": True},
            "method": {"type": "str", "choices": ["dump", "physical"], "default": "dump"},
            "databases": {"type": "list", "elements": "str", "required": True},
            "accounts": {"type": "list", "elements": "str", "default": []},
            "last_visit_table": {"type": "str", "default": "reg_periksa"},
            "recipients": {"type": "list", "elements": "str", "default": []},
            "encryption_key": {"type": "str", "default": "", "no_log": True},
            "compression_level": {"type": "int", "default": 3},
            "low_priority": {"type": "bool", "default": True},
            "physical_throttle": {"type": "int", "default": 0},
            "defaults_file": {"type": "str", "default": ""},
            "lock_wait_seconds": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    try:
        result = Take(module).run()
    except BackupError as exc:
        module.fail_json(msg=str(exc), set=None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
