"""Where things live and how the operator's words become values: paths, inventory choice, windows."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path

from orchestrator.journal import JournalError

REPO = Path(__file__).resolve().parents[1]
LAB_INVENTORY = REPO / "inventory" / "lab"


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("SIMRS_HOME", str(Path(base) / "simrs")))


def journal_path() -> Path:
    return Path(os.environ.get("SIMRS_JOURNAL", str(state_home() / "journal.sqlite")))


def runs_dir() -> Path:
    return state_home() / "runs"


def operator() -> str:
    """Who is acting, for the journal (never a secret)."""
    return os.environ.get("SIMRS_OPERATOR") or os.environ.get("SUDO_USER") or getpass.getuser()


def parse_duration(text: str) -> int:
    """'90s', '2m', '1h', '1h30m' or plain minutes ('45') -> seconds."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value) * 60
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)
        if not parts or not any(parts.groups()):
            raise JournalError(f"cannot read the duration {text!r}: write e.g. 90s, 2m, 1h or 1h30m")
        h, m, s = (int(g or 0) for g in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds < 10 or seconds > 24 * 3600:
        raise JournalError(f"a repair window of {text!r} is out of range: between 10 s and 24 h")
    return seconds
