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
from markupsafe import Markup

from orchestrator import charts, ledger, procedure
from orchestrator.journal import Event
from orchestrator.report_text import EXTRA_MEASURES, MARKS, MEASURES, MONTHS_ID, PROBLEM_TEXT, STEP_TEXT, TEXT

TEMPLATES = Path(__file__).with_name("templates")


def template_env() -> Environment:
    """The reports' templates (the incident's and the month's): html escaped, md as written."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
                + (f": write freeze {d.get('freeze_seconds')} s, tables equal" if d.get("with_data") else "")
                if en
                else f"kembali ke server utama (failback oleh {d.get('by')})"
                + (
                    f": jeda penyimpanan {d.get('freeze_seconds')} detik, tabel sama"
                    if d.get("with_data")
                    else ""
                )
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
        "failback": failback_summary(events),
        "backfill": backfill_rows(inc, events, units, lang),
    }


def failback_summary(events: list[Event]) -> dict[str, Any] | None:
    """The last failback that moved the data (issue 13): who, the write freeze, the comparison,
    when the hospital was back on the main server, each step's time. None without one."""
    done = [e for e in events if e.kind == "failback" and e.data.get("with_data")]
    if not done:
        return None
    d = done[-1].data
    cmp = d.get("comparison") or {}
    back = d.get("back_on_main_at")
    return {
        "by": d.get("by") or "-",
        "ok": bool(d.get("ok")),
        "detail": d.get("detail") or "",
        "freeze": f"{d['freeze_seconds']} s" if d.get("freeze_seconds") is not None else "-",
        "tables": cmp.get("tables", 0),
        "rows": cmp.get("rows", 0),
        "same": bool(cmp.get("same")),
        "differ": [x.get("table") for x in cmp.get("differ") or []],
        "back_at": _stamp(float(back)) if back else "-",
        "steps": [(s.get("step"), s.get("seconds"), bool(s.get("ok"))) for s in d.get("steps") or []],
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


def timeline_marks(events: list[Event], lang: str) -> list[tuple[float, str, str]]:
    """The incident's course for the chart: reported, verdict, paper mode, each repair attempt,
    pre-staging, the takeover, back to normal (time, label, color), in the journal's order."""
    words = MARKS[lang]
    marks: list[tuple[float, str, str]] = []
    attempts = 0
    seen: set[str] = set()

    def once(key: str, ts: float, label: str, color: str) -> None:
        if key not in seen:
            seen.add(key)
            marks.append((ts, label, color))

    for ev in events:
        d = ev.data
        if ev.kind == "opened":
            once("opened", ev.ts, words["reported"], charts.GREY)
        elif ev.kind == "triage":
            verdict = procedure.classify_from_data(d).verdict
            once("triage", ev.ts, words["verdict"].format(verdict), charts.BLUE)
        elif ev.kind == "notice" and d.get("sent") and d.get("event") == "outage_paper_mode":
            once("paper", ev.ts, words["paper"], charts.AMBER)
        elif ev.kind == "repair_attempt":
            attempts += 1
            ok = "OK" if d.get("healthy") else "-"
            marks.append(
                (
                    ev.ts,
                    words["repair"].format(f"#{attempts} {ok}"),
                    charts.GREEN if d.get("healthy") else charts.RED,
                )
            )
        elif ev.kind == "prestage_started":
            once("prestage", ev.ts, words["prestage"], charts.BLUE)
        elif ev.kind == "prestage" and d.get("ok"):
            once("ready", ev.ts, words["ready"], charts.BLUE)
        elif ev.kind == "action_started" and d.get("action") == "failover_takeover":
            once("takeover", ev.ts, words["takeover"], charts.RED)  # a ready standby: all steps at once
        elif ev.kind == "failover_step" and d.get("step") == "ip_takeover" and d.get("ok"):
            once("takeover", ev.ts, words["takeover"], charts.RED)  # step by step: the IP moved
        elif ev.kind == "notice" and d.get("sent") and str(d.get("event", "")).startswith("restored"):
            once("normal", ev.ts, words["normal"], charts.GREEN)
    return marks


def timeline_chart(events: list[Event], lang: str) -> Markup | None:
    """The timeline as inline SVG for the HTML (and PDF) report; None without matplotlib."""
    marks = timeline_marks(events, lang)
    if not charts.available() or len(marks) < 2:
        return None
    return Markup(charts.timeline(marks, MARKS[lang]["title"]))  # noqa: S704  (our SVG, our words)


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
    env = template_env()
    chart = timeline_chart(events, lang) if fmt == "html" else None
    page = context(incident_id, events, hospital, lang, units)
    return env.get_template(f"report.{fmt}.j2").render(**page, chart=chart)
