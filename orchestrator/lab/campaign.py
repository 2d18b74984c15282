"""The randomised fault campaign's decisions, as pure functions (bench/campaign.py runs them).

Pacemaker's CTS is the model: each round is a short story drawn from the seed: which scenario,
which lab faults (one, sometimes two), at which moment the second thing happens, and what the
operator does then. ``plan_round(seed, k)`` is all the randomness there is, so a round replays
exactly from ``--seed N --round K``, or from its written sequence (``Round.encode`` / ``decode``).
``check`` turns what the bench observed in the lab into the invariants' verdicts. No I/O here.

A round's sequence reads ``kind:faults@moment:action[:choice]``, e.g.
``failover:primary-off+disk-missing@restore:ctrl_c`` or ``client:client-net=kasir-01/dns@triage:guard``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# What the round exercises; the faults that can start it; the moments at which its second fault
# and the operator's action land; the operator's actions that make sense there.
KINDS = ("client", "repair", "failover", "drill", "backup")
FAILOVER_MOMENTS = ("fence", "power_on", "restore", "ip_takeover", "start", "verify")
MOMENTS = {
    "client": ("triage",),
    "repair": ("triage", "repair_window", "prestage"),
    "failover": ("triage", "repair_window", "prestage", *FAILOVER_MOMENTS),
    "drill": ("drill",),
    "backup": ("backup",),
}
ACTIONS = ("none", "resume", "approve", "ctrl_c", "sigkill", "second_operator", "guard", "primary_returns")
ACTIONS_FOR = {
    "client": ("none", "ctrl_c", "sigkill", "second_operator", "guard"),
    "repair": ("none", "ctrl_c", "sigkill", "second_operator", "guard"),
    "failover": ("resume", "approve", "ctrl_c", "sigkill", "second_operator", "guard", "primary_returns"),
    "drill": ("none", "ctrl_c", "sigkill", "guard"),
    "backup": ("none", "ctrl_c", "sigkill"),
}
# The kinds by weight: the failover is the story that matters most (and the slowest).
KIND_WEIGHTS = {"client": 2, "repair": 2, "failover": 4, "drill": 1, "backup": 1}
# A second fault that the SOP must get past (healed by the operator when the incident stops on it).
SECOND_FAULTS = {
    "client": ("client-net",),
    "repair": ("client-net", "disk-missing"),
    "failover": ("disk-missing", "standby-dead", "client-net"),
    "drill": ("disk-missing",),
    "backup": ("disk-missing",),
}
CLIENTS = ("kasir-01", "pendaftaran-01", "farmasi-01")
CLIENT_NET_MODES = ("route", "dns", "address")
# Where the primary returns during a failover, a person chooses (issue 17.6).
RETURN_CHOICES = ("cancel_failover", "fence_again")
SECOND_FAULT_CHANCE = 0.35
# The RPO the hospital declared: binlogs are shipped every 5 minutes (inventory: binlog_ship */5).
DECLARED_RPO_S = 300.0
CTRL_C_LIMIT_S = 10.0


@dataclass(frozen=True)
class Fault:
    name: str
    host: str | None = None
    mode: str | None = None

    def encode(self) -> str:
        if self.host is None:
            return self.name
        return f"{self.name}={self.host}/{self.mode or 'route'}"

    @staticmethod
    def decode(text: str) -> Fault:
        name, _, target = text.partition("=")
        if not target:
            return Fault(name)
        host, _, mode = target.partition("/")
        return Fault(name, host, mode or "route")


@dataclass(frozen=True)
class Round:
    kind: str
    faults: tuple[Fault, ...]
    moment: str
    action: str
    choice: str | None = None  # the person's choice when the primary returns
    # How the round is driven: a manual `simrs failover` or an incident (open, window, policy).
    entry: str = "incident"  # incident | manual
    policy: str = "auto"  # auto | approve
    prestage: bool = True

    def encode(self) -> str:
        head = f"{self.kind}:{'+'.join(f.encode() for f in self.faults) or '-'}@{self.moment}:{self.action}"
        opts = [self.entry, self.policy, "prestage" if self.prestage else "no-prestage"]
        if self.choice:
            opts.append(self.choice)
        return f"{head}:{','.join(opts)}"

    @staticmethod
    def decode(text: str) -> Round:
        """The inverse of encode; a bad sequence is a ValueError naming what is wrong."""
        try:
            kind, rest = text.split(":", 1)
            faults_s, rest = rest.split("@", 1)
            moment, action, *tail = rest.split(":")
        except ValueError:
            raise ValueError(f"not a round sequence: {text!r} (kind:faults@moment:action:options)") from None
        opts = tail[0].split(",") if tail else []
        faults = tuple(Fault.decode(f) for f in faults_s.split("+") if f and f != "-")
        choice = next((o for o in opts if o in RETURN_CHOICES), None)
        rnd = Round(
            kind=kind,
            faults=faults,
            moment=moment,
            action=action,
            choice=choice,
            entry="manual" if "manual" in opts else "incident",
            policy="approve" if "approve" in opts else "auto",
            prestage="no-prestage" not in opts,
        )
        problems = validate(rnd)
        if problems:
            raise ValueError(f"{text!r}: {'; '.join(problems)}")
        return rnd

    @property
    def first(self) -> Fault | None:
        return self.faults[0] if self.faults else None

    @property
    def second(self) -> Fault | None:
        return self.faults[1] if len(self.faults) > 1 else None

    @property
    def ends_on(self) -> str:
        """The server that must serve every PC when the round's incident ends."""
        if self.kind == "failover" and self.choice != "cancel_failover":
            return "simrs-standby"
        return "simrs-primary"


