"""The one gateway to Ansible: every playbook run and inventory read goes through here.

It builds the ``ansible_runner`` arguments in one place, streams events to a progress callback
(kept cheap), and returns a typed ``PlayResult``: the runner's status, each host's outcome
(ok, failed, unreachable) and the data the playbook published with ``set_stats`` under
``simrs_<playbook>``. Results are never read from stdout. Timeouts and runner errors become
failed results with an explanation, never exceptions the caller must guess at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from orchestrator import collection, interrupt, settings
from orchestrator import journal as journal_mod
from orchestrator.errors import InventoryError
from orchestrator.results import Collector, HostOutcome, PlayResult, Progress, short
from orchestrator.runs import end_members, process_start, run_members, scrub_run

__all__ = ["AnsibleGateway", "Gateway", "HostOutcome", "InventoryError", "Job", "PlayResult", "Progress"]

# A run's artifacts are for looking into a recent failure; they hold task output (patient units,
# host names), so only the newest few are kept.
KEEP_RUNS = 20
# Every run has a bound (a hung podman or SSH must never wait forever) and says it still runs.
DEFAULT_TIMEOUT_S = 900
HEARTBEAT_S = 15


class Gateway(Protocol):
    def run(
        self,
        playbook: str,
        *,
        limit: list[str] | None = None,
        extravars: dict[str, Any] | None = None,
        progress: Progress | None = None,
        timeout: int | None = None,
        check: bool = False,
    ) -> PlayResult: ...

    def start(
        self,
        playbook: str,
        *,
        limit: list[str] | None = None,
        extravars: dict[str, Any] | None = None,
        progress: Progress | None = None,
        timeout: int | None = None,
        check: bool = False,
        forks: int | None = None,
    ) -> Job: ...

    def run_parallel(self, runs: list[tuple[str, dict[str, Any]]]) -> list[PlayResult]: ...

    def inventory(self) -> dict[str, Any]: ...


class Job(Protocol):
    """A playbook running in the background (RunHandle)."""

    def done(self) -> bool: ...
    def wait(self) -> PlayResult: ...
    def cancel(self) -> None: ...


class AnsibleGateway:
    """Runs this project's playbooks against one inventory with ansible-runner."""

    def __init__(
        self,
        inventory: Path,
        runs_dir: Path,
        envvars: dict[str, str] | None = None,
        vault_password_file: Path | None = None,
    ) -> None:
        self.inventory_path = Path(inventory).resolve()
        self.runs_dir = runs_dir
        self.envvars = dict(envvars or {})
        self.vault_password_file = vault_password_file
        self.tag: str | None = None  # the incident the runs are for (the live-run registry)
        self.on_run: Callable[[str, dict[str, Any]], None] | None = None  # run_started / run_finished
        # ansible-runner looks up ansible-playbook/-inventory on this process's PATH: ours first.
        venv_bin = str(Path(sys.executable).parent)
        if os.environ.get("PATH", "").split(os.pathsep)[0] != venv_bin:
            os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
        if not self.inventory_path.exists():
            raise InventoryError(f"inventory {inventory} does not exist: pass -i PATH or set SIMRS_INVENTORY")

    @property
    def config(self) -> Path:
        """The ansible.cfg in force: the hospital's own beside its inventory (its vault password
        file, SSH and become settings), else the project's. The collection and its roles are found
        either way (the paths below are environment variables, which win over any ansible.cfg)."""
        folder = self.inventory_path if self.inventory_path.is_dir() else self.inventory_path.parent
        own = folder / "ansible.cfg"
        return own if own.is_file() else collection.locate().ansible_cfg

    def _env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        env = {
            # The collections path and the roles: the checkout's or the installed copy's.
            **collection.locate().env(),
            "ANSIBLE_CONFIG": str(self.config),
            # One state directory for the orchestrator and the roles it runs (the notify role's
            # record of delivered notices lives beside the journal, whatever HOME is).
            "SIMRS_STATE_DIR": str(settings.state_home()),
            # ansible-runner finds ansible-playbook on PATH: ours first.
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            **self.envvars,
        }
        if self.vault_password_file:
            env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(self.vault_password_file)
        return env

    def run(self, playbook: str, **kwargs: Any) -> PlayResult:
        """Run a playbook to its end (the options are start()'s)."""
        return self.start(playbook, **kwargs).wait()

    # -- the runs alive: a run outlives a killed orchestrator (ansible-playbook has its own
    # session), so whoever drives the same incident next waits for it (never two at once).

    @property
    def _folder_mode(self) -> int:
        return 0o2770 if journal_mod.shared(self.runs_dir.parent) else 0o700

    @property
    def live_dir(self) -> Path:
        return self.runs_dir / "live"

    def end_run(self, entry: dict[str, Any]) -> None:
        """End what is left of a run from the registry (its process group), and forget it."""
        end_members(str(Path(entry.get("private", "")) / "stop") if entry.get("private") else "")
        (self.live_dir / f"{int(entry.get('pid', 0))}.json").unlink(missing_ok=True)

    def live_runs(self, tag: str) -> list[dict[str, Any]]:
        """The runs made for ``tag`` (an incident id) whose ansible-playbook is still alive."""
        alive = []
        for path in sorted(self.live_dir.glob("*.json")) if self.live_dir.exists() else []:
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if entry.get("tag") != tag:
                continue
            if entry.get("private") and run_members(str(Path(entry["private"]) / "stop")):
                alive.append(entry)
            else:
                path.unlink(missing_ok=True)  # it ended (or its pid was reused): not a run any more
        return alive

    def start(
        self,
        playbook: str,
        *,
        limit: list[str] | None = None,
        extravars: dict[str, Any] | None = None,
        progress: Progress | None = None,
        timeout: int | None = None,
        check: bool = False,
        forks: int | None = None,
    ) -> RunHandle:
        """Start a playbook in the background (for branches that run in parallel). ``timeout``:
        its bound in seconds (default DEFAULT_TIMEOUT_S); the run is stopped there. ``forks``:
        hosts worked on at once (default: ansible.cfg's)."""
        import ansible_runner  # noqa: PLC0415 (slow import, only when something runs)

        timeout = timeout or DEFAULT_TIMEOUT_S

        playbooks = collection.locate().playbooks
        path = playbooks / f"{playbook}.yml"
        if not path.exists():
            raise FileNotFoundError(f"no playbook {path}")
        # Each run's folder is its operator's own (0700); in a site state shared through the group
        # simrs, the runs folder and the live-run registry are the group's, so that whoever drives
        # an incident next sees a run another operator left behind.
        self.runs_dir.mkdir(mode=self._folder_mode, parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # another operator's folder: already set
            self.runs_dir.chmod(self._folder_mode)
        self._prune_runs()
        private = Path(
            tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%dT%H%M%S')}-{playbook}-", dir=self.runs_dir)
        )
        collector = Collector(playbook, progress)
        started = time.monotonic()
        handle = RunHandle(playbook, collector, started, private, self, timeout)
        collector.on_pid = handle.record_pid
        env = {**self._env(), "SIMRS_STOP_FILE": str(handle.stop_file)}
        callbacks = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c]
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*callbacks, "simrs.downtime.boundary"])
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(private),
            project_dir=str(playbooks),
            playbook=str(path),
            inventory=str(self.inventory_path),
            limit=",".join(limit) if limit else None,
            extravars=extravars or {},
            envvars=env,
            event_handler=collector.event_handler,
            # Ours, always: otherwise ansible-runner installs its own SIGINT/SIGTERM handlers and
            # keeps them, and Ctrl-C between playbooks is ignored (orchestrator/interrupt.py).
            cancel_callback=handle.should_cancel,
            quiet=True,
            timeout=timeout,
            cmdline="--check" if check else None,
            forks=forks,
            # The cancel callback is asked each time the run prints or after this many seconds.
            settings={"suppress_ansible_output": True, "pexpect_timeout": 0.5},
        )
        handle.attach(thread, runner)
        return handle

    def run_parallel(self, runs: list[tuple[str, dict[str, Any]]]) -> list[PlayResult]:
        """Several playbooks at once (ansible-runner's async interface); results in the same order."""
        handles = [self.start(playbook, **kwargs) for playbook, kwargs in runs]
        return [handle.wait() for handle in handles]

    def _prune_runs(self, keep: int = KEEP_RUNS) -> None:
        """Keep the newest runs' artifacts (for looking into a failure), not every run forever; and
        scrub any ended run that was not scrubbed yet (its process died before wait())."""
        runs = sorted(
            (p for p in self.runs_dir.iterdir() if p.is_dir() and p != self.live_dir), key=lambda p: p.name
        )
        for old in runs[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for run in runs[-keep:]:
            if any(run.glob("artifacts/*/status")):  # written by ansible-runner when a run ends
                scrub_run(run)

    def inventory(self) -> dict[str, Any]:
        """The inventory as ansible-inventory --list sees it (groups, hosts, vars)."""
        from ansible_runner import interface  # noqa: PLC0415

        # The listing holds every variable, Vault's decrypted too, and ansible-runner keeps it (and
        # the environment) in its private folder: one of ours (0700), removed right after, not one
        # it would leave in /tmp.
        vault = {"vault_password_file": str(self.vault_password_file)} if self.vault_password_file else {}
        with tempfile.TemporaryDirectory(prefix="simrs-inventory-") as private:
            out, err = interface.get_inventory(
                action="list",
                inventories=[str(self.inventory_path)],
                response_format="json",
                envvars=self._env(),
                quiet=True,
                private_data_dir=private,
                **vault,
            )
        if not isinstance(out, dict) or not out:
            said = short(err or out, 500)
            if "vault" in said.lower() and ("no vault secrets" in said or "decrypt" in said.lower()):
                given = self.vault_password_file is not None
                raise InventoryError(
                    f"inventory {self.inventory_path} holds vault-encrypted secrets and "
                    + (
                        f"the vault password in {self.vault_password_file} does not open them"
                        if given
                        else "no vault password was given"
                    )
                    + ": pass --vault-password-file FILE (or set SIMRS_VAULT_PASSWORD_FILE), "
                    "or --ask-vault-pass"
                )
            raise InventoryError(f"cannot read inventory {self.inventory_path}: {said}")
        return out


class RunHandle:
    """One playbook run: wait for it, cancel it, or let it park at a task boundary on Ctrl-C."""

    def __init__(
        self,
        playbook: str,
        collector: Collector,
        started: float,
        private: Path,
        gateway: AnsibleGateway,
        timeout: int = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.playbook = playbook
        self.timeout = timeout
        self._collector = collector
        self._started = started
        self._private = private
        self._gateway = gateway
        self.stop_file = private / "stop"
        self._cancel = False
        # A run started after the stop was asked for is the stop's own (reading the hosts' state):
        # only a second Ctrl-C ends it.
        self._ignores_first_stop = interrupt.requested()
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._live: Path | None = None
        self.tag = gateway.tag

    def attach(self, thread: threading.Thread, runner: Any) -> None:
        self._thread, self._runner = thread, runner

    def record_pid(self, pid: int) -> None:
        """The run's ansible-playbook is known: note it (pid and start time) for whoever drives next."""
        entry = {
            "playbook": self.playbook,
            "pid": pid,
            "pid_start": process_start(pid),
            "tag": self.tag,
            "private": str(self._private),
            "since": time.strftime("%H:%M:%S"),
        }
        try:
            self._gateway.live_dir.mkdir(mode=self._gateway._folder_mode, parents=True, exist_ok=True)
            path = self._gateway.live_dir / f"{pid}.json"
            mode = 0o660 if self._gateway._folder_mode != 0o700 else 0o600
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as out:
                out.write(json.dumps(entry))
            self._live = path
        except OSError:
            pass
        if self._gateway.on_run is not None:
            self._gateway.on_run("run_started", entry)

    def should_cancel(self) -> bool:
        """ansible-runner asks this while the run goes on (about twice a second)."""
        if self._cancel or interrupt.forced():
            return True
        if not interrupt.requested() or self._ignores_first_stop:
            return False
        if not self.stop_file.exists():
            self.stop_file.touch()  # the boundary callback parks the run before its next task
        return self.parked_before is not None or interrupt.waited() > interrupt.GRACE_SECONDS

    @property
    def parked_before(self) -> str | None:
        """The task the run stopped before (None: not parked at a boundary)."""
        try:
            return (self.stop_file.parent / "stop.parked").read_text() or "?"
        except OSError:
            return None

    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel = True

    def _finished(self) -> None:
        if self._live is not None:
            self._live.unlink(missing_ok=True)
            self._live = None
            if self._gateway.on_run is not None:
                self._gateway.on_run(
                    "run_finished",
                    {"playbook": self.playbook, "pid": self._collector.pid, "status": self._runner.status},
                )

    def wait(self) -> PlayResult:
        if self._thread is None:
            raise RuntimeError("wait() before the run was started")
        with interrupt.cooperating():  # Ctrl-C parks the run at its next task, then cancels it
            while self._thread.is_alive():
                self._thread.join(HEARTBEAT_S)
                if self._thread.is_alive() and self._collector.progress is not None:
                    took = time.monotonic() - self._started
                    task = self._collector.last_task or "starting"
                    self._collector.progress(
                        "running", "", f"{self.playbook}: {task} ({took:.0f} s of at most {self.timeout} s)"
                    )
        if self._runner.status in ("canceled", "timeout"):
            # ansible-runner killed ansible-playbook's process group; its workers lead sessions of
            # their own and would finish the task in flight unwatched: end them too.
            end_members(str(self.stop_file), grace=3.0)
        self._finished()
        scrub_run(Path(self._private))  # the events stay: they are read below when one was missed
        if self._runner.status == "canceled" and not self._cancel and interrupt.requested():
            parked = self.parked_before
            where = (
                f"{self.playbook} stopped before task {parked!r}"
                if parked is not None
                else f"{self.playbook} stopped during task {self._collector.last_task!r} (may be half done)"
            )
            raise interrupt.Interrupted(f"{interrupt.name()}: {where}", interrupt.signum())
        if not self._collector.saw_stats:
            # A live event was missed (seen under heavy load): rebuild from the events on disk.
            replay = Collector(self.playbook, None)
            for event in self._runner.events:
                replay.event_handler(event)
            if replay.saw_stats or len(replay.hosts) > len(self._collector.hosts):
                self._collector = replay
        status = self._runner.status or "error"
        rc = self._runner.rc if self._runner.rc is not None else -1
        published = self._collector.artifact_data.get(f"simrs_{self.playbook}", {})
        explanation = ""
        if status == "timeout":
            explanation = f"{self.playbook} did not finish within its time limit"
        elif status in ("error", "canceled"):
            explanation = f"{self.playbook} {status} (rc {rc}); see the run's artifacts in {self._private}"
        elif status == "failed":
            bad = [f"{o.name}: {o.message}" for o in self._collector.hosts.values() if not o.ok]
            explanation = "; ".join(bad)[:500] or f"{self.playbook} failed (rc {rc})"
        if not self._collector.saw_stats and status in ("successful", "failed"):
            explanation = (explanation + "; " if explanation else "") + (
                f"no results were received from the run (see {self._private})"
            )
        return PlayResult(
            playbook=self.playbook,
            status=status,
            rc=rc,
            hosts=dict(self._collector.hosts),
            data=published if isinstance(published, dict) else {},
            seconds=round(time.monotonic() - self._started, 2),
            explanation=explanation,
            complete=self._collector.saw_stats,
            published=dict(self._collector.artifact_data),
            changed=dict(self._collector.changed),
        )


def parse_inventory(raw: dict[str, Any]) -> dict[str, Any]:
    """{'groups': {name: [hosts]}, 'hostvars': {host: vars}} from ansible-inventory JSON."""
    hostvars = raw.get("_meta", {}).get("hostvars", {})
    groups: dict[str, list[str]] = {}

    def walk(group: str) -> list[str]:
        node = raw.get(group, {})
        members = list(node.get("hosts", []))
        for child in node.get("children", []):
            members += walk(child)
        return members

    for group in raw:
        if group != "_meta":
            groups[group] = sorted(set(walk(group)))
    return {"groups": groups, "hostvars": hostvars}


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
