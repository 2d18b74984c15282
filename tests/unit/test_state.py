"""One state for the site (issue 11, item 1): every operator and timer uses one journal (default
/var/lib/simrs, SIMRS_HOME to move it), shared through the group simrs; an older per-user journal is
found and the operator told how to move it, never silently forked; two operators opening an incident
at once get one incident, never one id twice."""

from __future__ import annotations

import grp
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from orchestrator import journal as journal_mod
from orchestrator import settings
from orchestrator.errors import SimrsError
from orchestrator.journal import Journal, JournalError
from tests.unit.test_engine import make


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The site's state in a temporary folder (never the machine's own /var/lib/simrs)."""
    monkeypatch.delenv("SIMRS_HOME", raising=False)
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    monkeypatch.setattr(settings, "SYSTEM_HOME", tmp_path / "var-lib-simrs")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "per-user"))
    return tmp_path


def test_one_state_for_everyone_unless_simrs_home_moves_it(site, monkeypatch):
    assert settings.state_home() == site / "var-lib-simrs"
    assert settings.journal_path() == site / "var-lib-simrs" / "journal.sqlite"
    assert settings.prepare_state() == site / "var-lib-simrs"
    monkeypatch.setenv("SIMRS_HOME", str(site / "elsewhere"))
    assert settings.state_home() == site / "elsewhere"


def test_an_older_per_user_journal_is_found_and_the_operator_told_how_to_move_it(site, monkeypatch):
    old = site / "per-user" / "simrs"
    Journal(old / "journal.sqlite", copy_daily=False).append("INC-1", "opened", {"reporter": "kasir-01"})
    with pytest.raises(SimrsError, match="an incident journal from an older simrs") as caught:
        settings.prepare_state()
    assert f"sudo mv {old}/journal.sqlite*" in str(caught.value)
    assert not (site / "var-lib-simrs" / "journal.sqlite").exists()  # nothing forked
    monkeypatch.setenv("SIMRS_HOME", str(old))
    assert settings.prepare_state() == old  # or keep using it, said so


def test_a_state_that_cannot_be_written_says_how_to_make_it(site, monkeypatch):
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(SimrsError, match="groupadd -f simrs && sudo install -d -m 2770 -g simrs"):
        settings.prepare_state()


def test_a_shared_state_gives_the_group_its_files(tmp_path, monkeypatch):
    home = tmp_path / "shared"
    home.mkdir()
    gid = home.stat().st_gid
    monkeypatch.setattr(grp, "getgrnam", lambda name: grp.struct_group(("simrs", "x", gid, [])))
    journal = Journal(home / "journal.sqlite", copy_daily=False)
    journal.append("INC-1", "opened", {"reporter": "kasir-01"})
    assert journal.shared
    assert stat.S_IMODE((home / "journal.sqlite").stat().st_mode) == 0o660
    with journal.lock("INC-1", "test"):
        assert stat.S_IMODE((home / "locks" / "INC-1.lock").stat().st_mode) == 0o660
    monkeypatch.setattr(grp, "getgrnam", lambda name: (_ for _ in ()).throw(KeyError(name)))
    assert not journal_mod.shared(home)


def _open_one(path: str, queue: multiprocessing.Queue) -> None:
    engine, _gw, _ = make(Path(path), {})  # the real engine and journal (j.sqlite in that folder)
    try:
        queue.put(engine.open("kasir-01"))
    except JournalError as exc:
        queue.put(f"refused: {exc}")


def test_two_operators_opening_at_once_get_one_incident(tmp_path):
    Journal(tmp_path / "j.sqlite", copy_daily=False)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open_one, args=(str(tmp_path), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    answers = [queue.get(timeout=5) for _ in procs]
    opened = [a for a in answers if not a.startswith("refused")]
    assert len(opened) == 1, answers
    assert all("is still open" in a for a in answers if a.startswith("refused")), answers
    assert Journal(tmp_path / "j.sqlite", copy_daily=False).incidents() == opened
