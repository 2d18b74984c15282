#!/usr/bin/python
"""Ansible module simrs.downtime.replication_step: one step of a failback's MariaDB replication
from the standby (the source, serving) to the repaired primary (the replica), over the local
MariaDB socket as root. The replication password reaches the MariaDB tools through a pipe named
/dev/fd/N (an option file that is never on disk, in argv or in an environment)."""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: replication_step
short_description: One step of the failback's MariaDB GTID replication (standby to primary)
description:
  - C(status) (read-only) tells the server's GTID positions, read-only flag, replica threads,
    the visits registered after O(visits_after), and with O(compare) the per-table row counts and
    C(CHECKSUM TABLE) of O(databases).
  - C(account) (on the source) creates or updates the replication account, not binlogged.
  - C(seed) (on the replica) loads a consistent dump of the source's O(databases) taken over the
    network with the replication account (C(--single-transaction --master-data --gtid)), then
    replicates from the source from that dump's GTID position.
  - C(freeze) and C(unfreeze) (on the source) set C(read_only) on and off (the SIMRS's own account
    can no longer write; nothing is lost, its writes fail while frozen).
  - C(wait) (on the replica) waits up to O(wait_seconds) for the replica to apply O(gtid).
  - C(remove) (on the replica) stops and forgets the replication; C(remove_account) (on the
    source) drops the account.
  - In check mode only C(status) runs; every other action says what it would do.
version_added: 0.1.0
author:
  - SIMRS downtime automation maintainers
options:
  action:
    description: The step.
    type: str
    required: true
    choices: [status, account, seed, freeze, unfreeze, wait, remove, remove_account]
  databases:
    description: The SIMRS databases (replicated, compared).
    type: list
    elements: str
    default: [sik]
  source_address:
    description: The source's address the replica connects to (C(seed)).
    type: str
    default: ""
  source_port:
    description: The source's MariaDB port.
    type: int
    default: 3306
  user:
    description: The replication account.
    type: str
    default: simrs_repl
  password:
    description: The replication account's password (keep it in Ansible Vault).
    type: str
    default: ""
    no_log: true
  replica_address:
    description: The address the replica connects from (C(account)); C(%) for any.
    type: str
    default: "%"
  replica_server_id:
    description: >-
      The replica's server_id when it has the source's (C(seed)): set now and written to
      O(server_id_file), since a replica ignores the events of its own server_id.
    type: int
    default: 2
  server_id_file:
    description: Option file keeping the replica's server_id across restarts.
    type: path
    default: /etc/mysql/mariadb.conf.d/61-simrs-replica.cnf
  gtid:
    description: The GTID position to wait for (C(wait)).
    type: str
    default: ""
  wait_seconds:
    description: Upper bound of C(wait), and of the replica threads starting in C(seed).
    type: int
    default: 20
  visits_after:
    description: >-
      C(status): count the visits (reg_periksa) registered after this time (YYYY-MM-DD HH:MM:SS),
      and name up to 10 of them.
    type: str
    default: ""
  compare:
    description: C(status) also returns the per-table row counts and checksums.
    type: bool
    default: false
  timeout:
    description: Upper bound in seconds of the seed's dump and load.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Freeze the standby
  simrs.downtime.replication_step:
    action: freeze
"""

RETURN = r"""
result:
  description: What the step saw and did (action, ok, detail, changed, gtid_binlog_pos, at, ...).
  type: dict
  returned: always
"""

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from ansible.module_utils.basic import AnsibleModule

NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
GTID = re.compile(r"^[0-9]+-[0-9]+-[0-9]+(,[0-9]+-[0-9]+-[0-9]+)*$")


class StepError(Exception):
    pass


def sql(statements: str, timeout: int = 60) -> list[list[str]]:
    """Statements through the mariadb client as root over the local socket; the rows of the last
    result, tab-separated. The statements come on stdin (a password in them stays off argv)."""
    proc = subprocess.run(
        ["mariadb", "--batch", "--skip-column-names", "--raw"],
        input=statements.encode(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise StepError(proc.stderr.decode(errors="replace").strip()[:500] or "mariadb failed")
    return [line.split("\t") for line in proc.stdout.decode(errors="replace").splitlines() if line]


def one(query: str) -> str:
    rows = sql(query)
    return rows[0][0] if rows and rows[0] else ""


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextlib.contextmanager
def option_pipe(user: str, password: str) -> Iterator[str]:
    """A [client] option file with the account in a pipe, named /dev/fd/N; give N in pass_fds."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, f"[client]\nuser={user}\npassword={password}\n".encode())
    finally:
        os.close(write_end)
    try:
        yield f"/dev/fd/{read_end}"
    finally:
        os.close(read_end)


