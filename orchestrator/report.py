"""The evaluation report, written from the incident journal (never from the hosts).

The shape is the hospital's own hand-written report (LAPORAN EVALUASI & PERBAIKAN DOWN TIME
SERVER SIMRS): header, time and event, definition, purpose, causes, the handling procedure as
it actually ran (a timeline from the journal), measures, and the head of unit's signature.
Bahasa Indonesia by default, English on request; Markdown or HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator import ledger, procedure
from orchestrator.journal import Event

TEMPLATES = Path(__file__).with_name("templates")
MONTHS_ID = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)

TEXT: dict[str, dict[str, str]] = {
    "id": {
        "title": "LAPORAN EVALUASI & PERBAIKAN DOWN TIME (WAKTU HENTI) SERVER SIMRS",
        "time": "WAKTU",
        "event": "KEJADIAN",
        "definition": "PENGERTIAN",
        "purpose": "TUJUAN",
        "summary": "RINGKASAN",
        "causes": "PENYEBAB",
        "procedure": "PROSEDUR PENANGANAN",
        "timeline": "KRONOLOGI",
        "measures": "UPAYA",
        "closing": "Demikian laporan ini kami buat, atas saran dan masukannya kami ucapkan terima kasih.",
        "ack": "Mengetahui",
        "head": "Kepala Unit SIM RS",
        "definition_text": "Server down time adalah suatu kejadian dimana server tidak dapat diakses oleh user.",
        "purpose_text": "Untuk mempercepat penanganan / meminimalisir server down time SIMRS.",
        "reported_by": "Dilaporkan oleh",
        "incident": "Nomor kejadian",
        "status": "Status akhir",
        "verdict": "Hasil pemeriksaan",
        "server": "Kondisi server",
        "downtime": "Lama gangguan SIMRS",
        "paper": "Lama layanan dengan sistem manual (kertas)",
        "attempts": "Percobaan perbaikan",
        "cause_operator": "Penyebab (dicatat petugas)",
        "cause_found": "Temuan pemeriksaan",
        "none": "-",
        "minutes": "menit",
        "seconds": "detik",
        "open": "belum selesai",
        "failover": "PENGALIHAN KE SERVER CADANGAN (SOP 4b)",
        "fo_standby": "Kesiapan server cadangan",
        "fo_backup": "Backup yang dipulihkan",
        "fo_backup_time": "Waktu backup",
        "fo_skipped": "Backup rusak yang dilewati",
        "fo_last_visit": "Kunjungan terakhir dalam data yang dipulihkan",
        "fo_rpo": "Data yang mungkin hilang (RPO, batas atas: sampai laporan pertama)",
        "fo_rpo_text": "kunjungan setelah waktu ini perlu diinput ulang dari formulir kertas",
        "backfill": "PENGINPUTAN ULANG DATA DARI FORMULIR KERTAS",
        "bf_unit": "Unit",
        "bf_paper": "Sistem manual (kertas)",
        "bf_range": "Data yang harus diinput",
        "bf_done": "Sudah diinput",
        "bf_open": "BELUM",
        "fo_steps": "Lama pengalihan per langkah",
        "fo_step": "Langkah",
        "fo_seconds": "Lama",
        "fo_result": "Hasil",
    },
    "en": {
        "title": "SIMRS SERVER DOWNTIME: EVALUATION AND REPAIR REPORT",
        "time": "TIME",
        "event": "EVENT",
        "definition": "DEFINITION",
        "purpose": "PURPOSE",
        "summary": "SUMMARY",
        "causes": "CAUSES",
        "procedure": "HANDLING PROCEDURE",
        "timeline": "TIMELINE",
        "measures": "MEASURES",
        "closing": "We submit this report; suggestions are welcome.",
        "ack": "Acknowledged by",
        "head": "Head of the SIM RS unit",
        "definition_text": "Server downtime is an event in which the server cannot be accessed by users.",
        "purpose_text": "To speed up the handling of / minimise SIMRS server downtime.",
        "reported_by": "Reported by",
        "incident": "Incident",
        "status": "Final state",
        "verdict": "Triage result",
        "server": "Server state",
        "downtime": "SIMRS downtime",
        "paper": "Time on the manual (paper) system",
        "attempts": "Repair attempts",
        "cause_operator": "Cause (recorded by staff)",
        "cause_found": "Findings",
        "none": "-",
        "minutes": "min",
        "seconds": "s",
        "open": "not finished",
        "failover": "FAILOVER TO THE STANDBY SERVER (SOP 4b)",
        "fo_standby": "Standby readiness",
        "fo_backup": "Backup restored",
        "fo_backup_time": "Backup taken at",
        "fo_skipped": "Corrupt backups skipped",
        "fo_last_visit": "Last visit in the restored data",
        "fo_rpo": "Data possibly lost (RPO, an upper bound: to the first report)",
        "fo_rpo_text": "visits after this time must be re-entered from the paper forms",
        "backfill": "PAPER RECORDS TO TYPE INTO THE SIMRS",
        "bf_unit": "Unit",
        "bf_paper": "On paper",
        "bf_range": "Records to enter",
        "bf_done": "Entered",
        "bf_open": "NOT YET",
        "fo_steps": "Failover time by step",
        "fo_step": "Step",
        "fo_seconds": "Time",
        "fo_result": "Result",
    },
}

STEP_TEXT = {
    "id": {
        "fence": "mengamankan server utama (dipastikan mati)",
        "power_on": "menyalakan server cadangan",
        "restore": "memulihkan backup terbaru dari hard disk eksternal",
        "ip_takeover": "memindahkan IP server utama ke server cadangan",
        "start": "menjalankan SIMRS di server cadangan",
        "verify": "menguji SIMRS dari komputer admin dan semua komputer klien",
        "takeover": "pengambilalihan oleh server cadangan yang sudah siap (semua langkah)",
        "within": "  di dalamnya: {}",
        "first_pc": "  PC pertama berfungsi lagi ({}), sejak awal pengambilalihan",
        "last_pc": "  PC terakhir berfungsi lagi ({}), sejak awal pengambilalihan",
        "prestage": "menyiapkan server cadangan selama jendela perbaikan",
    },
    "en": {
        "fence": "make sure the main server cannot serve (switched off)",
        "power_on": "switch on the standby server",
        "restore": "restore the newest good backup from the external disk",
        "ip_takeover": "give the standby the main server's IP",
        "start": "start the SIMRS on the standby",
        "verify": "test the SIMRS from the admin machine and every client PC",
        "takeover": "takeover by the pre-staged standby (every step)",
        "within": "  of which: {}",
        "first_pc": "  first PC working again ({}), from the takeover's start",
        "last_pc": "  last PC working again ({}), from the takeover's start",
        "prestage": "prepare the standby during the repair window",
    },
}

PROBLEM_TEXT = {
    "id": {
        "host_unreachable": "server tidak dapat dijangkau (mati atau jaringan server putus)",
        "db_down": "database (MariaDB) tidak berjalan",
        "web_down": "aplikasi web SIMRS tidak menjawab",
        "disk_full": "disk data server penuh",
        "inodes_full": "inode disk data habis",
        "db_write_blocked": "database tidak dapat menyimpan data",
        "service_ip_missing": "IP layanan SIMRS tidak terpasang",
        "memory_low": "memori server hampir habis",
    },
    "en": {
        "host_unreachable": "the server could not be reached (off, or its network down)",
        "db_down": "the database (MariaDB) was not running",
        "web_down": "the SIMRS web application did not answer",
        "disk_full": "the server's data disk was full",
        "inodes_full": "the data disk ran out of inodes",
        "db_write_blocked": "the database could not store data",
        "service_ip_missing": "the SIMRS service IP was missing",
        "memory_low": "the server was almost out of memory",
    },
}

MEASURES = {
    "id": [
        "Pemeliharaan rutin: a. komputer server, b. UPS server, c. genset rumah sakit.",
        "Restart server pada hari libur / saat sepi.",
        "Upgrade server jika sudah melewati masa pakai (sekitar 5 tahun).",
    ],
    "en": [
        "Routine maintenance of: a. the server computer, b. the server's UPS, c. the hospital's generator set.",
        "Restart the server on holidays / at quiet times.",
        "Upgrade the server when it is past its service life (about 5 years).",
    ],
}
EXTRA_MEASURES = {
    "id": {
        "disk_full": "Pantau ruang disk server dan atur rotasi log agar disk tidak penuh lagi.",
        "host_unreachable": "Periksa catu daya server (UPS, genset) dan kabel jaringan server.",
        "db_down": "Periksa log database untuk penyebab berhentinya MariaDB.",
    },
    "en": {
        "disk_full": "Monitor the server's disk space and set up log rotation so the disk does not fill again.",
        "host_unreachable": "Check the server's power (UPS, generator) and its network cabling.",
        "db_down": "Read the database log for why MariaDB stopped.",
    },
}


@dataclass(frozen=True)
class Line:
    at: str
    text: str


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _date(ts: float, lang: str) -> str:
    t = time.localtime(ts)
    if lang == "id":
        return f"{t.tm_mday} {MONTHS_ID[t.tm_mon - 1]} {t.tm_year}"
    return time.strftime("%d %B %Y", t).lstrip("0")


def _span(seconds: float | None, lang: str) -> str:
    words = TEXT[lang]
    if seconds is None:
        return words["open"]
    minutes, secs = divmod(round(seconds), 60)
    return (
        f"{minutes} {words['minutes']} {secs} {words['seconds']}" if minutes else f"{secs} {words['seconds']}"
    )


def describe(ev: Event, lang: str) -> str | None:  # noqa: PLR0911, PLR0912
    """One human sentence for an event, or None for bookkeeping events."""
    d = ev.data
    en = lang == "en"
    if ev.kind == "opened":
        note = f' ("{d["note"]}")' if d.get("note") else ""
        return (
            f"{d['reporter']} reports it cannot reach the SIMRS{note}; incident opened"
            if en
            else f"{d['reporter']} melaporkan tidak dapat mengakses SIMRS{note}; kejadian dibuka"
        )
    if ev.kind == "triage":
        c = procedure.classify_from_data(d)
        if c.verdict == procedure.Verdict.NO_FAULT:
            return (
                "checked: every PC reaches the SIMRS"
                if en
                else "diperiksa: semua komputer dapat mengakses SIMRS"
            )
        failing = ", ".join(c.failing) or "-"
        if en:
            return (
                f"checked every PC and, from the admin machine, the server: {c.verdict} (failing: {failing})"
            )
        return f"semua komputer dan server diperiksa dari komputer admin: {c.verdict} (gagal: {failing})"
    if ev.kind == "client_repair":
        parts = [f"{h}: {'OK' if r.get('ok') else 'FAIL'}" for h, r in d.get("hosts", {}).items()]
        return ("client PC repair: " if en else "perbaikan komputer klien: ") + ", ".join(parts)
    if ev.kind == "server_check":
        state = procedure.server_state(bool(d.get("reachable")), d.get("problems", []))
        probs = ", ".join(PROBLEM_TEXT[lang].get(p, p) for p in d.get("problems", [])) or "-"
        return f"server check: {state}; {probs}" if en else f"pemeriksaan server: {state}; {probs}"
    if ev.kind == "notice":
        if d.get("event") == "outage_paper_mode":
            return (
                "units told to switch to the manual (paper) system (SOP 4c)"
                if en
                else "unit pelayanan diberi tahu beralih ke sistem manual/kertas (SOP 4c)"
            )
        if d.get("event") == "restored_on_standby":
            return (
                "units told the SIMRS is normal again (on the standby server)"
                if en
                else "unit pelayanan diberi tahu SIMRS normal kembali (di server cadangan)"
            )
        if d.get("event", "").startswith("restored"):
            return (
                "units told the SIMRS is normal again"
                if en
                else "unit pelayanan diberi tahu SIMRS normal kembali"
            )
        return None
    if ev.kind == "repair_attempt":
        ran = ", ".join(a.get("name", "?") for a in d.get("actions", []) if a.get("ran")) or "-"
        ok = d.get("healthy")
        if en:
            return f"server repair attempt ({ran}): {'healthy' if ok else 'not yet repaired'}"
        return f"percobaan perbaikan server ({ran}): {'berhasil' if ok else 'belum berhasil'}"
    if ev.kind == "failover_now":
        return (
            f"{d.get('by')} ended the repair window early: {d.get('reason')}"
            if en
            else f"{d.get('by')} mengakhiri jendela perbaikan lebih awal: {d.get('reason')}"
        )
    if ev.kind == "pending_failover":
        return (
            "repair window over: waiting for approval to take over to the standby server (SOP 4b)"
            if en
            else "batas waktu perbaikan habis: menunggu persetujuan pengalihan ke server cadangan (SOP 4b)"
        )
    standby = describe_failover(ev, lang)
    if standby is not None:
        return standby
    if ev.kind == "resolved":
        return "resolved" if en else "selesai"
    if ev.kind == "closed":
        return (
            f"closed by {d.get('by')}: {d.get('cause')}"
            if en
            else f"ditutup oleh {d.get('by')}: {d.get('cause')}"
        )
    return None


def describe_failover(ev: Event, lang: str) -> str | None:  # noqa: PLR0911
    """Sentences for the failover's events (pre-staging, steps, the IP guard)."""
    d = ev.data
    en = lang == "en"
    steps = STEP_TEXT[lang]
    if ev.kind == "approved":
        return f"failover approved by {d.get('by')}" if en else f"pengalihan disetujui oleh {d.get('by')}"
    if ev.kind == "prestage_started":
        return ("started: " if en else "dimulai: ") + steps["prestage"]
    if ev.kind == "prestage":
        if d.get("ok"):
            return (
                f"standby ready: backup {d.get('set')} restored and verified on its own address"
                if en
                else f"server cadangan siap: backup {d.get('set')} dipulihkan dan diuji di alamatnya sendiri"
            )
        return (
            f"standby NOT ready: {d.get('detail')}"
            if en
            else f"server cadangan BELUM siap: {d.get('detail')}"
        )
    if ev.kind == "standby_cold":
        return (
            "standby switched off again (the main server was repaired)"
            if en
            else "server cadangan dimatikan kembali (server utama berhasil diperbaiki)"
        )
    if ev.kind == "failover_step":
        what = steps.get(d.get("step", ""), d.get("step", "?"))
        if d.get("ok"):
            return f"SOP 4b: {what}: done" if en else f"SOP 4b: {what}: selesai"
        return (
            f"SOP 4b stopped at: {what}: {d.get('detail')}"
            if en
            else f"SOP 4b terhenti pada: {what}: {d.get('detail')}"
        )
    if ev.kind == "retry":
        return (
            f"{d.get('by')} resumed the failover at {d.get('step')}"
            if en
            else f"{d.get('by')} melanjutkan pengalihan pada langkah {d.get('step')}"
        )
    if ev.kind == "failback":
        if d.get("ok"):
            return (
                f"back on the main server (failback by {d.get('by')})"
                if en
                else f"kembali ke server utama (failback oleh {d.get('by')})"
            )
        return (
            f"failback by {d.get('by')} did not finish: {d.get('detail')}"
            if en
            else f"failback oleh {d.get('by')} belum berhasil: {d.get('detail')}"
        )
    if ev.kind == "ip_guard":
        done = "; ".join(
            f"{h}: {', '.join(s.get('done', []))}"
            for h, s in (d.get("servers") or {}).items()
            if s.get("done")
        )
        text = ("service IP check: " if en else "pemeriksaan IP layanan: ") + str(d.get("detail", ""))
        return text + (f" ({done})" if done else "")
    return None