def validate(rnd: Round) -> list[str]:
    problems = []
    if rnd.kind not in KINDS:
        problems.append(f"kind {rnd.kind!r} is not one of {', '.join(KINDS)}")
        return problems
    if rnd.moment not in MOMENTS[rnd.kind]:
        problems.append(f"moment {rnd.moment!r} is not one of {', '.join(MOMENTS[rnd.kind])}")
    if rnd.action not in ACTIONS_FOR[rnd.kind]:
        problems.append(f"action {rnd.action!r} is not one of {', '.join(ACTIONS_FOR[rnd.kind])}")
    if rnd.action == "primary_returns" and rnd.choice not in RETURN_CHOICES:
        problems.append(f"primary_returns needs a choice: {' or '.join(RETURN_CHOICES)}")
    for f in rnd.faults:
        if f.name == "client-net" and (f.host not in CLIENTS or f.mode not in CLIENT_NET_MODES):
            problems.append(f"client-net needs a client ({', '.join(CLIENTS)}) and a mode")
    return problems


def first_faults(kind: str) -> tuple[str, ...]:
    return {
        "client": ("client-net",),
        "repair": ("db-crash", "disk-full"),
        "failover": ("primary-off",),
        "drill": (),
        "backup": (),
    }[kind]


def _fault(rng: random.Random, name: str, taken: Iterable[Fault] = ()) -> Fault:
    if name != "client-net":
        return Fault(name)
    used = {f.host for f in taken}
    host = rng.choice([c for c in CLIENTS if c not in used])
    return Fault(name, host, rng.choice(CLIENT_NET_MODES))


