"""The CLI's words in the operator's language: English in the code (the message ids), Bahasa
Indonesia from a gettext catalog (orchestrator/locale/id.po).

The catalog is the standard .po format (translators' tools and `pybabel extract -k _ -k N_` read
and write it); it is read here directly, so there is no compile step and no .mo to keep in step.
Which language: ``SIMRS_LANG`` (id|en), else the inventory's ``notify_lang`` once it is read,
else the locale (LC_ALL, LC_MESSAGES, LANG starting with ``id``), else English. JSON output and
the journal are never translated (their keys and facts stay English).

``_("text {name}", name=...)`` translates then fills the named fields. ``N_`` only marks a text for
the catalog (an engine's refusal the CLI translates when it prints it: ``translate_error``).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from orchestrator.errors import SimrsError

LOCALES = Path(__file__).with_name("locale")
LANGS = ("id", "en")
_inventory_lang: str | None = None


def lang() -> str:
    given = os.environ.get("SIMRS_LANG", "").strip()
    if given:
        if given not in LANGS:
            raise SimrsError(f"SIMRS_LANG must be id or en, not {given!r}", exit_code=2)
        return given
    if _inventory_lang in LANGS:
        return _inventory_lang
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "id" if value.lower().startswith("id") else "en"
    return "en"


def use_inventory_lang(value: str | None) -> None:
    """The inventory's notify_lang: the default when SIMRS_LANG is not set."""
    global _inventory_lang  # noqa: PLW0603  (one per process: the inventory is read once)
    _inventory_lang = value


def _unquote(text: str) -> str:
    body = text.strip()
    if len(body) < 2 or body[0] != '"' or body[-1] != '"':
        raise ValueError(f"not a quoted .po string: {text!r}")
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body[1:-1])


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (no plurals, no contexts: the CLI uses neither); the header
    (empty msgid) and fuzzy entries are left out, as gettext does."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = False

    def flush() -> None:
        if msgid is not None and msgstr is not None and "".join(msgid) and not fuzzy:
            entries["".join(msgid)] = "".join(msgstr)

    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if not line:
            flush()
            msgid = msgstr = current = None
            fuzzy = False
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid "):
            flush()
            msgid, msgstr = [_unquote(line[6:])], None
            current = msgid
        elif line.startswith("msgstr "):
            msgstr = [_unquote(line[7:])]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line))
    return entries


@functools.cache
def catalog(language: str) -> dict[str, str]:
    path = LOCALES / f"{language}.po"
    return parse_po(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _(msgid: str, **fields: object) -> str:
    language = lang()
    text = (catalog(language).get(msgid) or msgid) if language != "en" else msgid
    return text.format(**fields) if fields else text


def N_(msgid: str) -> str:  # noqa: N802  (gettext's own name for "mark, do not translate yet")
    return msgid


@functools.cache
def _patterns(language: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    found = []
    # The longest first: "failover stopped at {step}: {detail}; fix the cause, ..." before the
    # shorter message it would otherwise be taken for.
    for msgid, msgstr in sorted(catalog(language).items(), key=lambda item: -len(item[0])):
        if "{" not in msgid or not msgstr:
            continue
        regex, seen = "", set()
        for i, part in enumerate(re.split(r"\{(\w+)\}", msgid)):
            if i % 2 == 0:
                regex += re.escape(part)
            else:  # a field named twice must hold the same value twice
                regex += f"(?P={part})" if part in seen else f"(?P<{part}>.+?)"
                seen.add(part)
        found.append((re.compile(f"^{regex}$", re.DOTALL), msgstr))
    return tuple(found)


def marked(text: str) -> str:
    """A text marked with ``N_`` where it was written (a table of words, a refusal), in the
    operator's language now; a filled-in one is matched by its fields (``translate_error``)."""
    return translate_error(text)


def translate_error(text: str) -> str:
    """An error raised in English somewhere the CLI does not own (the engine): the catalog's text
    when it is one of the marked refusals, filled with the same values; else as it is."""
    language = lang()
    if language == "en":
        return text
    exact = catalog(language).get(text)
    if exact:
        return exact
    for pattern, msgstr in _patterns(language):
        match = pattern.match(text)
        if match:
            # A field that is itself a marked sentence ("SOP 4b: {what}") is translated too.
            filled = {
                name: catalog(language).get(value) or value if " " in value else value
                for name, value in match.groupdict().items()
            }
            return msgstr.format(**filled)
    return text