def failover_summary(events: list[Event], inc: procedure.Incident, lang: str) -> dict[str, Any] | None:
    """The failover section: the backup restored, its age, the data possibly lost, time by step."""
    if not inc.failover_facts and not inc.standby:
        return None
    restore = inc.restored
    rows = []
    started: Event | None = None
    prestage_started: Event | None = None  # runs beside the other actions
    standby = "-"
    within: list[tuple[str, float, bool]] = []  # the takeover's steps, journaled while it ran
    takeover_row: int | None = None
    for ev in events:
        if ev.kind == "action_started":
            started = ev
        elif ev.kind == "prestage_started":
            prestage_started = ev
        elif ev.kind in ("prestage", "standby_cold"):
            standby = describe_failover(ev, lang) or "-"
            if ev.kind == "prestage" and prestage_started is not None:
                rows.append(
                    (STEP_TEXT[lang]["prestage"], round(ev.ts - prestage_started.ts), bool(ev.data.get("ok")))
                )
                prestage_started = None
        elif ev.kind == "takeover_step":
            # Journaled live as each step of the takeover ended, with its own duration.
            step = STEP_TEXT[lang].get(ev.data.get("step", "?"), ev.data.get("step", "?"))
            within.append((STEP_TEXT[lang]["within"].format(step), round(ev.data.get("seconds", 0), 1), True))
        elif ev.kind == "failover_step" and started is not None:
            action = started.data.get("action")
            key = "takeover" if action == "failover_takeover" else ev.data.get("step", "?")
            if action == "failover_takeover" and takeover_row is not None:
                rows[takeover_row] = (
                    *rows[takeover_row][:2],
                    rows[takeover_row][2] and bool(ev.data.get("ok")),
                )
                pcs = ev.data.get("clients_verified") or {}
                for which in ("first", "last") if pcs else ():
                    label = STEP_TEXT[lang][f"{which}_pc"].format(pcs[which]["host"])
                    rows.append((label, round(pcs[which]["seconds"], 1), True))
                continue  # one run, one row (and its steps)
            rows.append((STEP_TEXT[lang].get(key, key), round(ev.ts - started.ts), bool(ev.data.get("ok"))))
            if action == "failover_takeover":
                takeover_row = len(rows) - 1
                rows.extend(within)
            within = []
            if action != "failover_takeover":
                started = None
    anchor = restore.get("rpo_anchor") or {}
    last = restore.get("last_visit") or {}
    return {
        "standby": standby,
        "set": restore.get("set") or "-",
        "created_at": restore.get("created_at") or "-",
        "skipped": [f"{b.get('set')}: {b.get('problem')}" for b in restore.get("skipped_bad", [])],
        "last_visit": f"{last.get('no_rawat', '-')} ({last.get('tgl_registrasi', '')} {last.get('jam_reg', '')})",
        "rpo": _span(restore.get("rpo_seconds"), lang) if restore.get("rpo_seconds") is not None else "-",
        "rpo_source": anchor.get("source", "-"),
        "rows": rows,
    }


