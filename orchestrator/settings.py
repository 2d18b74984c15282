"""Where things live and how the operator's words become values: paths, inventory choice, windows."""

from __future__ import annotations

import getpass
import grp
import logging
import os
import re
from pathlib import Path

from orchestrator.errors import InputError, SimrsError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
LAB_INVENTORY = REPO / "inventory" / "lab"


# One state for the site: the journal, its locks and copies, the runs, shared by every operator
# (members of the group simrs) and every scheduled job. SIMRS_HOME moves it (tests, a second site).
SYSTEM_HOME = Path("/var/lib/simrs")
GROUP = "simrs"


def state_home() -> Path:
    return Path(os.environ.get("SIMRS_HOME") or SYSTEM_HOME)


def per_user_home() -> Path:
    """Where simrs kept its state per user before (one journal per account: never again)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "simrs"


def prepare_state() -> Path:
    """The state folder, ready to use: made if missing (2770, group simrs where that group exists),
    writable, and not silently forked from an older per-user journal. Raises what to do."""
    home = state_home()
    old = per_user_home() / "journal.sqlite"
    mine = home / "journal.sqlite"
    if not os.environ.get("SIMRS_HOME") and old.exists() and old.resolve() != mine.resolve():
        if not mine.exists():
            raise SimrsError(
                f"an incident journal from an older simrs is at {old} (one per user). simrs now keeps "
                f"one journal for every operator and scheduled job in {home}: move it there once "
                f"(`sudo install -d -m 2770 -g {GROUP} {home} && sudo mv {old.parent}/journal.sqlite* "
                f"{old.parent}/copies {home}/`), or keep using it with SIMRS_HOME={old.parent}"
            )
        log.warning("an older per-user journal at %s is not used (the site's journal is in %s)", old, home)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o2770)
        shared_group(home)
    except PermissionError:
        pass
    if not os.access(home, os.W_OK | os.X_OK):
        raise SimrsError(
            f"cannot write the site's state in {home}: make it once as root (`sudo groupadd -f {GROUP} && "
            f"sudo install -d -m 2770 -g {GROUP} {home}`) and add the operators to the group {GROUP} "
            f"(`sudo usermod -aG {GROUP} NAME`), or set SIMRS_HOME to a folder you may write"
        )
    return home


def shared_group(folder: Path) -> int | None:
    """The simrs group's id when ``folder`` belongs to it (a shared site state: files 0660, folders
    2770); as root, a new folder is given to the group when the group exists. None: not shared."""
    try:
        gid = grp.getgrnam(GROUP).gr_gid
    except KeyError:
        return None
    info = folder.stat()
    if info.st_gid != gid and os.geteuid() == 0 and folder == state_home():
        os.chown(folder, 0, gid)
        folder.chmod(0o2770)
        info = folder.stat()
    return gid if info.st_gid == gid else None


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
            raise InputError(f"cannot read the duration {text!r}: write e.g. 90s, 2m, 1h or 1h30m")
        h, m, s = (int(g or 0) for g in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds < 10 or seconds > 24 * 3600:
        raise InputError(f"a repair window of {text!r} is out of range: between 10 s and 24 h")
    return seconds