def replica_status() -> dict[str, Any]:
    proc = subprocess.run(
        ["mariadb", "--vertical", "-e", "SHOW SLAVE STATUS"], capture_output=True, timeout=30, check=False
    )
    fields: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("*"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    if not fields:
        return {"configured": False}
    return {
        "configured": True,
        "source": fields.get("Master_Host"),
        "io_running": fields.get("Slave_IO_Running"),
        "sql_running": fields.get("Slave_SQL_Running"),
        "seconds_behind": int(fields["Seconds_Behind_Master"])
        if fields.get("Seconds_Behind_Master", "").isdigit()
        else None,
        "last_error": (fields.get("Last_IO_Error") or fields.get("Last_SQL_Error") or "")[:300],
        "gtid_io_pos": fields.get("Gtid_IO_Pos"),
    }


def tables(databases: list[str]) -> dict[str, dict[str, Any]]:
    """Per table of the databases: rows (COUNT(*)) and CHECKSUM TABLE, keyed db.table."""
    names = ",".join(quote(d) for d in databases)
    rows = sql(
        "SELECT table_schema, table_name FROM information_schema.tables "  # noqa: S608 (checked names, quoted values)
        f"WHERE table_schema IN ({names}) AND table_type = 'BASE TABLE' ORDER BY 1, 2"
    )
    found: dict[str, dict[str, Any]] = {}
    if not rows:
        return found
    qualified = [f"`{db}`.`{t}`" for db, t in rows]
    counts = sql(
        " UNION ALL ".join(f"SELECT {quote(db + '.' + t)}, COUNT(*) FROM `{db}`.`{t}`" for db, t in rows),  # noqa: S608 (checked names, quoted values)
        timeout=600,
    )
    for name, count in counts:
        found[name] = {"rows": int(count)}
    for name, checksum in sql("CHECKSUM TABLE " + ", ".join(qualified), timeout=600):
        found.setdefault(name, {})["checksum"] = checksum
    return found


def status(p: dict[str, Any]) -> dict[str, Any]:
    deadline = time.time() + 30  # a MariaDB just started opens its socket within seconds
    while True:
        try:
            sql("SELECT 1", timeout=10)
            break
        except (StepError, subprocess.TimeoutExpired):
            if time.time() > deadline:
                raise
            time.sleep(1)
    row = sql(
        "SELECT @@server_id, @@gtid_binlog_pos, @@gtid_slave_pos, @@read_only, @@hostname, "
        "UNIX_TIMESTAMP(NOW(6))"
    )[0]
    out: dict[str, Any] = {
        "server_id": int(row[0]),
        "gtid_binlog_pos": row[1],
        "gtid_slave_pos": row[2],
        "read_only": row[3] == "1",
        "hostname": row[4],
        "at": float(row[5]),
        "replica": replica_status(),
        "detail": f"server_id {row[0]}, GTID {row[1] or '-'}, read_only {row[3]}",
    }
    db = p["databases"][0]
    newest = sql(
        f"SELECT no_rawat, tgl_registrasi, jam_reg FROM `{db}`.reg_periksa "  # noqa: S608 (checked names, quoted values)
        "ORDER BY tgl_registrasi DESC, jam_reg DESC, no_rawat DESC LIMIT 1"
    )
    out["newest_visit"] = (
        {"no_rawat": newest[0][0], "tgl_registrasi": newest[0][1], "jam_reg": newest[0][2]}
        if newest
        else None
    )
    if p["visits_after"]:
        after = quote(p["visits_after"])
        rows = sql(
            f"SELECT no_rawat, tgl_registrasi, jam_reg FROM `{db}`.reg_periksa "  # noqa: S608 (checked names, quoted values)
            f"WHERE TIMESTAMP(tgl_registrasi, jam_reg) > {after} ORDER BY tgl_registrasi, jam_reg, no_rawat"
        )
        out["visits_after"] = {
            "after": p["visits_after"],
            "count": len(rows),
            "sample": [f"{r[0]} ({r[1]} {r[2]})" for r in rows[:10]],
        }
    if p["compare"]:
        out["tables"] = tables(p["databases"])
    return out


def account(p: dict[str, Any]) -> dict[str, Any]:
    who = f"{quote(p['user'])}@{quote(p['replica_address'])}"
    sql(
        "SET SESSION sql_log_bin = 0;\n"
        f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {quote(p['password'])};\n"
        f"ALTER USER {who} IDENTIFIED BY {quote(p['password'])};\n"
        "GRANT SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, REPLICATION SLAVE, "
        f"REPLICATION CLIENT ON *.* TO {who};\n"
    )
    return {"changed": True, "detail": f"replication account {p['user']} for {p['replica_address']}"}


def remove_account(p: dict[str, Any]) -> dict[str, Any]:
    who = f"{quote(p['user'])}@{quote(p['replica_address'])}"
    sql(f"SET SESSION sql_log_bin = 0;\nDROP USER IF EXISTS {who};\n")
    return {"changed": True, "detail": f"replication account {p['user']} dropped"}


def seed(p: dict[str, Any]) -> dict[str, Any]:
    began = time.time()
    if not p["source_address"] or not p["password"]:
        raise StepError(
            "seed needs source_address and the replication password (simrs_db_replication_password)"
        )
    if replica_status().get("configured"):
        sql("STOP SLAVE; RESET SLAVE ALL;")
    dbs = list(p["databases"])
    with option_pipe(p["user"], p["password"]) as opt:
        fd = int(opt.rsplit("/", 1)[1])
        probe = subprocess.run(
            [
                "mariadb",
                f"--defaults-extra-file={opt}",
                "-h",
                p["source_address"],
                "-P",
                str(p["source_port"]),
                "--batch",
                "--skip-column-names",
                "-e",
                "SELECT @@server_id",
            ],
            capture_output=True,
            timeout=30,
            check=False,
            pass_fds=(fd,),
        )
    if probe.returncode != 0:
        raise StepError(
            f"cannot reach the source's MariaDB: {probe.stderr.decode(errors='replace').strip()[:300]}"
        )
    source_id = int(probe.stdout.decode().strip() or 0)
    own_id = int(one("SELECT @@server_id"))
    server_id = own_id
    if own_id == source_id:
        server_id = p["replica_server_id"]
        if server_id == source_id:
            raise StepError(f"replica_server_id {server_id} is the source's server_id too: choose another")
        with open(p["server_id_file"], "w") as handle:
            handle.write(
                f"# Written by the failback (replication_step): never the standby's server_id.\n"
                f"[mysqld]\nserver_id = {server_id}\n"
            )
        sql(f"SET GLOBAL server_id = {server_id}")
    with option_pipe(p["user"], p["password"]) as opt:
        fd = int(opt.rsplit("/", 1)[1])
        dump = subprocess.Popen(
            [
                "mariadb-dump",
                f"--defaults-extra-file={opt}",
                "-h",
                p["source_address"],
                "-P",
                str(p["source_port"]),
                "--single-transaction",
                "--master-data=1",
                "--gtid",
                "--routines",
                "--triggers",
                "--add-drop-database",
                "--databases",
                *dbs,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(fd,),
        )
        load = subprocess.Popen(
            ["mariadb", "--init-command=SET SESSION sql_log_bin = 0"],
            stdin=dump.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if dump.stdout is not None:
            dump.stdout.close()
        try:
            _, load_err = load.communicate(timeout=p["timeout"])
            dump_err = dump.stderr.read() if dump.stderr else b""
            dump.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dump.kill()
            load.kill()
            raise StepError(f"the seed took longer than {p['timeout']} s") from None
    if dump.returncode != 0 or load.returncode != 0:
        why = (dump_err if dump.returncode != 0 else load_err).decode(errors="replace").strip()[:400]
        raise StepError(f"the seed failed (dump rc {dump.returncode}, load rc {load.returncode}): {why}")
    seeded_at = one("SELECT @@gtid_slave_pos")
    sql(
        f"CHANGE MASTER TO MASTER_HOST={quote(p['source_address'])}, MASTER_PORT={int(p['source_port'])}, "
        f"MASTER_USER={quote(p['user'])}, MASTER_PASSWORD={quote(p['password'])}, "
        "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;\nSTART SLAVE;\n"
    )
    deadline = time.time() + p["wait_seconds"]
    state = replica_status()
    while time.time() < deadline and not (
        state.get("io_running") == "Yes" and state.get("sql_running") == "Yes"
    ):
        time.sleep(0.5)
        state = replica_status()
    if state.get("io_running") != "Yes" or state.get("sql_running") != "Yes":
        raise StepError(f"the replication did not start: {state}")
    return {
        "changed": True,
        "seeded_gtid": seeded_at,
        "server_id": server_id,
        "source_server_id": source_id,
        "replica": state,
        "seconds": round(time.time() - began, 1),
        "detail": f"seeded from {p['source_address']} at GTID {seeded_at}; replicating",
    }


def freeze(_p: dict[str, Any]) -> dict[str, Any]:
    sql("SET GLOBAL read_only = 1")
    row = sql("SELECT @@gtid_binlog_pos, UNIX_TIMESTAMP(NOW(6))")[0]
    return {
        "changed": True,
        "gtid_binlog_pos": row[0],
        "at": float(row[1]),
        "detail": f"read-only at GTID {row[0]}",
    }


def unfreeze(_p: dict[str, Any]) -> dict[str, Any]:
    was = one("SELECT @@read_only") == "1"
    sql("SET GLOBAL read_only = 0")
    return {"changed": was, "at": time.time(), "detail": "writable again" if was else "was writable"}


def wait(p: dict[str, Any]) -> dict[str, Any]:
    began = time.time()
    if not GTID.match(p["gtid"]):
        raise StepError(f"not a GTID position: {p['gtid']!r}")
    got = one(f"SELECT MASTER_GTID_WAIT({quote(p['gtid'])}, {int(p['wait_seconds'])})")
    state = replica_status()
    if got != "0":
        raise StepError(
            f"the primary did not reach the standby's GTID {p['gtid']} within {p['wait_seconds']} s "
            f"(it is at {one('SELECT @@gtid_slave_pos')}; replica {state})"
        )
    return {
        "changed": False,
        "gtid_slave_pos": one("SELECT @@gtid_slave_pos"),
        "seconds": round(time.time() - began, 2),
        "at": time.time(),
        "detail": f"caught up with GTID {p['gtid']}",
    }


def remove(_p: dict[str, Any]) -> dict[str, Any]:
    was = replica_status().get("configured", False)
    if was:
        sql("STOP SLAVE; RESET SLAVE ALL;")
    return {"changed": bool(was), "detail": "replication removed" if was else "no replication configured"}


ACTIONS = {
    "account": account,
    "seed": seed,
    "freeze": freeze,
    "unfreeze": unfreeze,
    "wait": wait,
    "remove": remove,
    "remove_account": remove_account,
}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "required": True, "choices": ["status", *ACTIONS]},
            "databases": {"type": "list", "elements": "str", "default": ["sik"]},
            "source_address": {"type": "str", "default": ""},
            "source_port": {"type": "int", "default": 3306},
            "user": {"type": "str", "default": "simrs_repl"},
            "password": {"type": "str", "default": "", "no_log": True},
            "replica_address": {"type": "str", "default": "%"},
            "replica_server_id": {"type": "int", "default": 2},
            "server_id_file": {"type": "path", "default": "/etc/mysql/mariadb.conf.d/61-simrs-replica.cnf"},
            "gtid": {"type": "str", "default": ""},
            "wait_seconds": {"type": "int", "default": 20},
            "visits_after": {"type": "str", "default": ""},
            "compare": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 3600},
        },
        supports_check_mode=True,
    )
    p = module.params
    action = p["action"]
    bad = [d for d in p["databases"] if not NAME.match(d)]
    if bad or not NAME.match(p["user"]):
        module.fail_json(msg=f"plain names only: databases {bad}, user {p['user']!r}")
    if p["visits_after"] and not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", p["visits_after"]):
        module.fail_json(msg=f"visits_after must be YYYY-MM-DD HH:MM:SS, not {p['visits_after']!r}")
    result: dict[str, Any] | None = None
    try:
        if action == "status":
            result = {"changed": False, **status(p)}
        elif module.check_mode:
            result = {"changed": True, "detail": f"would {action} (check mode: nothing done)"}
        else:
            result = ACTIONS[action](p)
    except (StepError, subprocess.TimeoutExpired, OSError) as exc:
        module.fail_json(
            msg=f"{action}: {exc}", result={"action": action, "ok": False, "detail": str(exc)[:500]}
        )
    if result is None:
        module.fail_json(msg=f"{action}: no result")
        return
    changed = bool(result.pop("changed", False))
    module.exit_json(changed=changed, result={"action": action, "ok": True, **result})


if __name__ == "__main__":
    main()
