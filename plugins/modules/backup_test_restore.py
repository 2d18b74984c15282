#!/usr/bin/python
"""Ansible module simrs.downtime.backup_test_restore (role backup): prove a set restores, aside.

Owns the test restore of `backup verify`: a dump goes into scratch databases (prefix + name) on
this host's MariaDB, a physical set into a scratch folder served by a throwaway server; the row
counts and newest visit are compared with the manifest, and the scratch copy is always removed.
The SIMRS databases of this host are never written.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_test_restore
short_description: Restore one backup set into a scratch database and compare it with its manifest
description:
- Reads the set from this host's mount of the external disk. With O(manifest_sha256) it first checks
  that the manifest here is the one the verify hashed (the same disk is mounted here).
- C(dump) sets are loaded with the mariadb client into databases named O(scratch_prefix) plus the
  original name, without binary logging; C(physical) sets are unpacked into a folder under O(scratch_dir)
  and served by a throwaway mariadbd without network.
- Scratch databases and folders are removed afterwards, also on failure.
- Fails (and the verify records nothing) when the test cannot start - the set is not on this host,
  the key is missing, no room, no database; returns ok false when the set itself did not restore or
  its rows differ from the manifest.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
options:
  set_path:
    description: The set's directory on this host.
    type: path
    required: true
  manifest_sha256:
    description: Expected sha256 of its manifest.json (empty to skip the check).
    type: str
    default: ''
  identity:
    description: The backup private key (age identity, AGE-SECRET-KEY-1...) of a set encrypted to
      age recipients; age reads it from a pipe. Never logged.
    type: str
    default: ''
  encryption_key:
    description: Passphrase of an older openssl-encrypted set.
    type: str
    default: ''
  scratch_prefix:
    description: Prefix of the scratch databases.
    type: str
    default: simrs_verify_
  scratch_dir:
    description: Where a physical set is unpacked.
    type: path
    default: /var/tmp
  last_visit_table:
    description: Table whose newest row must equal the manifest's last_visit.
    type: str
    default: reg_periksa
  restore_host:
    description: Name of this host for the result (default its node name).
    type: str
    default: ''
  defaults_file:
    description: MariaDB client option file (empty for root via the socket).
    type: str
    default: ''
  low_priority:
    description: Run the restore's processes under nice and ionice.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Test-restore the newest good set on the standby
  simrs.downtime.backup_test_restore:
    set_path: /media/simrs-backup/simrs-backups/simrs-primary/20261125T234000Z-dump
  delegate_to: simrs-standby
"""

