"""The monthly availability report, written (Markdown, HTML with charts; the PDF is printed from
the HTML by orchestrator/pdf.py) from the numbers orchestrator/monthly.py computed."""

from __future__ import annotations

import time
from typing import Any

from markupsafe import Markup

from orchestrator import charts
from orchestrator.monthly import Monthly
from orchestrator.report import template_env
from orchestrator.report_text import MONTHS_ID

WORDS: dict[str, dict[str, str]] = {
    "id": {
        "title": "LAPORAN BULANAN KETERSEDIAAN SIMRS",
        "period": "Periode",
        "until": "sampai",
        "empty": "Tidak ada catatan untuk bulan ini di jurnal.",
        "summary": "RINGKASAN",
        "availability": "Ketersediaan SIMRS",
        "downtime": "Lama gangguan",
        "mttr": "Rata-rata waktu pemulihan (MTTR)",
        "to_paper": "Rata-rata waktu sampai sistem manual (kertas)",
        "incidents": "KEJADIAN",
        "by_verdict": "Kejadian menurut hasil pemeriksaan",
        "incident": "Nomor kejadian",
        "opened": "Dilaporkan",
        "at": "Waktu",
        "verdict": "Hasil pemeriksaan",
        "phase": "Status",
        "down_min": "Gangguan (menit)",
        "failovers": "PENGALIHAN KE SERVER CADANGAN DAN KEMBALI",
        "failover": "Pengalihan",
        "failback": "Kembali ke server utama",
        "manual": "manual",
        "drills": "LATIHAN PENGALIHAN (DRILL)",
        "drill": "Latihan",
        "ok": "Hasil",
        "backups": "BACKUP",
        "bk_runs": "Backup dijalankan",
        "bk_failed": "Backup gagal",
        "bk_verifies": "Pemeriksaan backup",
        "bk_bad": "Set backup rusak ditemukan",
        "bk_age": "Umur backup terverifikasi terbaru pada akhir bulan",
        "backfills": "DATA KERTAS YANG BELUM DIINPUT",
        "unit": "Unit",
        "since": "Sejak SIMRS normal",
        "upkeep": "PEMELIHARAAN",
        "restarts": "Restart terencana",
        "maintenance": "Pemeliharaan rutin",
        "servers": "Server mendekati / melewati masa pakai",
        "years": "tahun",
        "none": "-",
        "minutes": "menit",
        "days": "hari",
        "day": "Tanggal",
        "planned_note": "Restart terencana tidak dihitung sebagai gangguan.",
        "ch_strip": "Ketersediaan per hari (%)",
        "ch_down": "Lama gangguan per kejadian",
        "ch_age": "Umur backup terverifikasi terbaru",
        "ch_rto": "RTO / RPO latihan dan pengalihan (menit)",
        "no_charts": "(grafik tidak tersedia: pasang paket tambahan report)",
        "ack": "Mengetahui",
        "head": "Kepala Unit SIM RS",
    },
    "en": {
        "title": "SIMRS MONTHLY AVAILABILITY REPORT",
        "period": "Period",
        "until": "to",
        "empty": "The journal holds no record for this month.",
        "summary": "SUMMARY",
        "availability": "SIMRS availability",
        "downtime": "Downtime",
        "mttr": "Mean time to repair (MTTR)",
        "to_paper": "Mean time to the manual (paper) system",
        "incidents": "INCIDENTS",
        "by_verdict": "Incidents by triage result",
        "incident": "Incident",
        "opened": "Reported",
        "at": "When",
        "verdict": "Triage result",
        "phase": "State",
        "down_min": "Downtime (min)",
        "failovers": "FAILOVERS TO THE STANDBY AND BACK",
        "failover": "Failover",
        "failback": "Failback",
        "manual": "manual",
        "drills": "FAILOVER DRILLS",
        "drill": "Drill",
        "ok": "Result",
        "backups": "BACKUPS",
        "bk_runs": "Backups run",
        "bk_failed": "Backups failed",
        "bk_verifies": "Backup verifications",
        "bk_bad": "Bad backup sets found",
        "bk_age": "Age of the newest verified backup at the month's end",
        "backfills": "PAPER RECORDS NOT YET TYPED IN",
        "unit": "Unit",
        "since": "Since the SIMRS was back",
        "upkeep": "MAINTENANCE",
        "restarts": "Planned restarts",
        "maintenance": "Routine maintenance",
        "servers": "Servers near or past their service life",
        "years": "years",
        "none": "-",
        "minutes": "min",
        "days": "days",
        "day": "Day",
        "planned_note": "Planned restarts are not counted as downtime.",
        "ch_strip": "Availability by day (%)",
        "ch_down": "Downtime per incident",
        "ch_age": "Age of the newest verified backup",
        "ch_rto": "RTO / RPO of drills and failovers (min)",
        "no_charts": "(charts not available: install the extra report)",
        "ack": "Acknowledged by",
        "head": "Head of the SIM RS unit",
    },
}


