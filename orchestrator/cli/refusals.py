"""The engine's and the journal's refusals that an operator meets during an incident, marked for
the catalog (orchestrator/locale/id.po). The engine raises them in English; the CLI prints them
in the operator's language (``i18n.translate_error``), the fields filled with the same values.
Each text here must read exactly as it is raised (tests/unit/test_i18n.py checks them)."""

from __future__ import annotations

from orchestrator.i18n import N_

REFUSALS = (
    N_("no incident {id}; `simrs incident status` lists the active one"),
    N_("{reporter} is not a client PC in the inventory (simrs_clients: {clients})"),
    N_(
        "incident {id} (reported by {reporter}) is still open, in {phase}: resume it with "
        "`simrs incident resume {id}` or close it with `simrs incident close {id} --cause TEXT`"
    ),
    N_("the inventory has no simrs_standby host: there is nothing to fail over to"),
    N_("say why the SIMRS moves to the standby: --reason TEXT (it goes into the report)"),
    N_("say why the repair window ends early: --reason TEXT"),
    N_(
        "incident {id} is in {phase}, not in the repair window: "
        "failover-now only ends a running repair window"
    ),
    N_("incident {id} is in {phase}: only an incident in FAILOVER_PENDING can be approved"),
    N_("no failover to undo: by the journal, the main server serves the SIMRS"),
    N_("incident {id} is still {phase}: let its failover finish first"),
    N_(
        "incident {id} is being driven by {holder}; watch it with "
        "`simrs incident status {id}` or wait for that run to stop"
    ),
    # orchestrator/ledger.py: `simrs incident backfill --unit U --done`
    N_("there is no unit {unit} in the inventory (simrs_unit): {units}"),
    N_("unit {unit} was not on paper in this incident: there is nothing to enter"),
    N_("the backfill of {unit} is already closed (by {by}); nothing was written"),
    N_("{unit} still works on paper (the SIMRS is not back yet): enter the records afterwards"),
    N_("--count must be 0 or more, not {count}"),
)
