"""The `simrs` command: options, rendering, exit codes. It decides nothing itself.

Exit codes: 0 done, 1 failed, 2 bad input (what to fix is printed), 3 waiting for an operator.
Each command group lives in its own module and registers itself on ``main`` when imported.
"""

from orchestrator.cli import (  # noqa: F401  (registers the commands)
    backup_cmd,
    demo_cmd,
    drill_cmd,
    failover_cmd,
    incident_cmd,
    journal_cmd,
    lab_cmd,
    maintain_cmd,
    preflight_cmd,
    schedule_cmd,
)
from orchestrator.cli.base import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
