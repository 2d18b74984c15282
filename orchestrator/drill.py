"""The DR drill (`simrs drill`): a failover test on the cold standby that the users never see.

Owns the drill's decisions (pure functions: is the test address safe, RTO by phase, RPO, the
journal record from the playbook's published data), running ``playbooks/drill.yml`` through the
gateway, the drill's journal record (``DRILL-YYYYMMDD-NNN``: events ``drill_started`` then
``drill_finished``; never an ``opened`` event, so a drill is never replayed as an incident), and
its short report (Bahasa Indonesia and English, from the journal only).
"""

from __future__ import annotations

import calendar
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from orchestrator import incidents
from orchestrator.ansible import Gateway, PlayResult, Progress, parse_inventory
from orchestrator.errors import InputError
from orchestrator.journal import DRILL_LOCK, Event, Journal

# In the order they run. The RTO is the time until the SIMRS was verified: every phase but the
# power-off (the clean-up of a drill, not part of a failover).
PHASES = ("power_on", "restore", "start", "address", "verify", "power_off")
RTO_PHASES = PHASES[:-1]
DRILL_TIMEOUT_S = 3600  # a restore of a large database is the longest phase
LOCK = DRILL_LOCK  # one drill at a time on this admin machine; incidents wait for it

# Tasks of playbooks/drill.yml that begin a phase: what the operator sees while it runs.
PHASE_TASKS = {
    "Switch the standby on": "power_on",
    "Restore the newest good backup": "restore",
    "Start the SIMRS on the standby": "start",
    "Add the test address next to the standby's own": "address",
    "Run the application checks on the test address": "verify",
    "Find out whether the standby answers": "power_off",
}


class DrillError(InputError):
    """A drill that must not run: the message says why; nothing was changed."""


@dataclass(frozen=True)
class DrillSettings:
    """What the drill needs of the inventory."""

    primary: str
    standby: str
    drill_ip: str
    service_ip: str
    mgmt_ips: dict[str, str]

    @classmethod
    def from_inventory(cls, raw: dict[str, Any]) -> DrillSettings:
        inv = parse_inventory(raw)
        groups, hostvars = inv["groups"], inv["hostvars"]
        primary, standby = groups.get("simrs_primary", []), groups.get("simrs_standby", [])
        if len(primary) != 1 or len(standby) != 1:
            raise DrillError(
                "a drill needs exactly one host in simrs_primary and one in simrs_standby; "
                f"the inventory has {primary or 'none'} and {standby or 'none'}"
            )
        anyvars = hostvars.get(standby[0], {})
        return cls(
            primary=primary[0],
            standby=standby[0],
            drill_ip=str(anyvars.get("simrs_drill_ip") or ""),
            service_ip=str(anyvars.get("simrs_service_ip") or ""),
            mgmt_ips={h: str(v["simrs_mgmt_ip"]) for h, v in hostvars.items() if v.get("simrs_mgmt_ip")},
        )


# ---- decisions (pure) ----------------------------------------------------------------------------


def drill_ip_problem(drill_ip: str, service_ip: str, mgmt_ips: dict[str, str]) -> str | None:
    """Why this test address must not be used, or None. The playbook checks the same rules."""
    if not drill_ip:
        return (
            "simrs_drill_ip is not set: set it in the inventory (group_vars) to a free IPv4 address in "
            "the standby's network that no client uses; the drill brings the SIMRS up there"
        )
    try:
        address = ipaddress.IPv4Address(drill_ip)
    except ValueError:
        return f"simrs_drill_ip {drill_ip!r} is not an IPv4 address"
    if service_ip and address == ipaddress.IPv4Address(service_ip):
        return (
            f"simrs_drill_ip {drill_ip} is the service IP, the address every client uses: a drill must "
            "never bring the SIMRS up there; set simrs_drill_ip to a free address"
        )
    owners = sorted(h for h, ip in mgmt_ips.items() if ip == drill_ip)
    if owners:
        return (
            f"simrs_drill_ip {drill_ip} is the own address (simrs_mgmt_ip) of {', '.join(owners)}: "
            "set simrs_drill_ip to a free address"
        )
    return None


def phase_seconds(phases: dict[str, Any]) -> dict[str, float]:
    """The phases that ran, in their order, as seconds."""
    return {p: round(float(phases[p]), 1) for p in PHASES if isinstance(phases.get(p), int | float)}


def rto_seconds(phases: dict[str, Any]) -> float | None:
    """Time until the SIMRS was verified on the standby; None when the drill did not get there."""
    done = phase_seconds(phases)
    if any(p not in done for p in RTO_PHASES):
        return None
    return round(sum(done[p] for p in RTO_PHASES), 1)


