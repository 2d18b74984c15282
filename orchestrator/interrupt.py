"""Ctrl-C and SIGTERM as a clean stop: at a task boundary where possible, forced on the second one.

The CLI installs the handlers once (``install``). A first signal only *asks* to stop: the gateway
lets the running playbook park before its next task (the callback plugin simrs.downtime.boundary)
and cancels it there; the engine stops before its next action or wait. A second signal forces: the
running playbook is killed at once. Either way the command ends with ``Interrupted`` (exit 130 for
SIGINT, 143 for SIGTERM), after the engine journaled where it stopped.

ansible-runner would otherwise install its own handlers on every run started from the main thread
and keep them afterwards, so that Ctrl-C between playbooks (the repair window's wait among them)
was ignored; the gateway always passes its own cancel callback, which stops that.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

from orchestrator.errors import SimrsError

# How long a first Ctrl-C waits for the running playbook to reach its next task before it is
# cancelled where it is (a second Ctrl-C does not wait at all).
GRACE_SECONDS = 5.0

_requested = threading.Event()
_forced = threading.Event()
_state: dict[str, float | int | None] = {"signum": None, "at": None}
_cooperating = [0]  # > 0 while code that stops cleanly on its own is running (a run, the engine)


class Interrupted(SimrsError):  # noqa: N818  (what the operator did, not an error)
    """The operator (or the service manager) stopped the command; resume continues it."""

    def __init__(self, message: str, signum: int | None = None) -> None:
        code = 128 + (signum or signal.SIGINT)
        super().__init__(message, exit_code=code)
        self.signum = signum


def _handler(signum: int, _frame: object) -> None:
    if _requested.is_set():
        _forced.set()
    else:
        _state["signum"], _state["at"] = signum, time.monotonic()
        _requested.set()
    if _cooperating[0] == 0:
        # Nothing here stops by itself (a lab command, a report): stop now, as Python would.
        raise Interrupted(f"{name()}: stopped", signum)


@contextlib.contextmanager
def cooperating() -> Iterator[None]:
    """While this runs, a signal only asks to stop: the code inside checks (``check``, ``sleep``,
    a run's cancel callback) and stops at its next clean point."""
    _cooperating[0] += 1
    try:
        yield
    finally:
        _cooperating[0] -= 1


def install() -> None:
    """SIGINT and SIGTERM ask for a clean stop; a second one forces. Main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)


def requested() -> bool:
    return _requested.is_set()


def forced() -> bool:
    return _forced.is_set()


def signum() -> int | None:
    value = _state["signum"]
    return int(value) if value is not None else None


def waited() -> float:
    """Seconds since the first signal (0 when none came)."""
    at = _state["at"]
    return time.monotonic() - at if at is not None else 0.0


def name() -> str:
    return {signal.SIGTERM: "SIGTERM"}.get(signum() or signal.SIGINT, "Ctrl-C")


def check(where: str) -> None:
    """Raise ``Interrupted`` if a stop was asked for (called between steps)."""
    if _requested.is_set():
        raise Interrupted(f"{name()} {where}", signum())


def sleep(seconds: float) -> None:
    """A wait that a signal ends at once (the repair window's back-off, polling)."""
    if _requested.wait(max(0.0, seconds)):
        raise Interrupted(f"{name()} while waiting", signum())


def ask(signum_: int = signal.SIGINT) -> None:
    """As if the signal had come, inside cooperating code (tests, a programmatic stop)."""
    with cooperating():
        _handler(signum_, None)


def reset() -> None:
    """Forget an earlier stop (tests; a long-lived process that handled one)."""
    _requested.clear()
    _forced.clear()
    _state["signum"], _state["at"] = None, None
