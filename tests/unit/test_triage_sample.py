"""Triage that does not grow with the hospital: the sample, when it settles the verdict, and the
engine probing the sample first and sweeping the rest after the verdict (fake gateway)."""

from __future__ import annotations

import pytest

from orchestrator import triage
from orchestrator.ansible import HostOutcome, PlayResult
from orchestrator.engine import Engine
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from orchestrator.triage import ClientFact as C

UNITS = ("kasir", "pendaftaran", "farmasi", "poli")
CLIENTS = tuple(f"{u}-{i:02d}" for i in range(1, 6) for u in UNITS)  # 20 PCs, 4 units
UNIT_OF = {pc: pc.rsplit("-", 1)[0] for pc in CLIENTS}


def test_sample_is_the_reporter_and_a_few_per_unit():
    chosen = triage.sample(CLIENTS, UNIT_OF, "farmasi-04", per_unit=2)
    assert chosen[0] == "farmasi-04"
    assert sorted(chosen) == sorted(
        [
            "farmasi-04",
            "farmasi-01",
            "kasir-01",
            "kasir-02",
            "pendaftaran-01",
            "pendaftaran-02",
            "poli-01",
            "poli-02",
        ]
    )
    # The reporter counts for its unit: 2 farmasi PCs, not 3.
    assert sum(1 for pc in chosen if UNIT_OF[pc] == "farmasi") == 2


def test_sample_size_follows_the_units_not_the_pcs():
    big = tuple(f"{u}-{i:03d}" for i in range(1, 51) for u in UNITS)  # 200 PCs
    units = {pc: pc.rsplit("-", 1)[0] for pc in big}
    assert len(triage.sample(big, units, "kasir-017", 2)) == len(
        triage.sample(CLIENTS, UNIT_OF, "kasir-01", 2)
    )
    # A PC without a unit is its own unit: a small hospital without units probes every PC.
    assert triage.sample(("a", "b", "c"), {}, "b", 2) == ("b", "a", "c")
    with pytest.raises(ValueError, match="per_unit"):
        triage.sample(CLIENTS, UNIT_OF, "kasir-01", 0)


def test_rest_is_what_the_sample_left_in_inventory_order():
    chosen = triage.sample(CLIENTS, UNIT_OF, "kasir-01", 1)
    left = triage.rest(CLIENTS, chosen)
    assert set(left) | set(chosen) == set(CLIENTS)
    assert not set(left) & set(chosen)
    assert list(left) == [pc for pc in CLIENTS if pc in left]


def test_a_sample_of_answers_is_decisive_silent_pcs_are_not():
    reporter = C("kasir-01", False, failed_check="tcp_db")
    answered = [reporter, C("poli-01", True), C("farmasi-01", False, failed_check="tcp_db")]
    assert triage.decisive(answered, "kasir-01", total=20)
    silent = [reporter, C("poli-01", False, unreachable=True), C("farmasi-01", True)]
    assert not triage.decisive(silent, "kasir-01", total=20)
    # Everyone probed: decisive whatever they said.
    assert triage.decisive(silent, "kasir-01", total=3)
    # The reporter alone never settles it.
    assert not triage.decisive([reporter], "kasir-01", total=20)


# ---- the engine: sample first, verdict, sweep afterwards --------------------------------------


def probe(ok: bool) -> dict:
    check = None if ok else "tcp_db"
    return {
        "ok": ok,
        "failed_check": check,
        "checks": {check: {"ok": False, "detail": "refused"}} if check else {},
    }


class Job:
    def __init__(self, answer: PlayResult) -> None:
        self.answer, self.canceled = answer, False

    def done(self) -> bool:
        return True

    def wait(self) -> PlayResult:
        return self.answer

    def cancel(self) -> None:
        self.canceled = True


