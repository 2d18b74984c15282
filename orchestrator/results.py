"""What one playbook run gives back: each host's outcome, the data the playbook published with
``set_stats`` (under ``simrs_<playbook>``), and the collector that builds them from ansible-runner's
events as they arrive (progress passed on, kept cheap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[str, str, str], None]  # (kind, host, text): cheap, never blocks
HIDDEN_FAILURE = "failed (its output is hidden: no_log)"


@dataclass(frozen=True)
class HostOutcome:
    name: str
    ok: bool
    unreachable: bool = False
    failed_task: str | None = None
    message: str = ""
    failed_action: str = ""  # the module that failed, e.g. ansible.builtin.assert

    @property
    def misconfigured(self) -> bool:
        """Failed on a role's argument spec or preflight assert: the inventory needs fixing."""
        return self.failed_action.rsplit(".", 1)[-1] in ("assert", "validate_argument_spec")


@dataclass(frozen=True)
class PlayResult:
    playbook: str
    status: str  # successful | failed | timeout | canceled | error
    rc: int
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    explanation: str = ""
    complete: bool = True  # the run's final stats arrived: its results can be trusted as facts
    published: dict[str, Any] = field(default_factory=dict)  # every set_stats key (composed playbooks)
    changed: dict[str, int] = field(default_factory=dict)  # host -> tasks that changed something

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    def unreachable(self) -> list[str]:
        return sorted(h for h, o in self.hosts.items() if o.unreachable)

    def misconfigured(self) -> list[HostOutcome]:
        return [o for o in self.hosts.values() if o.misconfigured]


def short(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


class Collector:
    """Owns the runner callbacks: per-host outcomes, published data, progress."""

    def __init__(self, playbook: str, progress: Progress | None) -> None:
        self.playbook = playbook
        self.progress = progress
        self.hosts: dict[str, HostOutcome] = {}
        self.artifact_data: dict[str, Any] = {}
        self.saw_stats = False
        self.changed: dict[str, int] = {}
        self.errors: list[str] = []
        self.pid: int | None = None  # the ansible-playbook process (from the first event)
        self.on_pid: Callable[[int], None] | None = None
        self.last_task = ""
        self.after_hidden: set[str] = set()  # hosts whose first failure no_log hid

    def event_handler(self, event: dict[str, Any]) -> bool:
        """Cheap and never raising: an exception here would end ansible-runner's event stream."""
        try:
            self._take(event)
        except Exception as exc:  # a malformed event must not cost the run its results
            self.errors.append(f"{type(exc).__name__}: {exc}")
        return True  # keep the event on disk too: wait() re-reads them if a live one was missed

    def _take(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        host = data.get("host") or ""
        task = data.get("task") or ""
        if self.pid is None and isinstance(event.get("pid"), int):
            self.pid = event["pid"]
            if self.on_pid is not None:
                self.on_pid(self.pid)
        if kind == "playbook_on_task_start":
            self.last_task = task
        if kind == "playbook_on_stats":
            self.saw_stats = True
            self.artifact_data = data.get("artifact_data") or {}
            self.changed = dict(data.get("changed") or {})
        elif kind == "runner_on_unreachable":
            msg = short(res.get("msg", "unreachable"))
            self.hosts[host] = HostOutcome(host, False, True, task, msg)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            # The first failure names the cause (a role's assert stays a refusal, exit 2, even
            # when its rescue fails again to say so). A first failure that no_log hid gives way to
            # the failures after it that can be read, the last of them winning: the fence's
            # "fence not confirmed: <the BMC's message>" after a BMC call whose output was hidden.
            prev = self.hosts.get(host)
            hidden = "censored" in res
            first = not prev or prev.ok
            if first or (host in self.after_hidden and not hidden):
                msg = HIDDEN_FAILURE if hidden else short(res.get("msg", "failed"), 500)
                action = str(data.get("task_action") or "")
                self.hosts[host] = HostOutcome(host, False, False, task, msg, action)
                if first and hidden:
                    self.after_hidden.add(host)
        elif kind in ("runner_on_ok", "runner_on_skipped") and host not in self.hosts:
            self.hosts[host] = HostOutcome(host, True)
        if self.progress and kind in (
            "runner_on_ok",
            "runner_on_failed",
            "runner_on_unreachable",
            "playbook_on_task_start",
        ):
            self.progress(kind, host, task)
