"""The failback to the repaired main server with nothing lost (issue 13), journaled step by step in
the failover's incident and resumable: look (preflight: refusals) -> seed (a consistent dump of the
standby loaded on the primary, then GTID replication standby -> primary, while the standby serves)
-> announce (the short pause, both languages) -> cutover (the standby read-only, the primary caught
up, both sides compared table by table; then the service IP moves) -> unseed (replication removed)
-> standby_cold -> notify ("back on the main server").

Why a dump over the LAN and not the newest backup set: while the hospital runs on the standby its
data are on the standby only (no set of it is on the external disk), and a dump taken with
--single-transaction --master-data --gtid carries the exact GTID where replication must start, so
the primary is seconds behind, not hours, and the freeze only waits for the last seconds.

`--data-synced` keeps the old IP-only path (playbooks/failback.yml) for an operator who copied the
data by hand and says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator import contract, incidents
from orchestrator.ansible import Gateway, PlayResult
from orchestrator.errors import InputError
from orchestrator.i18n import N_
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from orchestrator.procedure import Incident

FAILBACK_STEPS = ("seed", "announce", "cutover", "unseed", "standby_cold", "notify")
CATCH_UP_SECONDS = 20  # the cutover's bounded wait for the primary to reach the frozen standby


def tables_differ(standby: dict[str, Any], primary: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables whose row count or checksum differ (or that one side lacks)."""
    out = []
    for name in sorted(set(standby) | set(primary)):
        s, p = standby.get(name), primary.get(name)
        if s != p:
            out.append({"table": name, "standby": s, "primary": p})
    return out


def comparison(tables: dict[str, Any]) -> dict[str, Any]:
    standby, primary = tables.get("standby") or {}, tables.get("primary") or {}
    differ = tables_differ(standby, primary)
    return {
        "tables": len(standby),
        "rows": sum(int(v.get("rows", 0)) for v in standby.values()),
        "same": bool(standby) and not differ,
        "differ": differ[:20],
        "per_table": {n: {"standby": standby.get(n), "primary": primary.get(n)} for n in sorted(standby)},
    }


def restored_anchor(inc: Incident) -> str | None:
    """The newest visit the failover restored onto the standby, as YYYY-MM-DD HH:MM:SS: a visit on
    the primary after it was never on the standby (the seed would overwrite it)."""
    last = inc.restored.get("last_visit") or {}
    day, clock = str(last.get("tgl_registrasi") or ""), str(last.get("jam_reg") or "").split(":")
    if len(day) == 10 and len(clock) == 3 and all(p.isdigit() for p in clock):
        return f"{day} {int(clock[0]):02d}:{clock[1]}:{clock[2][:2]}"  # a TIME may come as 9:05:03
    return None


