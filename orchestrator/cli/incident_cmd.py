"""`simrs incident ...`: the SOP, step by step (its reports: orchestrator/cli/report_cmd.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import click
from rich.table import Table

from orchestrator import i18n, ledger, procedure, settings
from orchestrator.cli import base
from orchestrator.cli.base import err, handle_errors, main, out, progress
from orchestrator.engine import Engine
from orchestrator.errors import InputError, SimrsError
from orchestrator.i18n import _
from orchestrator.procedure import Action, Incident


class RichUI:
    """The live view: current step, results as they arrive, the countdown to the deadline."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._last_wait_print = 0.0

    def _say(self, text: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")

    def step(self, inc: Incident, action: Action) -> None:
        self._say(
            f"[bold]{inc.phase}[/] -> {action.kind}{' ' + action.event if action.event else ''}: "
            f"{i18n.marked(action.reason)}"
        )

    def event(self, kind: str, host: str, task: str) -> None:
        if kind == "runner_on_unreachable":
            self._say(f"  [red]{_('{host} unreachable', host=host)}[/] ({task})")
        elif kind == "running":  # the gateway's heartbeat: a long step says it still runs
            self._say(f"  [dim]{_('still running: {task}', task=task)}[/]")

    def fact(self, kind: str, data: dict) -> None:
        if kind == "triage":
            for host, c in sorted(data["clients"].items()):
                mark = (
                    "[green]ok[/]"
                    if c["ok"]
                    else f"[red]{_('FAIL')}[/] {c.get('failed_check')}: {c.get('detail', '')}"
                )
                self._say(f"  {host:16} {mark}")
            admin = data["admin"]
            self._say(
                f"  {_('admin machine'):16} "
                + ("[green]ok[/]" if admin["ok"] else f"[red]{_('FAIL')}[/] {admin.get('failed_check')}")
            )
        elif kind == "server_check":
            self._say(
                "  "
                + _(
                    "server reachable: {reachable}; problems: {problems}",
                    reachable=data["reachable"],
                    problems=", ".join(data["problems"]) or _("none"),
                )
            )
        elif kind == "repair_attempt":
            done = [a["name"] for a in data.get("actions", []) if a.get("ran")]
            state = f"[green]{_('healthy')}[/]" if data["healthy"] else f"[red]{_('not healthy')}[/]"
            ran = _("ran: {actions}", actions=", ".join(done) or _("nothing"))
            self._say(f"  {_('repair')}: {state} ({ran}) {data.get('detail', '')}")
        elif kind == "client_repair":
            for host, r in data["hosts"].items():
                self._say(
                    f"  {host}: "
                    + (
                        f"[green]{_('repaired')}[/]"
                        if r["ok"]
                        else f"[red]{_('not repaired')}[/] {r['detail']}"
                    )
                )
        elif kind == "prestage":
            mark = f"[green]{_('ready')}[/]" if data["ok"] else f"[red]{_('NOT ready')}[/]"
            self._say(f"  {_('standby')} {mark}: {data.get('detail', '')}")
        elif kind == "standby_cold":
            state = _("standby switched off") if data["ok"] else _("standby NOT switched off")
            self._say(f"  {state}: {data['detail']}")
        elif kind == "takeover_step":  # live, as each step of the takeover ends
            self._say(
                "  "
                + _("{step}: ended after {seconds} s", step=data["step"], seconds=f"{data['seconds']:.1f}")
            )
        elif kind == "failover_step":
            mark = f"[green]{_('done')}[/]" if data["ok"] else f"[red]{_('STOPPED')}[/]"
            took = f" ({data['seconds']:.1f} s)" if "seconds" in data else ""
            self._say(f"  {data['step']}: {mark}{took} {data['detail'][:200]}")
            pcs = data.get("clients_verified") or {}
            if pcs:
                first, last = pcs["first"], pcs["last"]
                self._say(
                    "  "
                    + _(
                        "PCs working again: {ok} of {of}, the first ({first}) after {first_s} s, "
                        "the last ({last}) after {last_s} s",
                        ok=pcs["ok"],
                        of=pcs["of"],
                        first=first["host"],
                        first_s=f"{first['seconds']:.1f}",
                        last=last["host"],
                        last_s=f"{last['seconds']:.1f}",
                    )
                )
        elif kind == "notice":
            chans = ", ".join(f"{k} {'ok' if v['ok'] else _('FAILED')}" for k, v in data["channels"].items())
            self._say(f"  {_('notice')} {data['event']}: {chans or _('no channels configured')}")

    def waiting(self, inc: Incident, now: float, until: float) -> None:
        if now - self._last_wait_print < 10:
            return
        self._last_wait_print = now
        left = (inc.deadline or now) - now
        self._say(
            "  "
            + _(
                "repair window: {left} left until failover; next attempt in {next} s",
                left=f"{int(left // 60):02d}:{int(left % 60):02d}",
                next=f"{max(0, until - now):.0f}",
            )
        )


def incident_view(inc: Incident, now: float) -> dict:
    deadline = inc.deadline
    return {
        "id": inc.id,
        "phase": str(inc.phase),
        "reporter": inc.reporter,
        "note": inc.note,
        "opened_at": inc.opened_at,
        "verdict": str(inc.verdict) if inc.verdict else None,
        "summary": inc.summary,
        "evidence": inc.evidence,
        "failing": list(inc.failing),
        "server": str(inc.server) if inc.server else None,
        "problems": list(inc.problems),
        "outage_confirmed_at": inc.outage_confirmed_at,
        "deadline": deadline,
        "seconds_to_deadline": round(deadline - now) if deadline and inc.active else None,
        "repair_attempts": inc.repair_attempts,
        "notices": list(inc.notices),
        "reason": inc.reason,
        "closed_cause": inc.closed_cause,
        "standby": inc.standby or None,
        "standby_readiness": procedure.standby_readiness(inc) if (inc.prestage or inc.standby) else None,
        "failover": failover_view(inc),
        "next": procedure.next_action(inc, now).reason if inc.active else None,
        "exit_code": procedure.exit_code(inc),
    }


def failover_view(inc: Incident) -> dict | None:
    """The failover's steps, the backup restored and the RPO, for people and for scripts."""
    if not inc.failover_facts and inc.phase not in (
        procedure.Phase.FAILOVER,
        procedure.Phase.FAILOVER_PENDING,
    ):
        return None
    steps = {
        step: {
            "ok": f.get("ok"),
            "detail": f.get("detail", ""),
            # The takeover of a ready standby times each of its steps (and the first and last PC).
            **{k: f[k] for k in ("seconds", "clients_verified") if k in f},
        }
        for step, f in inc.failover_facts.items()
    }
    restore = inc.restored
    return {
        "done": list(inc.failover_done),
        "blocked": inc.failover_blocked,
        "steps": steps,
        "restored_set": restore.get("set"),
        "backup_created_at": restore.get("created_at"),
        "skipped_bad": restore.get("skipped_bad", []),
        "rpo_seconds": restore.get("rpo_seconds"),
        "rpo_anchor": restore.get("rpo_anchor"),
        "last_visit": restore.get("last_visit"),
    }


def render_failover(fo: dict) -> None:
    for step in procedure.FAILOVER_STEPS:
        if step in fo["steps"]:
            mark = f"[green]{_('done')}[/]" if fo["steps"][step]["ok"] else f"[red]{_('STOPPED')}[/]"
            took = f" {fo['steps'][step]['seconds']:5.1f} s" if "seconds" in fo["steps"][step] else ""
            out.print(f"  {_('failover')} {step:12} {mark}{took} {fo['steps'][step]['detail'][:160]}")
    if fo["restored_set"]:
        anchor = fo.get("rpo_anchor") or {}
        out.print(
            _(
                "restored {set} (backup of {created}); last visit in the restored data {visit}; "
                "RPO {rpo} s (from the {source})",
                set=fo["restored_set"],
                created=fo["backup_created_at"],
                visit=(fo.get("last_visit") or {}).get("no_rawat", "?"),
                rpo=fo["rpo_seconds"],
                source=anchor.get("source", "?"),
            )
        )
    for bad in fo["skipped_bad"]:
        out.print(f"  [yellow]{_('skipped bad backup')}[/] {bad.get('set')}: {bad.get('problem')}")


def render_incident(inc: Incident, as_json: bool) -> None:
    view = incident_view(inc, time.time())
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    out.print(f"[bold]{inc.id}[/]  {inc.phase}  ({_('reported by {reporter}', reporter=inc.reporter)})")
    if inc.verdict:
        out.print(f"{_('triage')}: {inc.verdict}: {inc.summary}")
        for host, why in inc.evidence.items():
            out.print(f"  {host}: {why}")
    if inc.server:
        out.print(f"{_('server')}: {inc.server} ({', '.join(inc.problems) or _('no problems')})")
    if view["seconds_to_deadline"] is not None:
        left = view["seconds_to_deadline"]
        out.print(
            _(
                "repair window: {attempts} attempts; failover deadline {deadline} ({left} s left)",
                attempts=inc.repair_attempts,
                deadline=time.strftime("%H:%M:%S", time.localtime(view["deadline"])),
                left=max(left, 0),
            )
        )
    if view["standby_readiness"]:
        out.print(view["standby_readiness"])
    if view["failover"]:
        render_failover(view["failover"])
    if inc.notices:
        out.print(_("users told: ") + ", ".join(inc.notices))
    out.print(f"{_('now')}: {i18n.marked(inc.reason)}")
    if inc.phase == procedure.Phase.FAILOVER_PENDING:
        out.print(
            "[yellow]"
            + _(
                "next: approve the failover to the standby (SOP 4b): `simrs incident approve {id}`",
                id=inc.id,
            )
            + "[/]"
        )
    elif inc.phase == procedure.Phase.ESCALATED:
        out.print(
            "[yellow]"
            + _(
                "next: a person must act (see above); then `simrs incident close {id} --cause ...`",
                id=inc.id,
            )
            + "[/]"
        )
    elif inc.phase == procedure.Phase.RESOLVED:
        out.print(_("next: record the cause: `simrs incident close {id} --cause ...`", id=inc.id))


def _finish(inc: Incident, as_json: bool) -> None:
    render_incident(inc, as_json)
    sys.exit(procedure.exit_code(inc))


@main.group("incident")
def incident_group() -> None:
    """The SOP, step by step: open, status, resume, failover-now, close."""


def _pick(engine: Engine, incident_id: str | None) -> str:
    if incident_id:
        return incident_id
    active = engine.active_incident()
    if active is not None:
        return active.id
    ids = engine.journal.incidents()
    if not ids:
        raise InputError(_("there is no incident yet: open one with `simrs incident open --reporter PC`"))
    return ids[-1]


@incident_group.command("open")
@click.option("--reporter", required=True, help="The client PC that reported the problem (e.g. kasir-01).")
@click.option("--note", default="", help="What the user said.")
@click.option("--window", help="Repair window before failover (e.g. 2m; default from the inventory, 60m).")
@click.option("--policy", type=click.Choice(["approve", "auto"]), help="Failover policy for this incident.")
@click.option(
    "--prestage/--no-prestage",
    default=None,
    help="Ready the standby during the repair window (default: the inventory's simrs_prestage, true).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_open(
    ctx: click.Context,
    reporter: str,
    note: str,
    window: str | None,
    policy: str | None,
    prestage: bool | None,
    as_json: bool,
) -> None:
    """Open an incident for a PC that cannot reach the SIMRS, and run the SOP."""
    window_s = settings.parse_duration(window) if window else None
    engine = base.make_engine(ctx, RichUI())
    incident_id = engine.open(reporter, note, window_s, policy, prestage)
    if not as_json:
        progress(_("opened {id} (reported by {reporter})", id=incident_id, reporter=reporter))
    _finish(engine.drive(incident_id), as_json)


@incident_group.command("resume")
@click.argument("incident_id", required=False)
@click.option(
    "--primary-is-off",
    is_flag=True,
    help="You saw the main server is off (or pulled its network cable): the fence may rely on your word "
    "where its power driver cannot see the power. Journaled with your name.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_resume(ctx: click.Context, incident_id: str | None, primary_is_off: bool, as_json: bool) -> None:
    """Continue an incident where it stopped (after a crash, Ctrl-C or an operator's step)."""
    engine = base.make_engine(ctx, RichUI())
    chosen = _pick(engine, incident_id)
    if primary_is_off:
        engine.confirm_primary_off(chosen, settings.operator())
    engine.retry_blocked(chosen, settings.operator())
    _finish(engine.drive(chosen), as_json)


@incident_group.command("approve")
@click.argument("incident_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_approve(ctx: click.Context, incident_id: str | None, as_json: bool) -> None:
    """Approve the failover to the standby (SOP 4b) and run it."""
    engine = base.make_engine(ctx, RichUI())
    inc = engine.approve(_pick(engine, incident_id), settings.operator())
    if not as_json:
        progress(_("{id}: failover approved by {who}", id=inc.id, who=settings.operator()))
    _finish(engine.drive(inc.id), as_json)


@incident_group.command("status")
@click.argument("incident_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_status(ctx: click.Context, incident_id: str | None, as_json: bool) -> None:
    """Where an incident stands (default: the active one, else the latest), with the units whose
    paper records are not typed in yet."""
    engine = base.make_engine(ctx)
    chosen = _pick(engine, incident_id)
    inc = engine.incident(chosen)
    rows = ledger.ledger(inc, engine.journal.events(chosen), engine.hospital.units)
    still = [r.unit for r in rows if r.open]
    if as_json:
        view = {**incident_view(inc, time.time()), "backfill_open": still}
        click.echo(json.dumps(view, indent=2, default=str))
        return
    render_incident(inc, as_json)
    if still:
        out.print(
            f"[yellow]{_('paper records not yet typed in')}[/]: {', '.join(still)} "
            f"(`simrs incident backfill {chosen}`)"
        )


@incident_group.command("backfill")
@click.argument("incident_id", required=False)
@click.option("--unit", help="The unit (simrs_unit) that finished typing in its paper records.")
@click.option("--done", is_flag=True, help="Record that --unit finished (with --by and --count).")
@click.option("--by", "by", help="Who entered them (default: you).")
@click.option("--count", type=int, help="How many paper records were entered.")
@click.option(
    "--no-simrs-count",
    "skip_count",
    is_flag=True,
    help="Do not ask the SIMRS how many visits of the range it holds (one read-only query).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_backfill(
    ctx: click.Context,
    incident_id: str | None,
    unit: str | None,
    done: bool,
    by: str | None,
    count: int | None,
    skip_count: bool,
    as_json: bool,
) -> None:
    """The paper-mode ledger: per unit, when it worked on paper and which time range of records it
    must type into the SIMRS; with --unit U --done, record that it finished (who, how many). Once
    the SIMRS is back, it is asked how many visits (reg_periksa) of the range it holds: those
    typed in afterwards, shown next to the units' own count."""
    engine = base.make_engine(ctx)
    chosen = _pick(engine, incident_id)
    inc = engine.incident(chosen)
    units = engine.hospital.units
    rows = ledger.ledger(inc, engine.journal.events(chosen), units)
    if done or unit:
        if not (done and unit):
            raise SimrsError(_("record a finished backfill with both --unit UNIT and --done"))
        ledger.check_done(rows, unit, set(units.values()), count)
        engine.journal.append(
            chosen, "backfill_done", {"unit": unit, "by": by or settings.operator(), "count": count}
        )
        rows = ledger.ledger(inc, engine.journal.events(chosen), units)
    span = None if skip_count else ledger.count_range(rows)
    counted = count_in_simrs(engine, *span) if span else None
    if as_json:
        view = {
            "incident": chosen,
            "units": [dataclasses.asdict(r) for r in rows],
            "simrs_count": dataclasses.asdict(counted) if counted else None,
        }
        click.echo(json.dumps(view, indent=2))
        return
    render_ledger(chosen, rows)
    if counted:
        render_simrs_count(counted, rows)


def count_in_simrs(engine: Engine, start: float, end: float) -> ledger.SimrsCount:
    """The SIMRS's own count of the range's visits: the admin machine's probe (admin_check.yml)
    with the count as the application's query; read-only, bounded like every probe."""
    res = engine.gateway.run(
        "admin_check", extravars={"server_probe_app_query": ledger.count_query(start, end)}, timeout=120
    )
    found = ledger.simrs_count(res.data, start, end)
    if found.count is None and not res.data:
        return dataclasses.replace(found, detail=res.explanation or res.status)
    return found


def render_simrs_count(counted: ledger.SimrsCount, rows: list[ledger.UnitBackfill]) -> None:
    span = f"{_clock(counted.range_from)} - {_clock(counted.range_to)}"
    if counted.count is None:
        out.print(
            f"[yellow]{_('the SIMRS could not be asked for its own count')}[/] ({span}): {counted.detail}",
            soft_wrap=True,
        )
        return
    own = [r.done["count"] for r in rows if r.done and r.done.get("count") is not None]
    out.print(
        _(
            "the SIMRS itself holds {count} visits ({table}) registered in {span}, typed in after it "
            "was back; the units recorded {own}",
            count=counted.count,
            table=counted.table,
            span=span,
            own=sum(own) if own else "-",
        ),
        soft_wrap=True,
    )


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def render_ledger(incident_id: str, rows: list[ledger.UnitBackfill]) -> None:
    if not rows:
        out.print(_("{id}: no unit was sent to paper", id=incident_id))
        return
    table = Table(title=_("{id}: paper records to type into the SIMRS", id=incident_id), title_justify="left")
    for column in (_("unit"), _("on paper"), _("records from"), _("records to"), _("entered")):
        table.add_column(column)
    for r in rows:
        entered = (
            f"[green]{_('done')}[/] "
            + _("by {who}", who=r.done.get("by"))
            + (", " + _("{count} records", count=r.done["count"]) if r.done.get("count") is not None else "")
            if r.done
            else f"[yellow]{_('OPEN')}[/]"
        )
        table.add_row(
            r.unit,
            f"{_clock(r.paper_from)} - {_clock(r.paper_to)}",
            _clock(r.range_from),
            _clock(r.range_to),
            entered,
        )
    out.print(table)


@incident_group.command("failover-now")
@click.argument("incident_id", required=False)
@click.option("--reason", required=True, help="Why (goes into the report).")
@click.option(
    "--fence-again",
    is_flag=True,
    help="The main server came back during the failover and must not serve: fence it again, then take over.",
)
@click.pass_context
@handle_errors
def incident_failover_now(
    ctx: click.Context, incident_id: str | None, reason: str, fence_again: bool
) -> None:
    """End the repair window early (the incident goes to FAILOVER_PENDING); with --fence-again, in a
    failover stopped because the main server answers again: fence it again and go on."""
    engine = base.make_engine(ctx)
    inc = engine.failover_now(_pick(engine, incident_id), settings.operator(), reason, fence_again)
    what = _("the main server is fenced again") if fence_again else _("repair window ended early")
    then = _("run `simrs incident resume {id}`", id=inc.id)
    progress(f"{inc.id}: {what} ({settings.operator()}); {then}")


@incident_group.command("cancel-failover")
@click.argument("incident_id", required=False)
@click.option("--reason", required=True, help="Why (goes into the report), e.g. the main server is back.")
@click.pass_context
@handle_errors
def incident_cancel_failover(ctx: click.Context, incident_id: str | None, reason: str) -> None:
    """The main server came back healthy before the service IP moved: stay on it. Checked first
    (refused unless it answers and serves); on resume every PC verifies it and the standby returns
    to cold."""
    engine = base.make_engine(ctx)
    inc = engine.cancel_failover(_pick(engine, incident_id), settings.operator(), reason)
    progress(
        _(
            "{id}: failover canceled; run `simrs incident resume {id}` to verify and cool the standby",
            id=inc.id,
        )
    )


@incident_group.command("close")
@click.argument("incident_id", required=False)
@click.option("--cause", required=True, help="What caused the downtime (goes into the report).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_close(ctx: click.Context, incident_id: str | None, cause: str, as_json: bool) -> None:
    """Close an incident with its cause."""
    engine = base.make_engine(ctx)
    render_incident(engine.close(_pick(engine, incident_id), cause, settings.operator()), as_json)
