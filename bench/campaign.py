"""The randomised fault campaign (issue 17.10; Pacemaker's CTS as the model) against the lab.

Usage (root, after scripts/setup, under the lab lock; every round starts from a fresh lab):
    flock /work/lab.lock .venv/bin/python bench/campaign.py --seed 7 --rounds 5
    .venv/bin/python bench/campaign.py --seed 7 --round 4          # one round again, exactly
    .venv/bin/python bench/campaign.py --replay 'failover:primary-off@restore:ctrl_c:manual,auto,no-prestage'
    .venv/bin/python bench/campaign.py --seed 7 --rounds 30 --list  # the plan only, no lab

What each round is (its fault, moment and operator action) is drawn by the pure
orchestrator.lab.campaign.plan_round(seed, k); what must hold afterwards is decided by its pure
check() over what this script observed: a poller thread asks, from a client PC inside the lab
network, who answers ARP for the service IP (arping, each sample waited for), the PCs' own SIMRS
client at the end, the desk's workload record against the restored data, the journal replayed
against the hosts, the standby's power and its databases. One table row per round; a failing round
prints its seed, round and sequence. Exit 1 when any round failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator import procedure  # noqa: E402
from orchestrator.journal import Journal  # noqa: E402
from orchestrator.lab import campaign  # noqa: E402
from orchestrator.lab.campaign import Observation, Round  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))
MAC = re.compile(r"\[([0-9A-Fa-f:]{17})\]")
SERVICE_IP = "198.18.0.10"
ENDED = ("RESOLVED", "CLOSED", "RUNNING_ON_STANDBY")
ROUND_LIMIT_S = 1200  # a round that takes longer than this is stuck, and fails


def log(msg: str) -> None:
    print(f"    {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def simrs(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [SIMRS, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False, cwd=REPO
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout} s")


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", "timed out")


class ArpPoller:
    """Who answers ARP for the service IP, seen from a client PC inside the lab's network; one
    sample after another, each waited for (2 requests, 3 s at most)."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.samples: list[list[str]] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        script = f"arping -c 2 -w 3 -I eth0 {SERVICE_IP} || true"
        while not self._stop.is_set():
            res = podman("exec", self.client, "sh", "-c", script, timeout=20)
            if res.returncode == 0:
                self.samples.append(sorted({m.lower() for m in MAC.findall(res.stdout)}))
            else:
                self.failed += 1
                self._stop.wait(1)

    def __enter__(self) -> ArpPoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class RoundRun:
    def __init__(self, rnd: Round) -> None:
        self.rnd = rnd
        self.home = Path(tempfile.mkdtemp(prefix="simrs-campaign-"))
        self.env = {**os.environ, "SIMRS_HOME": str(self.home)}
        self.obs = Observation()
        self.proc: subprocess.Popen | None = None
        self.out = ""
        self.err = ""
        self.healed: set[str] = set()
        self.ship: tuple[float, float] | None = None
        self.outage_at: float | None = None
        self.returned_block = False
        self.returned_at: float | None = None
        self.began = time.monotonic()

    # -- the lab and the journal --

    @property
    def journal(self) -> Journal:
        return Journal(self.home / "journal.sqlite")

    def incidents(self) -> list[str]:
        if not (self.home / "journal.sqlite").exists():
            return []
        return list(self.journal.incidents())

    def incident(self) -> procedure.Incident | None:
        ids = self.incidents()
        if not ids:
            return None
        return procedure.replay(ids[-1], self.journal.events(ids[-1]))

    def events(self) -> list:
        ids = self.incidents()
        return list(self.journal.events(ids[-1])) if ids else []

    def must(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        res = simrs(*args, env=self.env, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"simrs {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()[-600:]}")
        return res

    def brk(self, fault: campaign.Fault) -> None:
        args = ["lab", "break", fault.name]
        if fault.host:
            args += [fault.host, "--mode", fault.mode or "route"]
        self.must(*args, timeout=300)
        log(f"broke {fault.encode()}")

    def heal(self, fault: campaign.Fault) -> subprocess.CompletedProcess:
        args = ["lab", "heal", fault.name] + ([fault.host] if fault.host else [])
        res = simrs(*args, env=self.env, timeout=400)
        self.healed.add(fault.encode())
        log(f"healed {fault.encode()}: exit {res.returncode}")
        return res

    # -- the round --

    def start(self, *args: str) -> None:
        log(f"simrs {' '.join(args)}")
        self.proc = subprocess.Popen(
            [SIMRS, *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def command(self) -> tuple[str, ...]:
        r = self.rnd
        if r.kind == "drill":
            return ("drill", "--json")
        if r.kind == "backup":
            return ("backup", "run", "--json")
        if r.entry == "manual":
            return ("failover", "--reason", "campaign: the main server is lost", "--yes", "--json")
        reporter = r.first.host if r.first and r.first.host else "kasir-01"
        window = {"client": "1m", "repair": "3m", "failover": "20s"}[r.kind]
        args = ["incident", "open", "--reporter", reporter, "--window", window, "--policy", r.policy]
        if not r.prestage:
            args.append("--no-prestage")
        return (*args, "--json")

    def moment_reached(self) -> bool:
        m = self.rnd.moment
        for e in self.events():
            d = e.data
            if m == "prestage" and e.kind == "prestage_started":
                return True
            if e.kind != "action_started":
                continue
            if m == "triage" and d.get("action") == "triage":
                return True
            if m == "repair_window" and d.get("action") == "server_repair":
                return True
            if m in campaign.FAILOVER_MOMENTS and (
                (d.get("action") == "failover_step" and d.get("event") == m)
                or (d.get("action") == "failover_takeover")
            ):
                return True
        return False

    def wait_moment(self) -> bool:
        assert self.proc is not None
        if self.rnd.moment in ("drill", "backup"):
            time.sleep(4)  # well inside the run (a drill ~40 s, a backup ~10 s in the lab)
            return self.proc.poll() is None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # Stopped for the approval (policy approve): the person approves; the moment may
                # come in that run.
                inc = self.incident()
                if inc is None or inc.phase != procedure.Phase.FAILOVER_PENDING:
                    return False
                self.out, self.err = self.proc.communicate()
                self.start("incident", "approve", inc.id, "--json")
            if self.moment_reached():
                time.sleep(1.0)  # inside the step
                return self.proc.poll() is None
            time.sleep(0.2)
        return False

    def prepare(self) -> None:
        r = self.rnd
        if r.kind in ("repair", "failover", "drill"):
            self.must("backup", "run", "--json", timeout=900)
        if r.kind == "failover":
            self.must("lab", "workload", "start")
            time.sleep(3)
            began = time.time()
            self.must("backup", "ship-binlogs", timeout=600)
            self.ship = (began, time.time())
            time.sleep(2)

    def act(self) -> None:
        r, proc = self.rnd, self.proc
        assert proc is not None
        if r.second:
            self.brk(r.second)
        if r.action == "ctrl_c":
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            took = time.monotonic() - sent
            self.out, self.err = out, err
            ids = self.incidents()
            journaled = any(e.kind == "interrupted" for e in self.events())
            self.obs.ctrl_c = {
                "rc": proc.returncode,
                "seconds": took,
                "interrupted_journaled": journaled,
                "says_resume": bool(ids) and f"simrs incident resume {ids[-1]}" in err,
                "where": next(
                    (e.data.get("where") for e in reversed(self.events()) if e.kind == "interrupted"), None
                ),
            }
            log(f"Ctrl-C: exit {proc.returncode} after {took:.1f} s; where: {self.obs.ctrl_c['where']}")
        elif r.action == "sigkill":
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            log("SIGKILL")
        elif r.action == "second_operator":
            if r.entry == "manual":
                args: tuple[str, ...] = ("failover", "--reason", "campaign: a second operator", "--yes")
            else:
                args = ("incident", "open", "--reporter", "farmasi-01", "--window", "1m")
            res = simrs(*args, env=self.env, timeout=600)
            self.obs.second_operator = {"rc": res.returncode}
            log(f"second operator: exit {res.returncode}: {res.stderr.strip()[-160:]}")
        elif r.action == "guard":
            inc = self.incident()
            during = inc is not None and inc.phase == procedure.Phase.FAILOVER
            res = simrs("guard", "--json", env=self.env, timeout=600)
            self.obs.guard = {"rc": res.returncode, "during_failover": during}
            log(f"guard (during a failover: {during}): exit {res.returncode}")
        elif r.action == "primary_returns":
            self.heal(campaign.Fault("primary-off"))
            self.returned_at = time.time()

    def finish(self) -> None:  # noqa: PLR0912
        """Drive the round to its end as an operator would: wait, heal what blocks, decide, resume."""
        r = self.rnd
        if self.proc is not None and self.proc.returncode is None:
            try:
                out, err = self.proc.communicate(timeout=ROUND_LIMIT_S)
                self.out, self.err = out, err
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                self.obs.notes.append("the command hung")
                return
        rc = self.proc.returncode if self.proc else None
        if r.kind in ("drill", "backup"):
            for fault in r.faults:
                if fault.encode() not in self.healed:
                    self.heal(fault)
            again = simrs(*self.command(), env=self.env, timeout=900)
            if r.kind == "backup":
                self.obs.backup_after_ok = again.returncode == 0
                if again.returncode != 0:
                    self.obs.notes.append(f"backup after the round: exit {again.returncode}")
            elif again.returncode != 0:
                self.obs.notes.append(f"drill again: exit {again.returncode}: {again.stderr.strip()[-200:]}")
            self.obs.ended = again.returncode == 0
            return
        for turn in range(8):
            if time.monotonic() - self.began > ROUND_LIMIT_S:
                self.obs.notes.append("over the round's time limit")
                return
            inc = self.incident()
            if inc is None:
                self.obs.notes.append(f"no incident was opened (exit {rc}): {self.err.strip()[-200:]}")
                return
            if inc.phase.value in ENDED:
                self.obs.ended = True
                return
            iid = inc.id
            blocked = inc.failover_blocked or {}
            if (
                r.second
                and r.second.encode() not in self.healed
                and (blocked or inc.phase == procedure.Phase.ESCALATED or turn > 0)
            ):
                self.heal(r.second)
            if blocked.get("returned"):
                self.returned_block = True
                if r.choice == "cancel_failover":
                    res = simrs(
                        "incident",
                        "cancel-failover",
                        iid,
                        "--reason",
                        "campaign: the main server is back",
                        env=self.env,
                        timeout=900,
                    )
                else:
                    res = simrs(
                        "incident",
                        "failover-now",
                        iid,
                        "--fence-again",
                        "--reason",
                        "campaign: it must not serve",
                        env=self.env,
                        timeout=900,
                    )
                log(f"{r.choice}: exit {res.returncode}")
                if res.returncode == 0 and self.incident() and self.incident().phase.value in ENDED:
                    continue
            if inc.phase == procedure.Phase.FAILOVER_PENDING:
                res = simrs("incident", "approve", iid, "--json", env=self.env, timeout=1200)
                log(f"approve: exit {res.returncode}")
            else:
                res = simrs("incident", "resume", iid, "--json", env=self.env, timeout=1200)
                log(f"resume: exit {res.returncode}")
            rc = res.returncode
            self.err = res.stderr

    def observe(self) -> None:
        r, obs = self.rnd, self.obs
        status = json.loads(self.must("lab", "status", "--json", timeout=300).stdout)
        obs.owners_end = status["service_ip_owners"]
        obs.clients_end = {
            h["name"]: {"reaches": h.get("reaches_simrs"), "served_by": h.get("served_by")}
            for h in status["hosts"]
            if h["role"] == "client"
        }
        standby = next(h for h in status["hosts"] if h["name"] == "simrs-standby")
        obs.standby_running = standby["state"] == "running"
        if obs.standby_running:
            dbs = podman("exec", "simrs-standby", "mariadb", "-N", "-e", "SHOW DATABASES").stdout.split()
            obs.restore_leftovers = [d for d in dbs if "__restore" in d]
        obs.incidents = self.incidents()
        inc = self.incident()
        if inc is not None:
            obs.journal_phase = inc.phase.value
            on_standby = (
                "ip_takeover" in inc.failover_done and not inc.failed_back and not inc.failover_canceled
            )
            obs.journal_server = "simrs-standby" if on_standby else "simrs-primary"
        if r.action == "primary_returns" and r.kind == "failover" and not self.returned_block:
            fenced = any(
                e.kind == "action_started" and e.data.get("action") in ("failover_step", "failover_takeover")
                for e in self.events()
            )
            if self.returned_at is not None and not fenced:
                obs.ends_on = "simrs-primary"  # back before the failover began: the repair wins
                obs.notes.append("the primary returned before the failover: the repair window ends it")
            else:
                obs.ends_on = "simrs-standby"  # the failover went on: it fenced the returned primary
                obs.notes.append(
                    "the primary returned, no step saw it answer for the service IP (no choice was "
                    "asked): the failover fenced it and ended on the standby"
                )
        if r.kind == "failover" and inc is not None and obs.journal_server == "simrs-standby":
            self.rpo(inc)

    def rpo(self, inc: procedure.Incident) -> None:
        with contextlib.suppress(Exception):
            simrs("lab", "workload", "stop", env=self.env, timeout=60)
        res = podman("exec", "pendaftaran-01", "cat", "/var/lib/simrs-workload/record.jsonl")
        record = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
        restored = inc.restored
        last = (restored.get("last_visit") or {}).get("no_rawat")
        if last is None or self.outage_at is None:
            self.obs.notes.append("no restored last visit to check the RPO against")
            return
        committed = [x for x in record if "no_rawat" in x and x.get("server") == "simrs-primary"]
        before = [x for x in committed if x["t"] < self.outage_at]
        self.obs.rpo = {
            "lost": [x["t"] for x in before if x["no_rawat"] > last],
            "outage_at": self.outage_at,
            "shipped": self.ship[0] if self.ship else None,
            "reported": restored.get("rpo_seconds"),
        }

    def run(self) -> Observation:
        r = self.rnd
        self.prepare()
        used = {f.host for f in r.faults if f.host}
        poller_client = next(c for c in reversed(campaign.CLIENTS) if c not in used)
        with ArpPoller(poller_client) as poller:
            if r.first:
                self.brk(r.first)
                if r.first.name == "primary-off":
                    self.outage_at = time.time()
            self.start(*self.command())
            if self.wait_moment():
                self.act()
            else:
                self.obs.notes.append(f"moment {r.moment} not reached: the action was not taken")
                log(f"moment {r.moment} not reached")
            self.finish()
            time.sleep(2)  # a last few samples after the end
            self.observe()
        self.obs.arp_samples = poller.samples
        if poller.failed:
            self.obs.notes.append(f"{poller.failed} ARP samples failed to run")
        with contextlib.suppress(Exception):
            simrs("lab", "workload", "stop", env=self.env, timeout=60)
        return self.obs


def fresh_lab() -> None:
    simrs("lab", "down", timeout=600)
    res = simrs("lab", "up", timeout=1800)
    if res.returncode != 0:
        raise SystemExit(f"lab up failed:\n{res.stderr[-2000:]}")


COLUMNS = ("round", "sec", "samples", "lost s/RPO s", *campaign.INVARIANTS, "result", "sequence")


def row(
    k: object, seconds: float, obs: Observation, results: dict[str, str | None], ok: bool, seq: str
) -> str:
    marks = ["ok" if results[i] is None else "FAIL" for i in campaign.INVARIANTS]
    loss = "-"
    if obs.rpo:
        lost = obs.rpo["lost"]
        true = obs.rpo["outage_at"] - min(lost) if lost else 0.0
        loss = f"{true:.0f}/{obs.rpo['reported'] or 0:.0f}"
    cells = [str(k), f"{seconds:.0f}", str(len(obs.arp_samples)), loss, *marks, "pass" if ok else "FAIL", seq]
    return " | ".join(cells)


def run_one(k: object, rnd: Round, seed: int | None) -> bool:
    began = time.monotonic()
    fresh_lab()
    run = RoundRun(rnd)
    try:
        obs = run.run()
        results = campaign.check(rnd, obs)
    except Exception as exc:  # the bench itself failed: the round fails, with the reason
        obs = run.obs
        results = dict.fromkeys(campaign.INVARIANTS)
        results["operator"] = f"the round could not run: {type(exc).__name__}: {exc}"
    ok = campaign.verdict(results)
    print(row(k, time.monotonic() - began, obs, results, ok, rnd.encode()), flush=True)
    if not ok or obs.notes:
        for name, why in results.items():
            if why:
                print(f"      {name}: {why}", flush=True)
        for note in obs.notes:
            print(f"      note: {note}", flush=True)
    if not ok:
        again = f"--seed {seed} --round {k}" if seed is not None else ""
        print(
            f"      FAILED: replay with `bench/campaign.py {again}` or --replay '{rnd.encode()}'", flush=True
        )
        print(f"      journal kept in {run.home}", flush=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--first", type=int, default=1, help="the first round's number (chunks of one seed)")
    parser.add_argument("--round", type=int, help="only this round of the seed")
    parser.add_argument(
        "--replay",
        action="append",
        help="a round from its sequence (as a failing round printed it), repeatable",
    )
    parser.add_argument("--list", action="store_true", help="print the plan only; the lab is not touched")
    args = parser.parse_args()
    if args.replay:
        try:
            todo = [(f"r{i}", Round.decode(seq)) for i, seq in enumerate(args.replay, 1)]
        except ValueError as exc:
            parser.error(str(exc))
        seed = None
    else:
        if args.rounds < 1 or args.first < 1:
            parser.error("--rounds and --first: at least 1")
        todo = (
            campaign.plan(args.seed, 1, args.round)
            if args.round
            else campaign.plan(args.seed, args.rounds, args.first)
        )
        seed = args.seed
    if args.list:
        for k, rnd in todo:
            print(f"{k}: {rnd.encode()}")
        return
    print(
        f"campaign seed {seed}, {len(todo)} rounds; started {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(" | ".join(COLUMNS), flush=True)
    began = time.monotonic()
    failed = [k for k, rnd in todo if not run_one(k, rnd, seed)]
    simrs("lab", "down", timeout=600)
    print(
        f"{len(todo) - len(failed)}/{len(todo)} rounds passed in {time.monotonic() - began:.0f} s; "
        f"load {os.getloadavg()[0]:.1f}" + (f"; failed: {failed}" if failed else ""),
        flush=True,
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
