#!/usr/bin/python
"""Ansible module simrs.downtime.backup_binlog_ship (role backup): closed binary logs to the disk.

Owns simrs-backups/binlogs/<host>/ of docs/backup-format.md: each closed binary log is copied
under a temporary dot-name, fsynced and renamed, with a <name>.sha256 beside it (sha256sum
format, of the bytes on the disk), 0600. The current binary log is closed first with FLUSH
BINARY LOGS, but only when it holds a transaction: a quiet server is left as it is, so
shipping twice in a row changes nothing.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_binlog_ship
short_description: Ship the closed MariaDB binary logs of this server to the external disk
description:
- Closes the current binary log (FLUSH BINARY LOGS) when it holds any transaction, then copies every
  closed binary log not yet on the disk (or there with another size) atomically.
- Reports a gap when logs were purged from the server before they were shipped.
- With O(recipients), files are stored encrypted to those age public keys as C(<name>.age); with the
  older O(encryption_key) (a passphrase, openssl enc) as C(<name>.enc).
- In check mode, reports what it would flush and copy.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
- simrs.downtime.backup_disk.marker
options:
  source_host:
    description: Name of this server (the folder under binlogs/).
    type: str
    required: true
  flush:
    description: Close the current binary log first when it holds a transaction.
    type: bool
    default: true
  recipients:
    description: age public keys (age1...) to encrypt the shipped logs to; the private key is not needed here.
    type: list
    elements: str
    default: []
  encryption_key:
    description: Encrypt shipped logs with openssl enc (the older passphrase scheme; prefer O(recipients)).
    type: str
    default: ''
  defaults_file:
    description: MariaDB client option file (empty for root via the socket).
    type: str
    default: ''
  lock_wait_seconds:
    description: How long to wait for another shipping run.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Ship the binary logs
  simrs.downtime.backup_binlog_ship:
    mount_point: /media/simrs-backup
    disk_label: SIMRS-BACKUP
    source_host: "{{ inventory_hostname }}"
"""

RETURN = r"""
shipped:
  description: Names of the logs copied by this run (or that would be).
  type: list
  returned: success
flushed:
  description: Whether the current log was closed by this run.
  type: bool
  returned: success
gap:
  description: Logs purged from the server before they were shipped.
  type: list
  returned: success
current:
  description: The server's binary log being written now (not shipped).
  type: str
  returned: success
on_disk:
  description: Number of shipped logs on the disk after this run.
  type: int
  returned: success
"""

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    AGE_SUFFIX,
    BINLOG_RE,
    CHUNK,
    ROOT_DIR,
    BackupError,
    DiskFullError,
    StreamWriter,
    binlog_dir,
    check_disk,
    check_recipients,
    disk_argument_spec,
    fsync_dir,
    human_bytes,
    locked,
    make_private_dirs,
    quote_str,
    sql,
    write_private,
)

# Events every binary log starts with; anything else means it holds a transaction.
HEADER_EVENTS = {"Format_desc", "Gtid_list", "Binlog_checkpoint", "Rotate", "Start_encryption", "Stop"}


def copy_plain(source: str, dest: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb", closefd=False) as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(fd)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"the external disk filled up while copying {os.path.basename(source)}"
            ) from None
        raise
    finally:
        os.close(fd)
    return size, digest.hexdigest()


def server_logs(p: dict, check_mode: bool) -> dict:
    """Close the current binary log when it holds a transaction; list the logs on the server."""
    enabled, basename = sql("SELECT @@log_bin, @@log_bin_basename", p["defaults_file"])[0]
    if enabled != "1":
        raise BackupError(
            "binary logging is off on this server (log_bin): enable it for point-in-time recovery, "
            "or do not schedule binlog shipping"
        )
    current = sql("SHOW MASTER STATUS", p["defaults_file"])[0][0]
    events = sql(f"SHOW BINLOG EVENTS IN {quote_str(current)} LIMIT 20", p["defaults_file"])
    busy = p["flush"] and any(row[2] not in HEADER_EVENTS for row in events)
    if busy and not check_mode:
        sql("FLUSH BINARY LOGS", p["defaults_file"])
    logs = [(row[0], int(row[1])) for row in sql("SHOW BINARY LOGS", p["defaults_file"])]
    # In check mode the flush did not happen: the current log counts as closed, as it would be.
    closed = logs if busy and check_mode else logs[:-1]
    return {"dir": os.path.dirname(basename), "busy": busy, "logs": logs, "closed": closed}


