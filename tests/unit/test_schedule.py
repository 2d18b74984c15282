"""Scheduled runs: settings, rendering (systemd and cron), install/remove into a folder, and the
`simrs schedule` commands (no real systemctl: the system's unit folder is never the test's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator import cli, schedule
from orchestrator.cli import schedule_cmd
from orchestrator.cli.base import exit_code
from orchestrator.errors import SimrsError

SIMRS = Path("/opt/simrs/.venv/bin/simrs")
INVENTORY = Path("/etc/simrs/inventory/rsud")


def test_defaults_and_overrides():
    assert schedule.resolve(None) == {job.key: job.default for job in schedule.JOBS if job.default}
    assert "planned_restart" not in schedule.resolve(None)  # restarts the server: only when asked for
    assert schedule.resolve({"planned_restart": "Sun *-*-* 03:30"})["planned_restart"] == "Sun *-*-* 03:30"
    times = schedule.resolve({"backup_dump": "*-*-* 23:45", "drill": None, "backup_physical": ""})
    assert times["backup_dump"] == "*-*-* 23:45"
    assert "drill" not in times
    assert "backup_physical" not in times
    assert times["binlog_ship"] == "*:0/5"


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"backups": "daily"}, "unknown job(s) backups: the jobs are backup_dump"),
        ({"backup_dump": 130}, "simrs_schedule.backup_dump is 130"),
        ({"backup_dump": "01:30\nExecStart=/bin/sh"}, "simrs_schedule.backup_dump is"),
        (["backup_dump"], "must be a mapping"),
    ],
)
def test_bad_settings_say_what_to_fix(settings, text):
    with pytest.raises(SimrsError, match=r"simrs_schedule") as caught:
        schedule.resolve(settings)
    assert text in str(caught.value)
    assert exit_code(caught.value) == 2


def test_systemd_units():
    files = schedule.render_systemd(schedule.resolve(None), SIMRS, INVENTORY)
    assert sorted(files) == sorted(
        f"simrs-{name}.{kind}"
        for name in (
            "backup-dump",
            "backup-physical",
            "backup-verify",
            "binlog-ship",
            "drill",
            "maintenance-check",
        )
        for kind in ("service", "timer")
    )
    service = files["simrs-backup-dump.service"]
    assert service.startswith(schedule.MARKER)
    assert f"ExecStart={SIMRS} -i {INVENTORY} backup run --method dump\n" in service
    assert "Type=oneshot" in service
    assert "Environment=SIMRS_OPERATOR=simrs-schedule" in service
    timer = files["simrs-drill.timer"]
    assert "OnCalendar=Sun *-*-01..07 03:00\n" in timer
    assert "Persistent=true" in timer
    assert "RandomizedDelaySec=15min" in timer
    assert "Unit=simrs-drill.service" in timer
    assert "WantedBy=timers.target" in timer
    assert f"ExecStart={SIMRS} -i {INVENTORY} drill\n" in files["simrs-drill.service"]
    assert "backup ship-binlogs" in files["simrs-binlog-ship.service"]


@pytest.mark.parametrize("bad", [Path("/opt/my simrs/simrs"), Path("relative/simrs"), Path("/x/100%/simrs")])
def test_paths_that_a_unit_file_would_misread_are_refused(bad):
    with pytest.raises(SimrsError, match="absolute path"):
        schedule.render_systemd({"drill": "daily"}, bad, INVENTORY)


@pytest.mark.parametrize(
    ("expr", "fields", "weekday"),
    [
        ("*-*-* 01:30", "30 1 * * *", None),
        ("Sun *-*-* 02:30", "30 2 * * 0", None),
        ("Mon..Fri 18:05:00", "5 18 * * 1-5", None),
        ("Sat,Sun 06:00", "0 6 * * 6,0", None),
        ("*:0/5", "*/5 * * * *", None),
        ("*:2/10", "2-59/10 * * * *", None),
        ("Sun *-*-01..07 03:00", "0 3 1-7 * *", 0),
        ("*-*-15 04:00", "0 4 15 * *", None),
        ("daily", "0 0 * * *", None),
    ],
)
def test_cron_fields(expr, fields, weekday):
    assert schedule.to_cron("job", expr) == (fields, weekday)


@pytest.mark.parametrize(
    "expr", ["25:00", "*-*-* 01:61", "Funday 01:00", "2026-12-01 01:00", "*:0/0", "Mon,Sun *-*-01..07 03:00"]
)
def test_cron_refuses_what_it_cannot_express(expr):
    with pytest.raises(SimrsError, match=r"cannot express|not a weekday"):
        schedule.to_cron("backup_dump", expr)


def test_cron_file_keeps_systemds_meaning_of_day_and_weekday():
    (name, text), = schedule.render_cron(schedule.resolve(None), SIMRS, INVENTORY).items()  # fmt: skip
    assert name == "simrs-schedule"
    assert text.startswith(schedule.MARKER)
    drill = next(line for line in text.splitlines() if line.endswith("logger -t simrs-drill"))
    assert drill.startswith('0 3 1-7 * * root [ "$(date +\\%w)" = 0 ] && SIMRS_OPERATOR=simrs-schedule')
    assert f"flock -n /run/lock/simrs-drill.lock {SIMRS} -i {INVENTORY} drill" in drill
    jobs = schedule.cron_jobs(text)
    assert [j["job"] for j in jobs] == [j.unit for j in schedule.JOBS if j.default]
    assert jobs[0]["when"] == "*-*-* 01:30"


def test_validate_uses_the_analyzer_and_says_what_to_write():
    schedule.validate({"drill": "monthly"}, lambda expr: None)
    with pytest.raises(SimrsError, match=r"simrs_schedule.drill is '25:00', which systemd cannot read"):
        schedule.validate({"drill": "25:00"}, lambda expr: "Invalid argument")
    with pytest.raises(SimrsError, match="cannot express"):
        schedule.validate({"drill": "2026-12-01 01:00"}, None)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_analyze_calendar_for_real():
    assert schedule.analyze_calendar("*-*-* 01:30")[0] is None
    problem, _ = schedule.analyze_calendar("25:00")
    assert problem


def test_install_update_remove_touch_only_our_files(tmp_path):
    (tmp_path / "simrs-web.service").write_text("[Service]\nExecStart=/usr/bin/true\n")  # not ours
    (tmp_path / "other.timer").write_text("x")
    first = schedule.render_systemd(schedule.resolve(None), SIMRS, INVENTORY)
    change = schedule.plan(first, schedule.installed(tmp_path))
    assert len(change.write) == 12
    assert not change.remove
    schedule.apply(tmp_path, change)
    assert schedule.installed(tmp_path) == first
    assert oct((tmp_path / "simrs-drill.timer").stat().st_mode & 0o777) == "0o644"
    assert not list(tmp_path.glob(".*.tmp"))

    second = schedule.render_systemd(schedule.resolve({"drill": None, "backup_dump": "*-*-* 23:00"}), SIMRS,
                                     INVENTORY)  # fmt: skip
    change = schedule.plan(second, schedule.installed(tmp_path))
    assert set(change.write) == {"simrs-backup-dump.timer"}
    assert change.remove == ("simrs-drill.service", "simrs-drill.timer")
    schedule.apply(tmp_path, change)

    schedule.apply(tmp_path, schedule.plan({}, schedule.installed(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.timer", "simrs-web.service"]


def test_apply_refuses_a_missing_folder(tmp_path):
    with pytest.raises(SimrsError, match="does not exist"):
        schedule.apply(tmp_path / "nope", schedule.Plan({"simrs-x.timer": "x"}, (), ()))


def test_systemctl_errors_are_one_line():
    def fail(argv):
        return subprocess.CompletedProcess(argv, 1, "", "Failed to connect to bus\n")

    with pytest.raises(
        SimrsError, match="systemctl daemon-reload failed: Failed to connect to bus"
    ) as caught:
        schedule.Systemctl(fail).reload()
    assert exit_code(caught.value) == 1
    schedule.Systemctl(fail).enable([])  # nothing to enable: no call


# ---- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def wired(monkeypatch):
    settings: dict = {"value": {"backup_dump": "*-*-* 00:45"}}
    monkeypatch.setattr(schedule_cmd, "inventory_settings", lambda ctx: (INVENTORY, settings["value"]))

    def no_systemctl(*args, **kwargs):
        raise AssertionError("systemctl must not run for a folder that is not the system's")

    monkeypatch.setattr(schedule.Systemctl, "_call", no_systemctl)
    return settings


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


@pytest.mark.parametrize("kind", ["systemd", "cron"])
def test_cli_install_show_remove(wired, tmp_path, kind):
    base = ["--kind", kind, "--unit-dir", str(tmp_path)]
    res = invoke("schedule", "install", *base, "--simrs", str(SIMRS), "--dry-run")
    assert res.exit_code == 0, res.output
    assert "would write" in res.stdout
    assert not list(tmp_path.iterdir())

    res = invoke("schedule", "install", *base, "--simrs", str(SIMRS))
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == (["simrs-schedule"] if kind == "cron" else [f"{j.unit}.{k}" for j in schedule.JOBS
                                                if j.default for k in ("service", "timer")])  # fmt: skip
    assert "6 scheduled job(s)" in res.stdout

    res = invoke("schedule", "show", *base, "--json")
    assert res.exit_code == 0, res.output
    jobs = {j["job"]: j for j in json.loads(res.stdout)["jobs"]}
    assert jobs["simrs-backup-dump"]["when"] == "*-*-* 00:45"
    assert f"{SIMRS} -i {INVENTORY} backup run --method dump" in jobs["simrs-backup-dump"]["command"]
    if kind == "systemd" and shutil.which("systemd-analyze"):
        assert jobs["simrs-backup-dump"]["next"]  # computed by systemd-analyze, systemd not running

    res = invoke("schedule", "install", *base, "--simrs", str(SIMRS))
    assert "0 file(s) written, 0 removed" in res.stdout

    res = invoke("schedule", "remove", *base, "--dry-run")
    assert "would remove" in res.stdout
    assert list(tmp_path.iterdir())
    res = invoke("schedule", "remove", *base)
    assert res.exit_code == 0, res.output
    assert not list(tmp_path.iterdir())
    assert "no scheduled SIMRS jobs" in invoke("schedule", "show", *base).stdout


def test_cli_bad_time_is_exit_2(wired, tmp_path):
    wired["value"] = {"drill": "Funday 03:00"}
    res = invoke("schedule", "install", "--kind", "cron", "--unit-dir", str(tmp_path), "--simrs", str(SIMRS))
    assert res.exit_code == 2
    assert "simrs_schedule.drill" in res.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_cli_unwritable_folder_is_exit_2(wired, tmp_path):
    tmp_path.chmod(0o500)
    res = invoke("schedule", "install", "--kind", "cron", "--unit-dir", str(tmp_path), "--simrs", str(SIMRS))
    assert res.exit_code == 2
    assert "cannot write to" in res.stderr


@pytest.mark.parametrize("inventory", ["example", "lab"])
def test_the_inventories_document_the_defaults(inventory):
    path = Path(__file__).resolve().parents[2] / "inventory" / inventory / "group_vars" / "all" / "simrs.yml"
    documented = yaml.safe_load(path.read_text())["simrs_schedule"]
    assert schedule.resolve(documented) == schedule.resolve(None)