def plan_round(seed: int, index: int) -> Round:
    """Round ``index`` (1-based) of the campaign ``seed``: the same round on every machine."""
    rng = random.Random(f"simrs-campaign:{seed}:{index}")  # noqa: S311 (a plan, not a secret)
    kinds = list(KIND_WEIGHTS)
    kind = rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
    faults: list[Fault] = [_fault(rng, name) for name in first_faults(kind)[:1]]
    if kind == "repair":
        faults = [Fault(rng.choice(first_faults(kind)))]
    action = rng.choice(ACTIONS_FOR[kind])
    moment = rng.choice(MOMENTS[kind])
    entry, policy, prestage = "incident", "auto", True
    if kind == "failover":
        if moment in FAILOVER_MOMENTS and rng.random() < 0.5:
            entry = "manual"  # `simrs failover --yes`: straight to the steps
        policy = "approve" if action == "approve" else rng.choice(("auto", "approve"))
        # One step at a time when the moment is a step (a pre-staged takeover runs them as one).
        prestage = moment in ("prestage", "repair_window") or (
            moment not in FAILOVER_MOMENTS and rng.random() < 0.5
        )
        if moment == "prestage":
            prestage = True
        if entry == "manual" and action == "approve":
            action = "resume"
    elif kind == "repair":
        prestage = moment == "prestage" or rng.random() < 0.5
        policy = "approve"  # the repair must win: no failover in a repair round
    if rng.random() < SECOND_FAULT_CHANCE:
        name = rng.choice(SECOND_FAULTS[kind])
        faults.append(_fault(rng, name, faults))
    choice = rng.choice(RETURN_CHOICES) if action == "primary_returns" else None
    rnd = Round(kind, tuple(faults), moment, action, choice, entry, policy, prestage)
    problems = validate(rnd)
    if problems:  # a planning bug, not a lab result
        raise AssertionError(f"plan_round({seed}, {index}) drew an invalid round: {problems}")
    return rnd


def plan(seed: int, rounds: int, first: int = 1) -> list[tuple[int, Round]]:
    return [(k, plan_round(seed, k)) for k in range(first, first + rounds)]


# ---- the invariants, over what the bench observed -----------------------------------------------


@dataclass
class Observation:
    """What the bench saw in one round (filled by bench/campaign.py; plain data)."""

    arp_samples: list[list[str]] = field(default_factory=list)  # per sample: the MACs that answered
    owners_end: list[str] = field(default_factory=list)  # who holds the service IP (addresses)
    clients_end: dict[str, dict] = field(default_factory=dict)  # name -> {reaches, served_by}
    standby_running: bool = False
    restore_leftovers: list[str] = field(default_factory=list)  # databases named *__restore*
    incidents: list[str] = field(default_factory=list)  # the journal's incidents after the round
    journal_phase: str | None = None  # the round's incident, replayed
    journal_server: str | None = None  # who serves, by the journal (primary | standby)
    ended: bool = False  # the runner drove the round to its end (no step left hanging)
    ends_on: str | None = None  # who must serve, when the run decided it (the primary returned late)
    ctrl_c: dict[str, Any] | None = None  # {rc, seconds, interrupted_journaled, says_resume}
    second_operator: dict[str, Any] | None = None  # {rc}
    guard: dict[str, Any] | None = None  # {rc, during_failover}
    rpo: dict[str, Any] | None = None  # {lost: [t...], kept_last_t, outage_at, shipped, reported}
    backup_after_ok: bool | None = None  # backup rounds: a backup after the round succeeds
    notes: list[str] = field(default_factory=list)


INVARIANTS = (
    "one_owner",
    "pcs_served",
    "rpo",
    "journal_matches",
    "standby_cold",
    "no_half_restore",
    "operator",
)


def check(rnd: Round, obs: Observation) -> dict[str, str | None]:
    """Each invariant -> None when it holds (or does not apply), else what broke."""
    return {
        "one_owner": one_owner(obs),
        "pcs_served": pcs_served(rnd, obs),
        "rpo": rpo_within(obs),
        "journal_matches": journal_matches(rnd, obs),
        "standby_cold": standby_cold(obs),
        "no_half_restore": None
        if not obs.restore_leftovers
        else f"left on the standby: {obs.restore_leftovers}",
        "operator": operator(rnd, obs),
    }


def one_owner(obs: Observation) -> str | None:
    if not obs.arp_samples:
        return "the ARP poller took no sample"
    two = [s for s in obs.arp_samples if len(set(s)) > 1]
    if two:
        return f"{len(two)} of {len(obs.arp_samples)} samples had two owners: {sorted(set(two[0]))}"
    if len(obs.owners_end) > 1:
        return f"the service IP is on {', '.join(obs.owners_end)} at the end"
    return None