def numbers(names) -> list[int]:
    return sorted(int(m["number"]) for f in names if (m := BINLOG_RE.match(f)))


def missing(closed: list[tuple[str, int]], dest: str, suffix: str) -> list[str]:
    """Closed logs not on the disk; a plain copy of another size is shipped again (an encrypted
    copy's size differs by nature: there its .sha256 is the proof that it was completed)."""
    on_disk = set(os.listdir(dest)) if os.path.isdir(dest) else set()
    return [
        name
        for name, size in closed
        if not (
            name + suffix in on_disk
            and name + suffix + ".sha256" in on_disk
            and (suffix or os.path.getsize(os.path.join(dest, name)) == size)
        )
    ]


def purged_before_shipping(logs: list[tuple[str, int]], dest: str) -> list[str]:
    shipped = numbers(os.listdir(dest)) if os.path.isdir(dest) else []
    if not shipped or not logs:
        return []
    first = BINLOG_RE.match(logs[0][0])
    return [f"{first['base']}.{n:06d}" for n in range(shipped[-1] + 1, int(first["number"]))]


def copy_one(p: dict, source: str, dest: str, name: str, suffix: str, workdir: str) -> None:
    """Under a dot-name, fsynced, renamed, then its .sha256: a reader never sees half a log."""
    final = os.path.join(dest, name + suffix)
    temp = os.path.join(dest, f".{name}{suffix}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    try:
        if suffix:
            writer = StreamWriter(
                level=None,
                key="" if p["recipients"] else p["encryption_key"],
                recipients=p["recipients"],
                prefix=[],
                workdir=workdir,
            )
            _size, digest = writer.write(temp, command=["cat", source])
        else:
            _size, digest = copy_plain(source, temp)
        os.rename(temp, final)
        write_private(final + ".sha256", f"{digest}  {name}{suffix}\n".encode())
        fsync_dir(dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def ship(module: AnsibleModule) -> dict:
    p = module.params
    check_disk(p["mount_point"], p["disk_label"], p["disk_uuid"], p["require_marker"])
    server = server_logs(p, module.check_mode)
    dest = binlog_dir(p["mount_point"], p["source_host"])
    p["recipients"] = check_recipients(p["recipients"])
    suffix = AGE_SUFFIX if p["recipients"] else ".enc" if p["encryption_key"] else ""
    if p["recipients"] and not shutil.which("age"):
        raise BackupError(f"age is not installed on {p['source_host']}: install the age package first")
    gap = purged_before_shipping(server["logs"], dest)
    if module.check_mode:
        todo = missing(server["closed"], dest, suffix)
        return {
            "changed": bool(todo) or server["busy"],
            "shipped": todo,
            "flushed": False,
            "would_flush": server["busy"],
            "gap": gap,
            "current": server["logs"][-1][0] if server["logs"] else None,
            "dest": dest,
            "on_disk": len(numbers(os.listdir(dest))) if os.path.isdir(dest) else 0,
        }
    make_private_dirs(dest, p["mount_point"])
    os.chmod(os.path.join(p["mount_point"], ROOT_DIR), 0o700)
    shipped = []
    with locked(dest, exclusive=True, wait_seconds=p["lock_wait_seconds"], what="binlog shipping"):
        workdir = tempfile.mkdtemp(prefix="simrs-binlog-")
        try:
            for name in missing(server["closed"], dest, suffix):
                copy_one(p, os.path.join(server["dir"], name), dest, name, suffix, workdir)
                shipped.append(name)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    size = sum(size for name, size in server["closed"] if name in shipped)
    return {
        "changed": server["busy"] or bool(shipped),
        "shipped": shipped,
        "flushed": server["busy"],
        "gap": gap,
        "current": server["logs"][-1][0],
        "dest": dest,
        "on_disk": len(numbers(os.listdir(dest))),
        "msg": f"shipped {len(shipped)} binary logs ({human_bytes(size)}) to {dest}",
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **disk_argument_spec(marker=True),
            "source_host": {"type": "str", "required": True},
            "flush": {"type": "bool", "default": True},
            "recipients": {"type": "list", "elements": "str", "default": []},
            "encryption_key": {"type": "str", "default": "", "no_log": True},
            "defaults_file": {"type": "str", "default": ""},
            "lock_wait_seconds": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    try:
        result = ship(module)
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
