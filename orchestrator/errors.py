"""The one error type people see: a message that says what to fix, and the exit code."""

from __future__ import annotations


class SimrsError(Exception):
    """Something the operator can act on. ``exit_code`` 2 means their input; 1 a failure."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class JournalError(SimrsError):
    """The journal refuses (locked incident, unknown id); the message says what to do."""
