"""The `simrs` command: options, rendering, exit codes. It decides nothing itself.

Exit codes: 0 done, 1 failed, 2 bad input (what to fix is printed), 3 waiting for an operator.
Each command group lives in its own module and registers itself on ``main`` when imported; the
lab's (lab, demo) only when named (``base.Commands``), so production commands never import the lab.
"""

from orchestrator.cli import (  # noqa: F401  (registers the commands)
    backup_cmd,
    drill_cmd,
    failover_cmd,
    incident_cmd,
    journal_cmd,
    maintain_cmd,
    preflight_cmd,
    report_cmd,
    schedule_cmd,
)
from orchestrator.cli.base import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