def _utc(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def rpo_seconds(restore: dict[str, Any] | None, outage_at: str | None) -> int | None:
    """Data that a failover at the drill's start would have lost: from the newest restored point
    (the set, or the last replayed binlog event) to the drill's start."""
    if not restore:
        return None
    if isinstance(restore.get("rpo_seconds"), int):
        return int(restore["rpo_seconds"])
    anchor = (restore.get("rpo_anchor") or {}).get("at") or restore.get("created_at")
    if not anchor or not outage_at:
        return None
    return max(0, round(_utc(outage_at) - _utc(anchor)))


def drill_facts(result: PlayResult, settings: DrillSettings) -> dict[str, Any]:
    """The journal record of one drill run from what playbooks/drill.yml published."""
    mine = result.data.get(settings.standby) or {}
    admin = result.data.get("localhost") or {}
    refused = [o for o in result.misconfigured() if not mine]
    restore = mine.get("restore") or None
    verify = admin.get("verify") or None
    phases = phase_seconds(mine.get("phases") or {})
    ok = bool(result.ok and mine.get("ok"))
    if ok:
        detail = str(mine.get("detail", "drill passed"))
    elif refused:
        detail = refused[0].message
    elif mine:
        detail = str(mine.get("detail") or result.explanation)
    else:
        detail = result.explanation or "the drill published no result"
    return {
        "ok": ok,
        "refused": bool(refused),
        "standby": settings.standby,
        "drill_ip": settings.drill_ip,
        "started_at": mine.get("started_at"),
        "finished_at": mine.get("finished_at"),
        "phases": phases,
        "rto_seconds": rto_seconds(phases) if ok else None,
        "rpo_seconds": rpo_seconds(restore, mine.get("outage_at")),
        "restore": _restore_summary(restore),
        "verify": _verify_summary(verify),
        "primary_check": _verify_summary(admin.get("primary_check")),
        "failed": mine.get("failed"),
        "powered_off": bool(mine.get("powered_off")),
        "holds_service_ip": bool(mine.get("holds_service_ip")),
        "status": result.status,
        "detail": detail[:500],
    }


def _restore_summary(restore: dict[str, Any] | None) -> dict[str, Any] | None:
    if not restore:
        return None
    replayed = restore.get("binlogs_replayed") or []
    return {
        "set": restore.get("set"),
        "created_at": restore.get("created_at"),
        "age_seconds": restore.get("age_seconds"),
        "action": restore.get("action"),
        "skipped_bad": [s.get("set") for s in restore.get("skipped_bad") or []],
        "extra_age_seconds": restore.get("extra_age_seconds") or 0,
        "binlog_transactions": sum(int(f.get("transactions") or 0) for f in replayed),
        "rpo_anchor": restore.get("rpo_anchor"),
        "last_visit": restore.get("last_visit"),
        "row_counts_ok": restore.get("row_counts_ok"),
    }


def _verify_summary(verify: dict[str, Any] | None) -> dict[str, Any] | None:
    if not verify:
        return None
    return {
        "ok": bool(verify.get("ok")),
        "address": verify.get("address"),
        "served_by": verify.get("served_by"),
        "last_visit": verify.get("last_visit"),
        "detail": verify.get("detail"),
    }


# ---- running it ----------------------------------------------------------------------------------


def run(
    journal: Journal,
    gateway: Gateway,
    settings: DrillSettings,
    *,
    by: str,
    now: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> tuple[str, dict[str, Any]]:
    """Run one drill, journaled: (drill id, its record). Refuses (DrillError, exit 2) before
    anything is touched when the test address is unsafe or an incident is open."""
    problem = drill_ip_problem(settings.drill_ip, settings.service_ip, settings.mgmt_ips)
    if problem:
        raise DrillError(f"REFUSED: {problem}. Nothing was changed.")
    return incidents.guarded_run(
        journal,
        lock=LOCK,
        purpose="running a drill",
        busy=DrillError(
            "REFUSED: another drill is running from this admin machine (one standby, one drill); "
            "wait for it to finish. Nothing was changed."
        ),
        during_incident=lambda inc: DrillError(
            f"REFUSED: incident {inc.id} is open ({inc.phase}): the standby may be needed for it. "
            f"Finish it first (`simrs incident status {inc.id}`), then drill. Nothing was changed."
        ),
        new_id=journal.new_drill_id,
        started=("drill_started", {"standby": settings.standby, "drill_ip": settings.drill_ip, "by": by}),
        run=lambda _: gateway.run("drill", progress=progress, timeout=DRILL_TIMEOUT_S),
        facts=lambda result: drill_facts(result, settings),
        finished="drill_finished",
        now=now,
    )


def exit_code(facts: dict[str, Any]) -> int:
    """0 passed, 2 refused (what to fix is in the detail), 1 failed."""
    if facts["ok"]:
        return 0
    return 2 if facts["refused"] else 1


# ---- the report ----------------------------------------------------------------------------------

TEMPLATES = Path(__file__).with_name("templates")

TEXT: dict[str, dict[str, str]] = {
    "id": {
        "title": "LAPORAN UJI COBA PEMULIHAN (DR DRILL) SERVER CADANGAN SIMRS",
        "drill": "Nomor uji coba",
        "date": "Tanggal",
        "by": "Petugas",
        "standby": "Server cadangan",
        "drill_ip": "Alamat uji (bukan IP layanan)",
        "result": "Hasil",
        "passed": "BERHASIL",
        "failed": "GAGAL",
        "refused": "DITOLAK (tidak dijalankan)",
        "phases": "Waktu per tahap",
        "phase": "Tahap",
        "seconds": "detik",
        "minutes": "menit",
        "rto": "RTO (sampai SIMRS terverifikasi)",
        "rpo": "RPO (data yang hilang jika server utama mati saat uji dimulai)",
        "backup": "Cadangan yang dipulihkan",
        "backup_age": "umur",
        "skipped": "Cadangan rusak yang dilewati",
        "binlogs": "Transaksi binlog yang diputar ulang",
        "last_visit": "Kunjungan terakhir yang terpulihkan",
        "verify": "Pemeriksaan aplikasi di alamat uji",
        "off": "Server cadangan dimatikan lagi",
        "yes": "ya",
        "no": "tidak",
        "detail": "Keterangan",
        "note": (
            "Uji coba ini tidak menyentuh server utama maupun IP layanan; pengguna tetap dilayani server "
            "utama. Pada failover sungguhan ditambah waktu pengamanan server utama (fence) dan pemindahan "
            "IP layanan."
        ),
        "power_on": "menyalakan server cadangan",
        "restore": "memulihkan cadangan terbaru",
        "start": "menjalankan SIMRS",
        "address": "memasang alamat uji",
        "verify_phase": "memeriksa aplikasi",
        "power_off": "membersihkan dan mematikan",
    },
    "en": {
        "title": "SIMRS STANDBY SERVER: DISASTER-RECOVERY DRILL REPORT",
        "drill": "Drill",
        "date": "Date",
        "by": "Run by",
        "standby": "Standby server",
        "drill_ip": "Test address (not the service IP)",
        "result": "Result",
        "passed": "PASSED",
        "failed": "FAILED",
        "refused": "REFUSED (not run)",
        "phases": "Time by phase",
        "phase": "Phase",
        "seconds": "s",
        "minutes": "min",
        "rto": "RTO (until the SIMRS was verified)",
        "rpo": "RPO (data lost had the main server died when the drill began)",
        "backup": "Backup restored",
        "backup_age": "age",
        "skipped": "Bad backups skipped",
        "binlogs": "Binlog transactions replayed",
        "last_visit": "Newest visit restored",
        "verify": "Application checks on the test address",
        "off": "Standby switched off again",
        "yes": "yes",
        "no": "no",
        "detail": "Detail",
        "note": (
            "The drill touches neither the main server nor the service IP; users stay on the main server. "
            "A real failover adds fencing the main server and moving the service IP."
        ),
        "power_on": "power the standby on",
        "restore": "restore the newest backup",
        "start": "start the SIMRS",
        "address": "add the test address",
        "verify_phase": "check the application",
        "power_off": "clean up and power off",
    },
}


def _span(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    words = TEXT[lang]
    return (
        f"{minutes} {words['minutes']} {secs} {words['seconds']}" if minutes else f"{secs} {words['seconds']}"
    )


def report_context(drill_id: str, events: list[Event], hospital: dict[str, Any], lang: str) -> dict[str, Any]:
    if lang not in TEXT:
        raise ValueError(f"report language must be one of {', '.join(TEXT)}, not {lang!r}")
    started = next((e for e in events if e.kind == "drill_started"), None)
    finished = next((e for e in events if e.kind == "drill_finished"), None)
    if started is None:
        raise DrillError(f"no drill {drill_id} in the journal")
    facts = finished.data if finished else {}
    t = TEXT[lang]
    if not finished:
        result = t["failed"] + " (-)"
    elif facts.get("ok"):
        result = t["passed"]
    else:
        result = t["refused"] if facts.get("refused") else t["failed"]
    label = {p: t["verify_phase" if p == "verify" else p] for p in PHASES}
    restore = facts.get("restore") or {}
    done = phase_seconds(facts.get("phases") or {})
    return {
        "t": t,
        "hospital": hospital,
        "id": drill_id,
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started.ts)),
        "by": started.data.get("by", "-"),
        "standby": started.data.get("standby", "-"),
        "drill_ip": started.data.get("drill_ip", "-"),
        "result": result,
        # The journal stores keys sorted: the phases are listed in the order they ran.
        "phases": [(label[p], _span(done[p], lang)) for p in PHASES if p in done],
        "rto": _span(facts.get("rto_seconds"), lang),
        "rpo": _span(facts.get("rpo_seconds"), lang),
        "restore": restore,
        "backup_age": _span(restore.get("age_seconds"), lang) if restore else "-",
        "last_visit": (restore.get("last_visit") or {}).get("no_rawat") or "-",
        "verify": facts.get("verify") or {},
        "off": t["yes"] if facts.get("powered_off") else t["no"],
        "detail": facts.get("detail", "-"),
    }


def render_report(drill_id: str, events: list[Event], hospital: dict[str, Any], lang: str = "id") -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown for people, never served as HTML  # noqa: S701
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("drill.md.j2").render(**report_context(drill_id, events, hospital, lang))
