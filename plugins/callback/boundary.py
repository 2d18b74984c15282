# Copyright: SIMRS downtime automation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Park a playbook at a task boundary when the orchestrator asks it to stop (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: boundary
type: aggregate
short_description: Stops a playbook between two tasks when the orchestrator asks for it
description:
  - Before every task (and handler) starts, looks for the stop file named by the environment
    variable E(SIMRS_STOP_FILE). When it exists, writes the name of the task that was about to
    start into C(SIMRS_STOP_FILE.parked) and waits there, so that no worker has started that task
    when the orchestrator cancels the run. Without the variable, or without the file, it does
    nothing.
  - The orchestrator (C(simrs)) enables it for its own runs; it is not meant for other use.
requirements:
  - the orchestrator's gateway, which creates the stop file and cancels the parked run
"""

# How long a parked playbook waits for the orchestrator to end it; then it goes on (a stop file
# left behind by a dead orchestrator must not hang a run forever).
PARK_LIMIT_SECONDS = 120


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "simrs.downtime.boundary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stop_file = os.environ.get("SIMRS_STOP_FILE", "")

    def _boundary(self, what):
        if not self._stop_file or not os.path.exists(self._stop_file):
            return
        with open(self._stop_file + ".parked", "w") as handle:
            handle.write(what)
        deadline = time.monotonic() + PARK_LIMIT_SECONDS
        while os.path.exists(self._stop_file) and time.monotonic() < deadline:
            time.sleep(0.1)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._boundary(task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._boundary(task.get_name())

    def v2_playbook_on_play_start(self, play):
        self._boundary("play: " + play.get_name())
