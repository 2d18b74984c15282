"""`simrs journal check | backup | restore`: is the journal sound, copy it, go back to a good copy.

Only shows what ``orchestrator.journal`` finds and does: the checks, the copies and the restore
live there, so every other command meets a damaged journal the same way.
"""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from orchestrator import journal, settings
from orchestrator.cli.base import err, handle_errors, main, out
from orchestrator.errors import InputError
from orchestrator.i18n import _


def _when(ts: float | None) -> str:
    return journal.when(ts) if ts else "none"


def _verdict_view(v: journal.Verdict) -> dict:
    return {
        "path": str(v.path),
        "exists": v.exists,
        "sound": v.sound,
        "problems": list(v.problems),
        "events": v.events,
        "last_event": v.last_event,
    }


@main.group("journal")
def journal_group() -> None:
    """The journal itself: check it, copy it, go back to a good copy."""


@journal_group.command("check")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def journal_check(as_json: bool) -> None:
    """Check the journal (SQLite integrity_check, every event read) and list its copies.
    Exit 0: sound (or none yet); 1: damaged. Reads only."""
    path = settings.journal_path()
    found = journal.survey(path)
    good = found.good_copy
    way_back = f"simrs journal restore --from {good.path}" if good else None
    damaged = found.journal.exists and not found.journal.sound
    if as_json:
        view = {
            **_verdict_view(found.journal),
            "copies": [{**_verdict_view(v), "day": c.day, "taken": c.taken} for c, v in found.copies],
            "way_back": way_back if damaged else None,
        }
        click.echo(json.dumps(view, indent=2, sort_keys=True))
        sys.exit(1 if damaged else 0)
    v = found.journal
    if not v.exists:
        out.print(escape(_("journal {path}: none yet (nothing journaled), nothing to check", path=path)))
    elif v.sound:
        out.print(
            f"{escape(_('journal {path}:', path=path))} [green]{_('SOUND')}[/], "
            + _("{count} events (newest {when})", count=v.events, when=_when(v.last_event))
        )
    else:
        out.print(f"{escape(_('journal {path}:', path=path))} [bold red]{_('DAMAGED')}[/]")
        for problem in v.problems[:10]:
            out.print(f"  - {escape(problem)}")
    folder = journal.copies_dir(path)
    if not found.copies:
        out.print(escape(_("copies: none in {folder} (one is taken each day a command runs)", folder=folder)))
    else:
        out.print(escape(_("copies in {folder} (newest first):", folder=folder)))
        for c, cv in found.copies:
            mark = (
                "[green]ok[/]" if cv.sound else f"[red]{_('DAMAGED')}[/] {escape('; '.join(cv.problems[:2]))}"
            )
            said = _(
                "taken {taken}  {count} events, up to {until}",
                taken=_when(c.taken),
                count=cv.events,
                until=_when(cv.last_event),
            )
            out.print(f"  {c.path.name}  {escape(said)}  {mark}")
    if damaged:
        if way_back:
            said = _(
                "way back: `{command}` (the damaged file is kept aside; nothing after {when} is in the "
                "copy: check the hosts)",
                command=way_back,
                when=_when(good.last_event if good else None),
            )
            out.print(escape(said))
        else:
            out.print(
                f"[red]{_('no good copy')}[/]: "
                + _("keep the damaged file, copy it off this machine, ask for help")
            )
        sys.exit(1)


@journal_group.command("backup")
@handle_errors
def journal_backup() -> None:
    """Take today's copy now (SQLite backup API; checked before it is kept; replaces today's
    earlier copy, keeps the newest 14). Refused when the journal is damaged."""
    path = settings.journal_path()
    copy = journal.take_copy(path)
    kept = journal.copies(path)
    said = _(
        "copy taken: {path} (events up to {when}); {count} copies kept in {folder}",
        path=copy.path,
        when=_when(copy.last_event),
        count=len(kept),
        folder=journal.copies_dir(path),
    )
    out.print(escape(said))


@journal_group.command("restore")
@click.option(
    "--from",
    "source",
    required=True,
    help="The copy: a path, its file name in copies/, or its day (YYYYMMDD).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Go back even though the journal is sound (set aside as .replaced-<time>; newer events are lost).",
)
@handle_errors
def journal_restore(source: str, yes: bool, force: bool) -> None:
    """Go back to a good copy. The damaged journal is renamed aside (.damaged-<time>, with its
    -wal/-shm), never written; the copy goes into place atomically. Refused (exit 2) when the
    copy fails its check, when the journal is sound (without --force) or while a run holds it."""
    path = settings.journal_path()
    chosen = journal.resolve_copy(path, source)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(_("not a terminal: confirm the restore with --yes; nothing was changed"))
        if not click.confirm(_("Set {path} aside and go back to {copy}?", path=path, copy=chosen), err=True):
            raise InputError(_("not restored; nothing was changed"))
    done = journal.restore(path, chosen, force=force)
    said = _(
        "restored {journal} from {copy}: {count} events, up to {when}",
        journal=done.journal,
        copy=done.copy.path,
        count=done.events,
        when=_when(done.copy.last_event),
    )
    out.print(escape(said))
    for kept in done.aside:
        out.print(escape(_("kept aside: {path}", path=kept)))
    until = (
        _(" until {when} (the damaged file's last change)", when=_when(done.damaged_changed))
        if done.damaged_changed
        else ""
    )
    err.print(
        f"[bold yellow]{_('lost')}[/]: "
        + escape(
            _(
                "whatever was journaled after {when}{until}; none of it can be read from the damaged "
                "file. Check the hosts before acting: `simrs incident status`, `simrs backup list`, "
                "`simrs maintain check` ask them now",
                when=_when(done.copy.last_event),
                until=until,
            )
        )
    )
