"""The errors people see: a message that says what to fix. Four kinds, each with one exit code,
given once in the CLI (``orchestrator/cli/base.py``, ``EXIT_CODES``):

- ``InputError``: what the operator typed does not fit (a missing reason, a wrong phase, an
  unknown incident or host, a bad duration). Nothing was changed.
- ``InventoryError``: the inventory cannot be used as it is (``BadInventoryError`` names every
  variable to fix). Nothing was changed on any host.
- ``JournalError``: the journal refuses (another process drives the incident, another incident is
  open, a copy is missing); ``JournalDamagedError`` when its file is damaged.
- ``HostError``: a host or a playbook failed, or the admin machine could not do its part.

An error of none of these kinds (the lab's, an interrupt's) carries its own ``exit_code``.
"""

from __future__ import annotations


class SimrsError(Exception):
    """Something the operator can act on. ``exit_code``: only for an error of none of the four
    kinds below (the CLI maps those); None means 2, the operator's to fix."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InputError(SimrsError):
    """The operator's input does not fit: the message says what to give instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InventoryError(SimrsError):
    """The inventory cannot be used; the message says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class JournalError(SimrsError):
    """The journal refuses (locked incident, another incident open, no such copy)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class HostError(SimrsError):
    """A host or a playbook failed, or could not run; the message says what was seen."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