class Failback:
    """The failback (a part of ``Engine``)."""

    journal: Journal
    gateway: Gateway
    hospital: Hospital
    now: Callable[[], float]
    ui: Any
    _run: Callable[..., PlayResult]

    def serving_incident(self) -> Incident | None:
        return incidents.serving_incident(self.journal)

    def failback(
        self,
        by: str,
        data_synced: bool = False,
        *,
        dry_run: bool = False,
        discard_primary_data: bool = False,
    ) -> tuple[dict[str, Any], str]:
        inc = self.serving_incident() or self._unfinished_failback()
        if inc is None:
            raise InputError(N_("no failover to undo: by the journal, the main server serves the SIMRS"))
        if inc.active:
            raise InputError(
                N_("incident {id} is still {phase}: let its failover finish first").format(
                    id=inc.id, phase=inc.phase
                )
            )
        if data_synced:
            if dry_run:
                raise InputError(N_("--data-synced moves no data and has no plan: leave out --dry-run"))
            return self._failback_ip_only(inc, by), inc.id
        done = self.failback_done(inc.id)
        started = self.failback_started(inc.id)
        if "cutover" in done:  # the IP is back on the primary: only the last steps are left
            return self._failback_after_cutover(inc, done, by, dry_run), inc.id
        look = self._failback_look(inc, done, compare=dry_run)
        if dry_run:
            return self._failback_plan(inc, look, done, discard_primary_data), inc.id
        with self.journal.lock(inc.id, "failing back"):
            if look["standby_read_only"] and "cutover" not in done:
                # A run cut off inside its freeze: the standby serves writable again before anything else.
                fact = self._failback_unfreeze(inc.id)
                if not fact["ok"]:
                    raise InputError(
                        N_("the standby stays read-only and could not be unfrozen: {detail}").format(
                            detail=fact["detail"]
                        )
                    )
            refusal = self._failback_refusal(look, done, "cutover" in started, discard_primary_data)
            if refusal:
                raise InputError(refusal)
            if not started:
                self.journal.append(
                    inc.id,
                    "action_started",
                    {"action": "failback", "by": by, "discard_primary_data": discard_primary_data},
                    ts=self.now(),
                )
            if look.get("reseed"):
                done.discard("seed")
            if "cutover" not in done:
                done.discard("announce")  # a cutover tried again is announced again
            ok = self._failback_steps(inc, done)
            summary = self._failback_summary(inc.id, ok, by)
            self.journal.append(inc.id, "failback", summary, ts=self.now())
        return summary, inc.id

    def _failback_after_cutover(
        self, inc: Incident, done: set[str], by: str, dry_run: bool
    ) -> dict[str, Any]:
        if dry_run:
            left = [s for s in FAILBACK_STEPS if s not in done]
            return {"incident": inc.id, "ready": True, "refusal": None, "done": sorted(done), "steps": left}
        with self.journal.lock(inc.id, "failing back"):
            ok = self._failback_steps(inc, done)
            summary = self._failback_summary(inc.id, ok, by)
            self.journal.append(inc.id, "failback", summary, ts=self.now())
        return summary

    def _failback_steps(self, inc: Incident, done: set[str]) -> bool:
        """Each step not yet done, journaled before (action_started) and after (failback_step)."""
        for step in FAILBACK_STEPS:
            if step in done:
                continue
            self.journal.append(
                inc.id, "action_started", {"action": "failback_step", "event": step}, ts=self.now()
            )
            began = self.now()
            fact = getattr(self, f"_failback_{step}")(inc)
            fact = {"step": step, "seconds": round(self.now() - began, 1), **fact}
            self.journal.append(inc.id, "failback_step", fact, ts=self.now())
            self.ui.fact("failback_step", fact)
            if not fact["ok"] and step not in ("announce", "notify"):  # a notice that fails is reported
                return False
        return True

    # -- the journal --

    def _unfinished_failback(self) -> Incident | None:
        """The current incident when its failback moved the service IP back (the cutover) but did
        not end: its last steps (unseed, standby_cold, notify) are still to do."""
        inc = incidents.current_incident(self.journal)
        if inc is None or not inc.failed_back:
            return None
        events = self.journal.events(inc.id)
        ends = [e for e in events if e.kind == "failback"]
        cut = [e for e in events if e.kind == "failback_step" and e.data.get("step") == "cutover"]
        if (
            cut
            and cut[-1].data.get("ok")
            and not (ends and ends[-1].seq > cut[-1].seq and ends[-1].data.get("ok"))
        ):
            return inc
        return None

    def failback_events(self, incident_id: str) -> list[Any]:
        """The events of the current failback (after the last failback that did not finish or
        after the failover, whichever is later)."""
        return [
            e for e in self.journal.events(incident_id) if e.kind in ("failback_step", "failback_unfreeze")
        ]

    def failback_done(self, incident_id: str) -> set[str]:
        return {
            e.data["step"] for e in self.failback_events(incident_id) if e.data.get("ok") and "step" in e.data
        }

    def failback_started(self, incident_id: str) -> set[str]:
        return {
            e.data.get("event")
            for e in self.journal.events(incident_id)
            if e.kind == "action_started" and e.data.get("action") == "failback_step"
        }

    # -- look and decide --

    def _failback_look(self, inc: Incident, done: set[str], *, compare: bool) -> dict[str, Any]:
        h = self.hospital
        extravars: dict[str, Any] = {"failback_compare": compare, "failback_start_database": not compare}
        anchor = restored_anchor(inc)
        if anchor and "seed" not in done:
            extravars["failback_visits_after"] = anchor
        result = self.gateway.run(
            "failback_status", limit=[h.primary, h.standby or ""], extravars=extravars, timeout=600
        )
        seen = {host: d for host, d in result.data.items() if isinstance(d, dict)}

        def why(host: str) -> str:
            outcome = result.hosts.get(host)
            return (
                outcome.message
                if outcome is not None and outcome.message
                else result.explanation or "no answer"
            )

        primary, standby = seen.get(h.primary) or {}, seen.get(h.standby or "") or {}
        pdb, sdb = primary.get("mariadb") or {}, standby.get("mariadb") or {}
        replica = pdb.get("replica") or {}
        replicating = replica.get("io_running") == "Yes" and replica.get("sql_running") == "Yes"
        return {
            "primary": h.primary,
            "standby": h.standby,
            "primary_answers": bool(pdb.get("ok")),
            "primary_reachable": h.primary in seen,
            "primary_why": "" if pdb.get("ok") else str(pdb.get("detail") or why(h.primary)),
            "standby_answers": bool(sdb.get("ok")),
            "standby_why": "" if sdb.get("ok") else str(sdb.get("detail") or why(h.standby or "")),
            "primary_holds_ip": bool(primary.get("holds_service_ip")),
            "standby_holds_ip": bool(standby.get("holds_service_ip")),
            "standby_read_only": bool(sdb.get("read_only")),
            "anchor": anchor,
            "primary_newer": pdb.get("visits_after") if "seed" not in done else None,
            "replicating": replicating,
            "replica": replica,
            "reseed": "seed" in done and "cutover" not in done and not replicating,
            "standby_gtid": sdb.get("gtid_binlog_pos"),
            "primary_gtid": pdb.get("gtid_slave_pos"),
            "tables": {"standby": sdb.get("tables") or {}, "primary": pdb.get("tables") or {}},
            "standby_newest_visit": sdb.get("newest_visit"),
        }

    def _failback_refusal(  # noqa: PLR0911 (one refusal each)
        self, look: dict[str, Any], done: set[str], cutover_started: bool, discard_primary_data: bool
    ) -> str | None:
        p, s = look["primary"], look["standby"]
        if not look["primary_answers"]:
            return N_(
                "the main server {host} or its MariaDB does not answer ({why}): repair it and "
                "power it on first; nothing was changed"
            ).format(host=p, why=look["primary_why"])
        if not look["standby_answers"]:
            return N_(
                "the standby {host} or its MariaDB does not answer ({why}); nothing was changed"
            ).format(host=s, why=look["standby_why"])
        moved = look["primary_holds_ip"] and not look["standby_holds_ip"]
        if not (cutover_started and moved):  # a cutover cut off after the IP moved is finished by a rerun
            if look["primary_holds_ip"]:
                return N_(
                    "the main server {host} holds the service IP: it must not, before the failback "
                    "(`simrs guard` takes it away); nothing was changed"
                ).format(host=p)
            if not look["standby_holds_ip"]:
                return N_(
                    "the standby {host} is not the active server (it does not hold the service IP): "
                    "nothing to fail back from; nothing was changed"
                ).format(host=s)
        if "seed" not in done and not discard_primary_data:
            newer = look["primary_newer"]
            if newer is None:
                return N_(
                    "cannot tell whether the main server {host} holds visits the standby never had "
                    "(the failover journaled no restored visit): compare by hand, then run again "
                    "with --discard-primary-data; nothing was changed"
                ).format(host=p)
            if newer.get("count"):
                return N_(
                    "the main server {host} holds {count} visit(s) registered after the newest "
                    "one the standby was restored with ({after}), e.g. "
                    "{sample}: the failback would overwrite them with the "
                    "standby's data. Save what you need from them, then run again with "
                    "--discard-primary-data; nothing was changed"
                ).format(
                    host=p, count=newer["count"], after=newer["after"], sample=", ".join(newer["sample"][:5])
                )
        return None

    def _failback_plan(
        self, inc: Incident, look: dict[str, Any], done: set[str], discard_primary_data: bool
    ) -> dict[str, Any]:
        started = "cutover" in self.failback_started(inc.id)
        refusal = self._failback_refusal(look, done, started, discard_primary_data)
        if look["primary_reachable"] and not look["primary_answers"]:
            refusal = N_(
                "the main server's MariaDB does not answer ({why}): a real run "
                "starts it (without the SIMRS app nor the service IP) to read and seed it; the dry run "
                "starts nothing"
            ).format(why=look["primary_why"][:200])
        cmp = comparison(look["tables"])
        seeded = "seed" in done and not look["reseed"]
        return {
            "incident": inc.id,
            "ready": refusal is None,
            "refusal": refusal,
            "primary": look["primary"],
            "standby": look["standby"],
            "done": sorted(done),
            "steps": [s for s in FAILBACK_STEPS if s not in done or (s == "seed" and look["reseed"])],
            "seed": {
                "source": look["standby"],
                "how": "a consistent dump of the standby's live databases over the LAN "
                "(mariadb-dump --single-transaction --master-data --gtid), loaded on the primary, then "
                "MariaDB GTID replication standby -> primary",
                "standby_gtid": look["standby_gtid"],
                "tables": cmp["tables"],
                "rows": cmp["rows"],
                "done": seeded,
            },
            "lag": {
                "replicating": look["replicating"],
                "seconds_behind": look["replica"].get("seconds_behind"),
                "primary_gtid": look["primary_gtid"],
                "differing_tables": len(cmp["differ"]),
            }
            if seeded
            else {
                "replicating": False,
                "detail": "not seeded yet: the primary has the data of before the outage",
            },
            "expected_freeze": (
                f"at most {CATCH_UP_SECONDS} s for the primary to catch up (seconds when replicating), the "
                f"comparison of {cmp['tables']} tables ({cmp['rows']} rows), the service IP moved and "
                "the SIMRS started on the primary: about 10-20 s in the lab"
            ),
            "compared": "per table of the SIMRS databases: COUNT(*) and CHECKSUM TABLE on both "
            "servers, all equal",
            "primary_newer": look["primary_newer"],
            "anchor": look["anchor"],
            "discard_primary_data": discard_primary_data,
        }

    # -- the steps --

    def _failback_seed(self, inc: Incident) -> dict[str, Any]:
        result = self.gateway.run("failback_seed", timeout=7200, progress=self.ui.event)
        rep = ((result.data.get(self.hospital.primary) or {}).get("replication")) or {}
        ok = result.ok and bool(rep.get("ok"))
        return {
            "ok": ok,
            "detail": str(rep.get("detail") if ok else self._failed(result))[:500],
            "seeded_gtid": rep.get("seeded_gtid"),
            "seed_seconds": rep.get("seconds"),
            "server_id": rep.get("server_id"),
        }

    def _failback_notice(self, inc: Incident, event: str, at: float, detail: str = "") -> dict[str, Any]:
        extravars = {
            "notify_event": event,
            "notify_lang": self.hospital.notify_lang,
            "notify_event_time": time.strftime("%Y-%m-%dT%H:%M", time.localtime(at)),
            "notify_incident": {
                "id": inc.id,
                "reporter": inc.reporter,
                "opened_at": time.strftime("%Y-%m-%d %H:%M", time.localtime(inc.opened_at)),
            },
            "notify_detail": detail,
        }
        result = self.gateway.run("notify", extravars=extravars, timeout=300, progress=self.ui.event)
        facts = contract.notice_facts(result, event)
        return {"ok": facts["sent"], "detail": f"{event}: sent={facts['sent']}", **facts}

    def _failback_announce(self, inc: Incident) -> dict[str, Any]:
        return self._failback_notice(inc, "failback_freeze", self.now())

    def _failback_cutover(self, inc: Incident) -> dict[str, Any]:
        h = self.hospital
        result = self.gateway.run(
            "failback_cutover",
            extravars={"failback_catch_up_seconds": CATCH_UP_SECONDS},
            timeout=900,
            progress=self.ui.event,
        )
        sb = result.data.get(h.standby or "") or {}
        pr = result.data.get(h.primary) or {}
        admin = result.data.get("localhost") or {}
        verify = admin.get("verify") or {}
        pcs = {c: (result.data.get(c) or {}).get("verify") or {} for c in h.clients}
        pcs_ok = all(v.get("ok") for v in pcs.values())
        freeze = sb.get("freeze") or {}
        cmp = comparison(sb.get("tables") or {})
        ok = result.ok and bool(sb.get("same")) and bool(verify.get("ok")) and pcs_ok
        frozen_at = freeze.get("at")
        served_at = pr.get("served_at")
        return {
            "ok": ok,
            "detail": (
                f"the SIMRS runs on {h.primary} again: {cmp['tables']} tables ({cmp['rows']} rows) "
                "equal on both servers, verified from the admin machine and every PC"
                if ok
                else str(sb.get("detail") or verify.get("detail") or self._failed(result))[:500]
            ),
            "moved": bool((pr.get("ip_takeover") or {}).get("present_after")) or bool(served_at),
            "unfrozen": sb.get("unfrozen"),
            "frozen_gtid": freeze.get("gtid_binlog_pos"),
            "frozen_at": frozen_at,
            "caught_up_seconds": (sb.get("caught_up") or {}).get("seconds"),
            "served_at": served_at,
            "verified_at": admin.get("verified_at"),
            "freeze_seconds": round(float(served_at) - float(frozen_at), 1)
            if served_at and frozen_at
            else None,
            "comparison": cmp,
            "served_by": verify.get("served_by"),
            "pcs": {c: {"ok": bool(v.get("ok")), "served_by": v.get("served_by")} for c, v in pcs.items()},
        }

    def _failback_unseed(self, inc: Incident) -> dict[str, Any]:
        result = self.gateway.run("failback_finish", timeout=300, progress=self.ui.event)
        rep = (result.data.get(self.hospital.primary) or {}).get("replication") or {}
        # The primary's replication removed is what counts; the standby's account goes when it answers.
        return {"ok": bool(rep.get("ok")), "detail": str(rep.get("detail") or self._failed(result))[:300]}

    def _failback_standby_cold(self, inc: Incident) -> dict[str, Any]:
        result = self.gateway.run("standby_cold", timeout=600, progress=self.ui.event)
        return contract.standby_cold_facts(result, self.hospital.standby or "")

    def _failback_notify(self, inc: Incident) -> dict[str, Any]:
        return self._failback_notice(inc, "back_on_main", self.now())

    def _failback_unfreeze(self, incident_id: str) -> dict[str, Any]:
        result = self.gateway.run("failback_unfreeze", timeout=300, progress=self.ui.event)
        rep = (result.data.get(self.hospital.standby or "") or {}).get("replication") or {}
        fact = {
            "ok": result.ok and bool(rep.get("ok")),
            "detail": str(rep.get("detail") or self._failed(result)),
        }
        self.journal.append(incident_id, "failback_unfreeze", fact, ts=self.now())
        return fact

    def _failback_summary(self, incident_id: str, ok: bool, by: str) -> dict[str, Any]:
        steps: dict[str, dict[str, Any]] = {}
        for e in self.failback_events(incident_id):
            if "step" in e.data:
                steps[e.data["step"]] = e.data
        cut = steps.get("cutover") or {}
        last = next((steps[s] for s in reversed(FAILBACK_STEPS) if s in steps), {})
        return {
            "by": by,
            "ok": ok,
            "detail": (
                N_(
                    "back on the main server {host}: nothing lost, {tables} tables equal, "
                    "write freeze {freeze} s"
                ).format(
                    host=self.hospital.primary,
                    tables=(cut.get("comparison") or {}).get("tables", 0),
                    freeze=cut.get("freeze_seconds"),
                )
                if ok
                else N_("stopped at {step}: {detail}").format(
                    step=last.get("step"), detail=last.get("detail")
                )
            ),
            "with_data": True,
            "served_by": cut.get("served_by"),
            "freeze_seconds": cut.get("freeze_seconds"),
            "comparison": {k: v for k, v in (cut.get("comparison") or {}).items() if k != "per_table"},
            "back_on_main_at": cut.get("verified_at") if cut.get("ok") else None,
            "steps": [
                {"step": s, "ok": steps[s].get("ok"), "seconds": steps[s].get("seconds")}
                for s in FAILBACK_STEPS
                if s in steps
            ],
        }

    @staticmethod
    def _failed(result: PlayResult) -> str:
        failed = "; ".join(f"{o.name}: {o.message}" for o in result.hosts.values() if not o.ok)
        return failed or result.explanation or "no result published"

    # -- the old path: the operator moved the data by hand --

    def _failback_ip_only(self, inc: Incident, by: str) -> dict[str, Any]:
        with self.journal.lock(inc.id, "failing back"):
            self.journal.append(
                inc.id, "action_started", {"action": "failback", "by": by, "data_synced": True}, ts=self.now()
            )
            result = self._run("failback", extravars={"failback_data_synced": True}, timeout=1200)
            facts = contract.failback_facts(result, self.hospital)
            self.journal.append(inc.id, "failback", {"by": by, "data_synced": True, **facts}, ts=self.now())
        return facts