def context(
    incident_id: str,
    events: list[Event],
    hospital: dict[str, Any],
    lang: str,
    units: dict[str, str] | None = None,
) -> dict[str, Any]:
    if lang not in TEXT:
        raise ValueError(f"report language must be one of {', '.join(TEXT)}, not {lang!r}")
    inc = procedure.replay(incident_id, events)
    by_kind: dict[str, list[Event]] = {}
    for ev in events:
        by_kind.setdefault(ev.kind, []).append(ev)
    paper = next(
        (
            e.ts
            for e in by_kind.get("notice", [])
            if e.data.get("event") == "outage_paper_mode" and e.data.get("sent")
        ),
        None,
    )
    restored = next(
        (
            e.ts
            for e in by_kind.get("notice", [])
            if str(e.data.get("event", "")).startswith("restored") and e.data.get("sent")
        ),
        None,
    )
    end = inc.verified_at or (by_kind["resolved"][0].ts if "resolved" in by_kind else None)
    downtime = (end - inc.opened_at) if end else None
    problems = [PROBLEM_TEXT[lang].get(p, p) for p in inc.problems]
    measures = list(MEASURES[lang]) + [
        EXTRA_MEASURES[lang][p] for p in inc.problems if p in EXTRA_MEASURES[lang]
    ]
    timeline = [Line(_clock(e.ts), text) for e in events if (text := describe(e, lang))]
    return {
        "t": TEXT[lang],
        "lang": lang,
        "hospital": hospital,
        "inc": inc,
        "date": _date(inc.opened_at, lang),
        "reporter": inc.reporter,
        "note": inc.note,
        "verdict": str(inc.verdict) if inc.verdict else "-",
        "server": str(inc.server) if inc.server else "-",
        "phase": str(inc.phase),
        "downtime": _span(downtime, lang),
        "paper": _span((restored - paper) if paper and restored else None, lang) if paper else "-",
        "attempts": inc.repair_attempts,
        "cause": inc.closed_cause or "-",
        "problems": problems,
        "measures": measures,
        "timeline": timeline,
        "failover": failover_summary(events, inc, lang),
        "backfill": backfill_rows(inc, events, units, lang),
    }


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def backfill_rows(
    inc: Any, events: list[Event], units: dict[str, str] | None, lang: str
) -> list[dict[str, str]]:
    """The paper-mode ledger for the report: per unit, when it was on paper, which records it must
    type in, and who did (orchestrator/ledger.py). Without the inventory's units, each PC is one."""
    if units is None:
        told = {
            key.split(":", 1)[1]
            for e in events
            if e.kind == "notice"
            for key in (e.data.get("channels") or {})
            if key.startswith("screen:")
        }
        units = {pc: pc for pc in sorted(told)}
    rows = []
    for r in ledger.ledger(inc, events, units):
        done = (
            f"{r.done.get('by')}, {_stamp(r.done['at'])}"
            + (f" ({r.done['count']})" if r.done.get("count") is not None else "")
            if r.done
            else TEXT[lang]["bf_open"]
        )
        rows.append(
            {
                "unit": r.unit,
                "paper": f"{_stamp(r.paper_from) if r.paper_from else '-'} - {_stamp(r.paper_to) if r.paper_to else '-'}",
                "range": f"{_stamp(r.range_from) if r.range_from else '-'} - {_stamp(r.range_to) if r.range_to else '-'}",
                "done": done,
            }
        )
    return rows


def render(
    incident_id: str,
    events: list[Event],
    hospital: dict[str, Any],
    lang: str = "id",
    fmt: str = "md",
    units: dict[str, str] | None = None,
) -> str:
    if fmt not in ("md", "html"):
        raise ValueError(f"report format must be md or html, not {fmt!r}")
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(f"report.{fmt}.j2").render(**context(incident_id, events, hospital, lang, units))
