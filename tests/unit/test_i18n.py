"""The CLI in Bahasa Indonesia (orchestrator/i18n.py, orchestrator/locale/id.po): every message the
code marks (`_("...")`, `N_("...")`) has its translation, with the same fields, and the catalog
keeps no message the code no longer has; the language is chosen as documented; the engine's
refusals come out translated with their values; JSON keys stay English."""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import cli, i18n
from orchestrator.cli.refusals import REFUSALS

ROOT = Path(__file__).resolve().parents[2] / "orchestrator"


def marked() -> dict[str, str]:
    """Every string literal passed to _ or N_ in the orchestrator, with where it is."""
    found: dict[str, str] = {}
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
            ):
                arg = node.args[0]
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                assert literal, f"{path}:{node.lineno}: {node.func.id}() needs a literal string (the id)"
                found.setdefault(arg.value, f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return found


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_marked_message_has_its_indonesian_translation_with_the_same_fields():
    ids = marked()
    assert len(ids) > 60  # the incident commands, the refusals, the errors' words
    catalog = i18n.catalog("id")
    missing = [f"{where}: {msgid!r}" for msgid, where in ids.items() if not catalog.get(msgid)]
    assert not missing, "not in orchestrator/locale/id.po (or empty):\n" + "\n".join(missing)
    stale = sorted(set(catalog) - set(ids))
    assert not stale, f"in id.po but no longer in the code: {stale}"
    wrong = [m for m in ids if fields(m) != fields(catalog[m])]
    assert not wrong, f"the translation names other fields than the message: {wrong}"


def test_the_po_reader_follows_gettext():
    po = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        '#: x.py:1\nmsgid "a \\"b\\""\nmsgstr "c"\n\n'
        'msgid ""\n"long "\n"one"\nmsgstr ""\n"panjang "\n"satu"\n\n'
        '#, fuzzy\nmsgid "unsure"\nmsgstr "ragu"\n'
    )
    assert i18n.parse_po(po) == {'a "b"': "c", "long one": "panjang satu"}


@pytest.mark.parametrize(
    ("env", "inventory", "expected"),
    [
        ({"SIMRS_LANG": "en"}, "id", "en"),
        ({"SIMRS_LANG": "id"}, None, "id"),
        ({}, "id", "id"),
        ({}, "en", "en"),
        ({"LANG": "id_ID.UTF-8"}, None, "id"),
        ({"LANG": "C.UTF-8"}, None, "en"),
    ],
)
def test_the_language_comes_from_simrs_lang_then_the_inventory_then_the_locale(
    monkeypatch, env, inventory, expected
):
    for var in ("SIMRS_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(i18n, "_inventory_lang", inventory)
    assert i18n.lang() == expected


def test_a_bad_simrs_lang_is_refused_with_exit_2(monkeypatch):
    monkeypatch.setenv("SIMRS_LANG", "fr")
    res = CliRunner().invoke(cli.main, ["report", "monthly", "--month", "2026-11"])
    assert res.exit_code == 2
    assert "SIMRS_LANG must be id or en, not 'fr'" in res.stderr


def test_messages_are_translated_and_filled(monkeypatch):
    monkeypatch.setenv("SIMRS_LANG", "id")
    assert i18n._("opened {id} (reported by {reporter})", id="INC-1", reporter="kasir-01") == (
        "INC-1 dibuka (dilaporkan oleh kasir-01)"
    )
    monkeypatch.setenv("SIMRS_LANG", "en")
    assert i18n._("opened {id} (reported by {reporter})", id="INC-1", reporter="kasir-01") == (
        "opened INC-1 (reported by kasir-01)"
    )


def test_the_engines_refusals_are_translated_with_their_values(monkeypatch, tmp_path):
    """Raised by the real engine (fake gateway), printed by the CLI's error handler."""
    from orchestrator.engine import Engine  # noqa: PLC0415
    from orchestrator.journal import Journal  # noqa: PLC0415
    from tests.unit.test_engine import Clock, FakeGateway  # noqa: PLC0415
    from tests.unit.test_ledger import HOSPITAL  # noqa: PLC0415

    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "j.sqlite"), FakeGateway({}), HOSPITAL, now=clock.now, sleep=clock.sleep
    )
    said = []
    for call in (
        lambda: engine.open("kasir-99"),
        lambda: engine.incident("INC-404"),
        lambda: engine.failback("ops", True),
        lambda: engine.open_failover("ops", " "),
    ):
        with pytest.raises(i18n.SimrsError) as caught:
            call()
        said.append(str(caught.value))
    monkeypatch.setenv("SIMRS_LANG", "id")
    translated = [i18n.translate_error(text) for text in said]
    assert translated[0].startswith("'kasir-99' bukan komputer klien di inventory")
    assert translated[1] == "tidak ada kejadian INC-404; `simrs incident status` menampilkan yang aktif"
    assert translated[2].startswith("tidak ada pengalihan yang perlu dibatalkan")
    assert translated[3].startswith("sebutkan alasan SIMRS dipindah ke server cadangan")
    monkeypatch.setenv("SIMRS_LANG", "en")
    assert [i18n.translate_error(t) for t in said] == said
    assert len(REFUSALS) >= 10