def _min(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def month_name(year: int, month: int, lang: str) -> str:
    if lang == "id":
        return f"{MONTHS_ID[month - 1]} {year}"
    return time.strftime("%B %Y", (year, month, 1, 0, 0, 0, 0, 1, -1))


def chart_set(m: Monthly, w: dict[str, str]) -> dict[str, Markup]:
    """The four charts as inline SVG (empty when matplotlib is not installed)."""
    if not charts.available():
        return {}
    down = [r for r in m.incidents if r.downtime_s]
    runs = [(f.incident, f.rto_s, f.rpo_s) for f in m.failovers] + [
        (d.id, d.rto_s, d.rpo_s) for d in m.drills
    ]
    minutes = [(v / 60 if v is not None else None) for v in (x for _, x, _ in runs)]
    rpo = [(v / 60 if v is not None else None) for v in (x for _, _, x in runs)]
    return {
        "strip": Markup(charts.availability_strip(m.daily_availability, w["ch_strip"], w["day"])),  # noqa: S704
        "downtime": Markup(  # noqa: S704  (our own SVG, from numbers and our words)
            charts.bars(
                [r.id for r in down], [round(r.downtime_s / 60, 1) for r in down], w["ch_down"], w["minutes"]
            )
        ),
        "backup_age": Markup(charts.backup_age(m.backup_age_days, w["ch_age"], w["day"], w["days"])),  # noqa: S704
        "rto_rpo": Markup(charts.rto_rpo([r[0] for r in runs], minutes, rpo, w["ch_rto"])),  # noqa: S704
    }


def context(m: Monthly, hospital: dict[str, Any], lang: str, with_charts: bool) -> dict[str, Any]:
    if lang not in WORDS:
        raise ValueError(f"report language must be one of {', '.join(WORDS)}, not {lang!r}")
    w = WORDS[lang]
    age = next((a for a in reversed(m.backup_age_days) if a is not None), None)
    return {
        "w": w,
        "lang": lang,
        "hospital": hospital,
        "month": month_name(m.year, m.month, lang),
        "period": f"{_stamp(m.start)} {w['until']} {_stamp(m.end)}",
        "m": m,
        "availability": f"{m.availability_pct:.2f} %",
        "downtime": f"{_min(m.downtime_s)} {w['minutes']}",
        "mttr": f"{_min(m.mttr_s)} {w['minutes']}" if m.mttr_s is not None else "-",
        "to_paper": f"{_min(m.to_paper_s)} {w['minutes']}" if m.to_paper_s is not None else "-",
        "incidents": [
            {
                "id": r.id,
                "opened": _stamp(r.opened_at),
                "verdict": r.verdict,
                "phase": r.phase,
                "down": _min(r.downtime_s),
            }
            for r in m.incidents
        ],
        "failovers": [
            {
                "what": w["failover"] + (f" ({w['manual']})" if f.manual else ""),
                "incident": f.incident,
                "at": _stamp(f.at),
                "rto": _min(f.rto_s),
                "rpo": _min(f.rpo_s),
            }
            for f in m.failovers
        ]
        + [
            {
                "what": f"{w['failback']} ({'OK' if b['ok'] else 'FAIL'})",
                "incident": b["incident"],
                "at": _stamp(b["at"]),
                "rto": _min(b["seconds"]),  # how long the SIMRS moved back took
                "rpo": "-",  # a failback moves no data
            }
            for b in m.failbacks
        ],
        "drills": [
            {
                "id": d.id,
                "at": _stamp(d.at),
                "ok": "OK" if d.ok else "FAIL",
                "rto": _min(d.rto_s),
                "rpo": _min(d.rpo_s),
            }
            for d in m.drills
        ],
        "backup_age": f"{age:.1f} {w['days']}" if age is not None else "-",
        "backfills": [{**b, "since": _stamp(b["since"])} for b in m.open_backfills],
        "restarts": [{**r, "at": _stamp(r["at"]), "ok": "OK" if r["ok"] else "FAIL"} for r in m.restarts],
        "charts": chart_set(m, w) if with_charts else {},
        "with_charts": with_charts,
    }


def render(m: Monthly, hospital: dict[str, Any], lang: str = "id", fmt: str = "md") -> str:
    """md (no charts) or html (charts inline); a PDF is printed from the html."""
    if fmt not in ("md", "html"):
        raise ValueError(f"report format must be md, html or pdf, not {fmt!r}")
    return (
        template_env().get_template(f"monthly.{fmt}.j2").render(**context(m, hospital, lang, fmt == "html"))
    )
