"""Backups as the operator sees them: the backup playbooks' published results turned into rows,
verdicts and errors. Pure: no I/O, no clock, no Ansible (the CLI runs the playbooks).

The playbooks (docs/backup-format.md, role ``backup``) publish one result per host:
``simrs_backup`` (run), ``simrs_backup_list``, ``simrs_backup_verify``, ``simrs_binlog_ship``.
A refusal (disk missing, unmarked, read-only, full; a wrong setting) is a failed assert in the
role: it becomes an ``InputError`` (exit 2), since the operator must act (plug in the disk,
mark it, free space, fix the inventory). Anything else that stops a run (a host unreachable, a
tool failing, the runner timing out) is exit code 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.ansible import PlayResult, parse_inventory
from orchestrator.errors import HostError, InputError

RUN, LIST, VERIFY, SHIP = "backup", "backup_list", "backup_verify", "binlog_ship"
METHODS = ("dump", "physical")
WHAT = {
    RUN: "the backup",
    LIST: "the listing",
    VERIFY: "the verify",
    SHIP: "the binlog shipping",
}
# The role's own words for an unmarked disk name the Ansible variable; the CLI has an option for it.
INITIALIZE_HINT = "with simrs: `simrs backup run --initialize-disk`, once for a new disk"


@dataclass(frozen=True)
class SetRow:
    """One backup set as `backup list` and `backup verify` show it."""

    name: str
    method: str
    created_at: str
    age_seconds: int | None
    size: int
    state: str  # ok | BAD | not verified | incomplete
    reason: str = ""
    verified_at: str | None = None
    test_restored: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Listing:
    host: str
    source_host: str
    mount_point: str
    free_bytes: int
    sets: tuple[SetRow, ...]
    in_progress: tuple[str, ...]
    binlogs: dict[str, Any]
    detail: str

    def as_dict(self) -> dict[str, Any]:
        view = asdict(self)
        view["sets"] = [s.as_dict() for s in self.sets]
        view["in_progress"] = list(self.in_progress)
        return view


@dataclass(frozen=True)
class Verdict:
    host: str
    ok: bool
    sets: tuple[SetRow, ...]
    newest_good: str | None
    bad_binlogs: tuple[str, ...]
    recorded: bool
    detail: str

    @property
    def exit_code(self) -> int:
        """0 when every set checked is good (and one is); 1 when the backups cannot be trusted."""
        return 0 if self.ok else 1

    def as_dict(self) -> dict[str, Any]:
        view = asdict(self)
        view["sets"] = [s.as_dict() for s in self.sets]
        view["bad_binlogs"] = list(self.bad_binlogs)
        return view


# ---- what to run ----------------------------------------------------------------------------


def run_extravars(method: str, initialize_disk: bool) -> dict[str, Any]:
    if method not in METHODS:
        raise InputError(f"unknown backup method {method!r}: use one of {', '.join(METHODS)}")
    extravars: dict[str, Any] = {"backup_method": method}
    if initialize_disk:
        extravars["backup_disk_initialize"] = True
    return extravars


def verify_extravars(set_name: str | None, test_restore: bool, restore_host: str | None) -> dict[str, Any]:
    extravars: dict[str, Any] = {
        "backup_verify_set": set_name or "",
        "backup_verify_test_restore": test_restore,
    }
    if restore_host:
        if not test_restore:
            raise InputError("--restore-host only means something with --test-restore")
        extravars["backup_verify_restore_host"] = restore_host
    return extravars


# ---- results --------------------------------------------------------------------------------


KEY_DOC = "docs/runbook-backup-encryption.md"


def restore_key_problem(raw_inventory: dict[str, Any], what: str) -> str | None:
    """Why a restore, a drill or a test restore cannot read the sets: the primary encrypts them to
    backup_recipients, and no backup_private_key (nor restore_private_key) is given to decrypt them.
    None when it can (or nothing is encrypted to recipients). Checked before any host is touched."""
    inv = parse_inventory(raw_inventory)
    groups, hostvars = inv["groups"], inv["hostvars"]
    servers = [*groups.get("simrs_primary", []), *groups.get("simrs_standby", [])]
    if not servers or not any(hostvars.get(h, {}).get("backup_recipients") for h in servers):
        return None
    if any(
        hostvars.get(h, {}).get(var) for h in servers for var in ("backup_private_key", "restore_private_key")
    ):
        return None
    return (
        f"{what} needs the backup private key: the sets are encrypted to backup_recipients, and "
        "backup_private_key is not set. Give it from Ansible Vault (the IT team keeps it; see "
        f"{KEY_DOC}), e.g. --vault-password-file with the vault that holds it. Nothing was changed."
    )


def published(result: PlayResult) -> tuple[str, dict[str, Any]]:
    """The one host's published result, or an InputError or HostError saying why there is none.

    A host that failed is an error even when it published (a refusal publishes ok false with the
    reason as its detail); a verify that found bad sets did not fail, so its verdict comes back.
    """
    what = WHAT.get(result.playbook, result.playbook)
    hosts = sorted(set(result.data) | set(result.hosts))
    if not hosts:
        if result.status in ("timeout", "error", "canceled") or not result.complete:
            raise HostError(f"{what} could not run: {result.explanation or result.status}")
        raise InputError(
            f"{what} ran on no host: the inventory needs the SIMRS server (with the external disk) "
            "in the group simrs_primary"
        )
    if len(hosts) > 1:
        raise InputError(
            f"{what} ran on {', '.join(hosts)}: simrs_primary must hold exactly one host "
            "(the SIMRS server with the external disk)"
        )
    host = hosts[0]
    entry = result.data.get(host)
    outcome = result.hosts.get(host)
    if outcome is not None and outcome.unreachable:
        raise HostError(
            f"{what}: {host} is unreachable ({outcome.message}); check that it is on and that "
            "Ansible can log in to it, then run again. Nothing was written."
        )
    failed = outcome is not None and not outcome.ok
    if failed or not isinstance(entry, dict):
        # The role's refusals are asserts (and an argument spec is a setting): the operator's to fix.
        refused = outcome is not None and outcome.misconfigured
        detail = str((entry or {}).get("detail") or "").strip()
        if not detail or detail.startswith("stopped before"):
            detail = (outcome.message if outcome else "") or result.explanation or "no result was published"
        if "backup_disk_initialize" in detail:
            detail = f"{detail} ({INITIALIZE_HINT})"
        prefix = "" if refused else f"{what} failed on {host}: "
        raise (InputError if refused else HostError)(prefix + detail)
    if result.status in ("timeout", "error", "canceled") or not result.complete:
        raise HostError(f"{what} could not finish: {result.explanation or result.status}")
    return host, entry


def _reason(verify: dict[str, Any]) -> str:
    bad = [str(name) for name in verify.get("bad_files") or []]
    if bad:
        return "does not match its manifest: " + ", ".join(bad)
    restore = verify.get("test_restore") or {}
    if restore.get("ok") is False:
        return "test restore failed: " + str(restore.get("detail") or "no detail")
    return "marked bad by its last verify"


def row_from_listing(entry: dict[str, Any]) -> SetRow:
    verify = entry.get("verify")
    common = {
        "name": str(entry.get("name", "")),
        "method": str(entry.get("method", "")),
        "created_at": str(entry.get("created_at", "")),
        "age_seconds": entry.get("age_seconds"),
        "size": int(entry.get("size") or 0),
    }
    if not entry.get("complete", True):
        return SetRow(**common, state="incomplete", reason="no readable manifest.json: never restore it")
    if not isinstance(verify, dict):
        return SetRow(**common, state="not verified")
    restore = verify.get("test_restore") or {}
    return SetRow(
        **common,
        state="ok" if verify.get("ok") is True else "BAD",
        reason="" if verify.get("ok") is True else _reason(verify),
        verified_at=verify.get("verified_at"),
        test_restored=restore.get("ok") is True,
    )


def listing(result: PlayResult) -> Listing:
    host, entry = published(result)
    return Listing(
        host=host,
        source_host=str(entry.get("source_host") or host),
        mount_point=str(entry.get("mount_point") or ""),
        free_bytes=int(entry.get("free_bytes") or 0),
        sets=tuple(row_from_listing(s) for s in entry.get("sets") or []),
        in_progress=tuple(
            f"{p.get('name')} ({'being written' if p.get('kind') == 'partial' else 'being deleted'})"
            for p in entry.get("in_progress") or []
        ),
        binlogs=dict(entry.get("binlogs") or {}),
        detail=str(entry.get("detail") or ""),
    )


def row_from_verify(entry: dict[str, Any]) -> SetRow:
    restore = entry.get("test_restore") or {}
    ok = entry.get("ok") is True
    return SetRow(
        name=str(entry.get("name", "")),
        method=str(entry.get("method", "")),
        created_at=str(entry.get("created_at", "")),
        age_seconds=entry.get("age_seconds"),
        size=int(entry.get("size") or 0),
        state="ok" if ok else "BAD",
        reason="" if ok else str(entry.get("detail") or "").removeprefix("BAD: "),
        verified_at=entry.get("verified_at"),
        test_restored=restore.get("ok") is True,
    )


def verdict(result: PlayResult) -> Verdict:
    host, entry = published(result)
    binlogs = entry.get("binlogs") or {}
    return Verdict(
        host=host,
        ok=entry.get("ok") is True,
        sets=tuple(row_from_verify(s) for s in entry.get("sets") or []),
        newest_good=entry.get("newest_good"),
        bad_binlogs=tuple(binlogs.get("bad") or []),
        recorded=entry.get("recorded") is True,
        detail=str(entry.get("detail") or ""),
    )


# ---- words ----------------------------------------------------------------------------------


def human_age(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 0:
        return "in the future (check the server's clock)"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return f"{seconds} s"
    if minutes < 60:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60} min" if hours < 10 and minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def human_size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def state_text(row: SetRow) -> str:
    if row.state == "ok":
        return "ok" + (" (test-restored)" if row.test_restored else "")
    if row.state in ("BAD", "incomplete"):
        return f"{row.state}: {row.reason}" if row.reason else row.state
    return row.state