RETURN = r"""
test_restore:
  description: '{ok, host, detail, row_counts, last_visit, mismatches, seconds}'
  type: dict
  returned: always
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    AGE_SUFFIX,
    CHUNK,
    MANIFEST,
    OPENSSL_ENC,
    BackupError,
    client_args,
    count_rows,
    free_bytes,
    human_bytes,
    key_pipe,
    last_visit,
    low_priority,
    quote_ident,
    scratch_server,
    tail,
)

SCRATCH_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class CannotTestError(BackupError):
    """The test restore could not start (no disk here, no key, no room, no database): that says
    nothing about the set, so the verify fails instead of recording the set as bad."""


def decode_chain(
    path: str, encrypted: bool, key: str, prefix: list[str], errdir: str, identity: str = ""
) -> list[subprocess.Popen]:
    """[age -d | openssl -d] | zstd -dc, reading the file; the last process's stdout is the plain stream."""
    procs = []
    if encrypted and path.endswith(AGE_SUFFIX):
        if not identity.strip():
            raise CannotTestError(
                "the set is encrypted to age recipients: give backup_private_key (from Vault) to "
                "test-restore it"
            )
        with open(os.path.join(errdir, "age.err"), "wb") as err, key_pipe(identity.strip()) as key_fd:
            procs.append(
                subprocess.Popen(
                    [*prefix, "age", "--decrypt", "--identity", f"/dev/fd/{key_fd}", path],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(key_fd,),
                )
            )
    elif encrypted:
        if not key:
            raise CannotTestError(
                "the set is encrypted: give backup_encryption_key (from Vault) to test-restore it"
            )
        with open(os.path.join(errdir, "openssl.err"), "wb") as err, key_pipe(key) as key_fd:
            procs.append(
                subprocess.Popen(
                    [*prefix, *OPENSSL_ENC, "-d", "-pass", f"fd:{key_fd}", "-in", path],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(key_fd,),
                )
            )
    with open(os.path.join(errdir, "zstd.err"), "wb") as err:
        procs.append(
            subprocess.Popen(
                [*prefix, "zstd", "-dc", *([] if encrypted else [path])],
                stdin=procs[-1].stdout if procs else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        )
    if encrypted:
        procs[0].stdout.close()
    return procs


def finish(procs: list[tuple[str, subprocess.Popen]], errdir: str) -> None:
    failed = []
    for name, proc in procs:
        if proc.wait() != 0:
            said = tail(os.path.join(errdir, name + ".err")) or "no message"
            failed.append(f"{name} exited {proc.returncode}: {said}")
    if failed:
        raise BackupError("; ".join(failed))


class Rename:
    """Point the dump's CREATE DATABASE and USE lines at the scratch databases."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = {quote_ident(k).encode(): quote_ident(v).encode() for k, v in mapping.items()}
        self.buffer = b""

    def line(self, line: bytes) -> bytes:
        if line.startswith((b"CREATE DATABASE ", b"USE ")):
            for old, new in self.mapping.items():
                if old in line:
                    return line.replace(old, new, 1)
        return line

    def feed(self, chunk: bytes) -> bytes:
        lines = (self.buffer + chunk).split(b"\n")
        self.buffer = lines.pop()
        return b"".join(self.line(line) + b"\n" for line in lines)

    def close(self) -> bytes:
        rest, self.buffer = self.buffer, b""
        return self.line(rest) if rest else b""


def restore_dump(
    p: dict, manifest: dict, data: str, prefix: list[str], errdir: str
) -> tuple[dict, dict | None]:
    databases = manifest["databases"]
    mapping = {db: p["scratch_prefix"] + db for db in databases}
    conn = ["mariadb", *client_args(p["defaults_file"])]
    drop = "SET SESSION sql_log_bin = 0; " + " ".join(
        f"DROP DATABASE IF EXISTS {quote_ident(name)};" for name in mapping.values()
    )
    try:
        try:
            run_sql(conn, drop)
        except BackupError as exc:
            raise CannotTestError(str(exc)) from None
        decoders = decode_chain(
            data, manifest.get("encrypted", False), p["encryption_key"], prefix, errdir, p["identity"]
        )
        with open(os.path.join(errdir, "mariadb.err"), "wb") as err:
            loader = subprocess.Popen(
                [*prefix, *conn, "--batch", "--init-command=SET SESSION sql_log_bin = 0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        errors: list[BaseException] = []

        def pump() -> None:
            rename = Rename(mapping)
            try:
                while chunk := decoders[-1].stdout.read(CHUNK):
                    loader.stdin.write(rename.feed(chunk))
                loader.stdin.write(rename.close())
            except BaseException as exc:
                errors.append(exc)
            finally:
                with contextlib.suppress(OSError):
                    loader.stdin.close()

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        thread.join()
        names = ([("age" if data.endswith(AGE_SUFFIX) else "openssl")] if len(decoders) == 2 else []) + [
            "zstd"
        ]
        finish([*zip(names, decoders), ("mariadb", loader)], errdir)
        if errors:
            raise BackupError(f"feeding the dump to mariadb failed: {errors[0]}")
        scratch = count_rows(list(mapping.values()), defaults_file=p["defaults_file"])
        rows = {}
        for key, count in scratch.items():
            db, table = key.split(".", 1)
            original = next(k for k, v in mapping.items() if v == db)
            rows[f"{original}.{table}"] = count
        visit = last_visit(list(mapping.values()), p["last_visit_table"], defaults_file=p["defaults_file"])
        return rows, visit
    finally:
        with contextlib.suppress(BackupError):
            run_sql(conn, drop)


def restore_physical(
    p: dict, manifest: dict, data: str, prefix: list[str], errdir: str
) -> tuple[dict, dict | None]:
    needed = int(manifest.get("physical", {}).get("unpacked_bytes", 0))
    os.makedirs(p["scratch_dir"], exist_ok=True)
    free = free_bytes(p["scratch_dir"])
    if needed and free < needed * 1.1:
        raise CannotTestError(
            f"{p['scratch_dir']} has {human_bytes(free)} free; the unpacked set needs "
            f"{human_bytes(needed)}: free space there or set backup_verify_scratch_dir"
        )
    target = tempfile.mkdtemp(prefix="simrs-verify-", dir=p["scratch_dir"])
    try:
        decoders = decode_chain(
            data, manifest.get("encrypted", False), p["encryption_key"], prefix, errdir, p["identity"]
        )
        with open(os.path.join(errdir, "mbstream.err"), "wb") as err:
            unpack = subprocess.Popen(
                [*prefix, "mbstream", "-x", "-C", target],
                stdin=decoders[-1].stdout,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        decoders[-1].stdout.close()
        names = ([("age" if data.endswith(AGE_SUFFIX) else "openssl")] if len(decoders) == 2 else []) + [
            "zstd"
        ]
        finish([*zip(names, decoders), ("mbstream", unpack)], errdir)
        with scratch_server(target, prefix=prefix) as socket:
            rows = count_rows(manifest["databases"], socket=socket)
            visit = last_visit(manifest["databases"], p["last_visit_table"], socket=socket)
        return rows, visit
    finally:
        shutil.rmtree(target, ignore_errors=True)


def run_sql(conn: list[str], statements: str) -> None:
    proc = subprocess.run(
        [*conn, "--batch", "--execute", statements], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise BackupError(f"the database refused the scratch statements: {proc.stderr.strip()}")


def test_restore(p: dict, host: str) -> dict:
    clock = time.monotonic()
    path = os.path.join(p["set_path"], MANIFEST)
    if not os.path.isfile(path):
        raise CannotTestError(
            f"{path} is not on {host}: mount the external disk there, or test-restore where it is"
        )
    with open(path, "rb") as handle:
        raw = handle.read()
    if p["manifest_sha256"] and hashlib.sha256(raw).hexdigest() != p["manifest_sha256"]:
        raise CannotTestError(
            f"the set at {p['set_path']} on {host} is not the one just verified: is the same disk mounted?"
        )
    manifest = json.loads(raw)
    if any(not SCRATCH_NAME.match(p["scratch_prefix"] + db) for db in manifest["databases"]):
        raise CannotTestError(f"scratch names {p['scratch_prefix']}<database> must be letters, digits and _")
    data = next(f["name"] for f in manifest["files"] if f["name"].startswith("data."))
    prefix = low_priority(p["low_priority"])
    errdir = tempfile.mkdtemp(prefix="simrs-verify-log-")
    try:
        restore = restore_dump if manifest["method"] == "dump" else restore_physical
        rows, visit = restore(p, manifest, os.path.join(p["set_path"], data), prefix, errdir)
    finally:
        shutil.rmtree(errdir, ignore_errors=True)
    expected = manifest.get("row_counts", {})
    mismatches = {
        key: {"manifest": expected.get(key), "restored": rows.get(key)}
        for key in sorted(set(expected) | set(rows))
        if expected.get(key) != rows.get(key)
    }
    visit_ok = visit == manifest.get("last_visit")
    ok = not mismatches and visit_ok
    total = sum(rows.values())
    detail = (
        f"restored on {host}: {len(rows)} tables, {total} rows, all equal to the manifest"
        + (f"; newest visit {visit['no_rawat']}" if visit else "")
        if ok
        else f"restored on {host}, but "
        + "; ".join(
            [f"{key}: {v['restored']} rows, manifest says {v['manifest']}" for key, v in mismatches.items()]
            + (
                []
                if visit_ok
                else [f"newest visit {visit} differs from the manifest's {manifest.get('last_visit')}"]
            )
        )
    )
    return {
        "ok": ok,
        "host": host,
        "detail": detail,
        "row_counts": rows,
        "last_visit": visit,
        "mismatches": mismatches,
        "seconds": round(time.monotonic() - clock, 2),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "set_path": {"type": "path", "required": True},
            "manifest_sha256": {"type": "str", "default": ""},
            "identity": {"type": "str", "default": "", "no_log": True},
            "encryption_key": {"type": "str", "default": "", "no_log": True},
            "scratch_prefix": {"type": "str", "default": "simrs_verify_"},
            # A private mkdtemp folder is made inside it: the shared /var/tmp itself is never written.
            "scratch_dir": {"type": "path", "default": "/var/tmp"},  # noqa: S108
            "last_visit_table": {"type": "str", "default": "reg_periksa"},
            "restore_host": {"type": "str", "default": ""},
            "defaults_file": {"type": "str", "default": ""},
            "low_priority": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    host = module.params["restore_host"] or os.uname().nodename
    if module.check_mode:
        module.exit_json(
            changed=False,
            test_restore={
                "ok": None,
                "host": host,
                "detail": f"check mode: would test-restore {module.params['set_path']}",
                "row_counts": {},
                "last_visit": None,
                "mismatches": {},
                "seconds": 0,
            },
        )
    try:
        result = test_restore(module.params, host)
    except CannotTestError as exc:
        module.fail_json(msg=f"could not test-restore on {host}: {exc}. Nothing was recorded.")
    except BackupError as exc:
        result = {
            "ok": False,
            "host": host,
            "detail": f"test restore failed on {host}: {exc}",
            "row_counts": {},
            "last_visit": None,
            "mismatches": {},
            "seconds": 0,
        }
    # Scratch copies are created and removed again: nothing of this host is left changed.
    module.exit_json(changed=False, test_restore=result)


if __name__ == "__main__":
    main()