def pcs_served(rnd: Round, obs: Observation) -> str | None:
    if not obs.clients_end:
        return "no client PC was probed at the end"
    bad = {
        name: c.get("served_by") if c.get("reaches") else "unreachable"
        for name, c in obs.clients_end.items()
        if not c.get("reaches") or c.get("served_by") != (obs.ends_on or rnd.ends_on)
    }
    if bad:
        return f"not served by {obs.ends_on or rnd.ends_on}: {bad}"
    return None


def rpo_within(obs: Observation, declared: float = DECLARED_RPO_S) -> str | None:
    """No committed visit lost beyond the declared RPO; nothing shipped lost; the reported RPO an
    upper bound of the true loss (2.5 s: the desk's clock steps and the probes' seconds)."""
    r = obs.rpo
    if not r:
        return None
    lost: Sequence[float] = r.get("lost") or []
    if not lost:
        return None
    true_loss = r["outage_at"] - min(lost)
    if true_loss > declared:
        return f"{len(lost)} visits lost over {true_loss:.0f} s, beyond the declared RPO {declared:.0f} s"
    shipped = r.get("shipped")
    if shipped is not None and min(lost) < shipped - 1.5:
        return f"a visit committed at {min(lost):.1f} was shipped (ship began {shipped:.1f}) and lost"
    reported = r.get("reported")
    if reported is not None and reported < true_loss - 2.5:
        return f"reported RPO {reported:.1f} s is below the true loss {true_loss:.1f} s"
    return None


def journal_matches(rnd: Round, obs: Observation) -> str | None:  # noqa: PLR0911
    if rnd.kind in ("drill", "backup"):
        if obs.incidents:
            return f"a {rnd.kind} opened incidents: {obs.incidents}"
        return None if obs.ended else f"the {rnd.kind} run after the round did not succeed"
    if not obs.ended:
        return f"the round did not end (journal: {obs.journal_phase})"
    if len(obs.incidents) != 1:
        return f"the journal holds {len(obs.incidents)} incidents, not one: {obs.incidents}"
    if obs.journal_phase not in ("RESOLVED", "CLOSED", "RUNNING_ON_STANDBY"):
        return f"the incident ended in {obs.journal_phase}"
    ends_on = obs.ends_on or rnd.ends_on
    if obs.journal_server != ends_on:
        return f"the journal says {obs.journal_server} serves, the round must end on {ends_on}"
    if obs.owners_end != [obs.journal_server]:
        return f"the journal says {obs.journal_server}, the hosts show {obs.owners_end or 'nobody'}"
    return None


def standby_cold(obs: Observation) -> str | None:
    if obs.standby_running and obs.owners_end != ["simrs-standby"]:
        return "the standby is on but does not serve"
    return None


def operator(rnd: Round, obs: Observation) -> str | None:  # noqa: PLR0911
    """The operator's action met the promised behaviour (Ctrl-C: exit 130 within 10 s, the journal
    says where, the words name the resume; a second operator is refused; the guard refuses during a
    failover and otherwise changes nothing that serves)."""
    if obs.ctrl_c:
        c = obs.ctrl_c
        if c.get("rc") != 130:
            return f"Ctrl-C: exit {c.get('rc')}, not 130"
        if c["seconds"] > CTRL_C_LIMIT_S:
            return f"Ctrl-C: exit after {c['seconds']:.1f} s (limit {CTRL_C_LIMIT_S:.0f})"
        if rnd.kind not in ("drill", "backup"):
            if not c.get("interrupted_journaled"):
                return "Ctrl-C: the journal does not say where it stopped"
            if not c.get("says_resume"):
                return "Ctrl-C: the words do not name `simrs incident resume ID`"
    if obs.second_operator and obs.second_operator.get("rc") == 0:
        return "a second operator's command was not refused"
    if obs.guard:
        g = obs.guard
        if g.get("during_failover") and g.get("rc") == 0:
            return "the guard acted during a failover"
    return None


def verdict(results: dict[str, str | None]) -> bool:
    return all(v is None for v in results.values())