def test_refusals_in_the_wrong_phase_are_translated(monkeypatch, tmp_path):
    from tests.unit.test_ledger import repaired  # noqa: PLC0415

    engine, inc = repaired(tmp_path)  # RESOLVED
    said = []
    for call in (
        lambda: engine.approve(inc.id, "ops"),
        lambda: engine.failover_now(inc.id, "ops", "why", False),
    ):
        with pytest.raises(i18n.SimrsError) as caught:
            call()
        said.append(str(caught.value))
    monkeypatch.setenv("SIMRS_LANG", "id")
    assert [i18n.translate_error(t) for t in said] == [
        f"kejadian {inc.id} dalam tahap RESOLVED: hanya kejadian dalam FAILOVER_PENDING yang dapat disetujui",
        f"kejadian {inc.id} dalam tahap RESOLVED, bukan jendela perbaikan: failover-now hanya mengakhiri "
        "jendela perbaikan yang sedang berjalan",
    ]


def test_an_unknown_error_passes_through_untranslated(monkeypatch):
    monkeypatch.setenv("SIMRS_LANG", "id")
    assert i18n.translate_error("something nobody marked") == "something nobody marked"


def test_json_output_keys_stay_english_in_indonesian(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMRS_LANG", "id")
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    from tests.unit.test_ledger import repaired  # noqa: PLC0415

    _, inc = repaired(tmp_path)
    from orchestrator.cli.incident_cmd import incident_view  # noqa: PLC0415

    view = json.loads(json.dumps(incident_view(inc, 0.0), default=str))
    assert {"id", "phase", "reporter", "verdict", "next"} <= set(view)
    assert all(re.fullmatch(r"[a-z_]+", k) for k in view)


def test_a_backfill_refusal_reads_in_indonesian_with_exit_2(monkeypatch, tmp_path):
    """`simrs incident backfill --unit X --done` for a unit the inventory does not have, through the
    CLI in Bahasa Indonesia: the refusal translated, the values kept, nothing written."""
    from orchestrator.cli import base  # noqa: PLC0415
    from tests.unit.test_ledger import repaired  # noqa: PLC0415

    engine, inc = repaired(tmp_path)
    monkeypatch.setattr(base, "make_engine", lambda ctx, ui=None: engine)
    monkeypatch.setenv("SIMRS_LANG", "id")
    before = len(engine.journal.events(inc.id))
    res = CliRunner().invoke(cli.main, ["incident", "backfill", inc.id, "--unit", "radiologi", "--done"])
    assert res.exit_code == 2
    said = "galat: tidak ada unit 'radiologi' di inventory (simrs_unit): farmasi, kasir, pendaftaran"
    assert said in res.stderr
    assert len(engine.journal.events(inc.id)) == before
    res = CliRunner().invoke(cli.main, ["incident", "backfill", inc.id])
    assert "data kertas yang harus diinput ke SIMRS" in res.stdout
    assert "BELUM" in res.stdout


def test_the_failback_refusals_reach_the_operator_in_indonesian_with_their_values(monkeypatch):
    from orchestrator.failback import Failback  # noqa: PLC0415

    look = {
        "primary": "simrs-primary", "standby": "simrs-standby", "primary_answers": True,
        "standby_answers": True, "primary_holds_ip": False, "standby_holds_ip": True,
        "primary_why": "", "standby_why": "",
        "primary_newer": {"count": 2, "after": "2026-12-03 08:00:00", "sample": ["2026/12/03/000101"]},
    }  # fmt: skip
    monkeypatch.setenv("SIMRS_LANG", "en")
    said = Failback._failback_refusal(None, look, set(), False, False)
    assert said.startswith("the main server simrs-primary holds 2 visit(s) registered after")
    monkeypatch.setenv("SIMRS_LANG", "id")
    shown = i18n.translate_error(said)
    assert shown.startswith("server utama simrs-primary menyimpan 2 kunjungan yang didaftarkan setelah")
    assert "(2026-12-03 08:00:00), misalnya 2026/12/03/000101:" in shown
    assert shown.endswith("--discard-primary-data; tidak ada yang diubah")