class Gateway:
    """Answers client_probe for the hosts it is limited to, from `health` (host -> ok, or
    'off' for a PC Ansible cannot reach); admin_check from `admin_ok`."""

    def __init__(self, health: dict[str, object], admin_ok: bool) -> None:
        self.health, self.admin_ok = health, admin_ok
        self.calls: list[tuple[str, dict]] = []

    def _client_probe(self, limit: list[str] | None) -> PlayResult:
        hosts = limit or list(CLIENTS)
        data = {h: probe(bool(self.health.get(h, True))) for h in hosts if self.health.get(h, True) != "off"}
        outcomes = {
            h: HostOutcome(h, ok=False, unreachable=True, message="container not running")
            for h in hosts
            if self.health.get(h, True) == "off"
        }
        return PlayResult("client_probe", "successful", 0, outcomes, data)

    def run(self, playbook, **kwargs):
        self.calls.append((playbook, kwargs))
        if playbook == "client_probe":
            return self._client_probe(kwargs.get("limit"))
        problems = [] if self.admin_ok else ["db_down"]
        return PlayResult(
            playbook, "successful", 0, {}, {"localhost": {"healthy": self.admin_ok, "problems": problems}}
        )

    def start(self, playbook, **kwargs):
        self.calls.append((f"start:{playbook}", kwargs))
        return Job(self._client_probe(kwargs.get("limit")))

    def run_parallel(self, runs):
        return [self.run(name, **kwargs) for name, kwargs in runs]

    def inventory(self):
        return {}


def engine(tmp_path, gw) -> Engine:
    hospital = Hospital(
        CLIENTS, "simrs-primary", "simrs-standby", 10, "approve", units=UNIT_OF, triage_per_unit=2
    )
    return Engine(Journal(tmp_path / "j.sqlite"), gw, hospital)


def events(eng: Engine, incident: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for ev in eng.journal.events(incident):
        out.setdefault(ev.kind, []).append(ev.data)
    return out


def test_engine_decides_on_the_sample_and_sweeps_the_rest_for_the_report(tmp_path):
    gw = Gateway({"kasir-01": False, "poli-05": False}, admin_ok=True)
    eng = engine(tmp_path, gw)
    incident = eng.open("kasir-01")
    eng.drive(incident)
    ev = events(eng, incident)
    first = ev["triage"][0]
    sampled = first["clients"]
    assert len(sampled) == 8
    assert first["sample"] == {"probed": 8, "of": 20, "per_unit": 2}
    probe_call = next(kw for name, kw in gw.calls if name == "client_probe")
    assert sorted(probe_call["limit"]) == sorted(sampled)
    assert probe_call["forks"] == 8
    # The verdict came from the sample: only the reporter fails there, the others are fine.
    assert sampled["kasir-01"]["failed_check"] == "tcp_db"
    sweep = ev["triage_sweep"][0]
    assert sorted(sweep["clients"]) == sorted(set(CLIENTS) - set(sampled))
    assert sweep["failing"] == ["poli-05"]
    start = next(kw for name, kw in gw.calls if name == "start:client_probe")
    assert start["forks"] == 12


def test_engine_probes_everyone_before_the_verdict_when_the_sample_is_silent(tmp_path):
    # The reporter fails and every other sampled PC is switched off: no evidence yet.
    chosen = triage.sample(CLIENTS, UNIT_OF, "kasir-01", 2)
    health: dict[str, object] = {pc: "off" for pc in chosen if pc != "kasir-01"}
    health["kasir-01"] = False
    gw = Gateway(health, admin_ok=True)
    eng = engine(tmp_path, gw)
    incident = eng.open("kasir-01")
    eng.drive(incident)
    ev = events(eng, incident)
    first = ev["triage"][0]
    assert sorted(first["clients"]) == sorted(CLIENTS)
    assert first["sample"]["probed"] == 20
    assert "triage_sweep" not in ev
    assert [name for name, _ in gw.calls][:3] == ["client_probe", "admin_check", "client_probe"]
