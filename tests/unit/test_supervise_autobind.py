"""`udriver autobind`: the decisions before binding, remove, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from udriver import _devstate
from udriver.cli import main as cli_main
from udriver.errors import InstallError
from udriver.manifest import DriverManifest
from udriver.modalias import parse_modalias
from udriver.supervise import _autobind

BDF = "0000:01:00.0"
EDU_ALIAS = "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00"
EDU = DriverManifest("udriver-edu", "0.1.0", "edu", "udriver_edu:Edu", (1, 0),
                     ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))
WIDE = DriverManifest("udriver-any", "1.0", "any", "a:B", (1, 0),
                      ("pci:v00001234d*sv*sd*bc*sc*i*",))
OTHER = DriverManifest("udriver-nic", "1.0", "nic", "n:Nic", (1, 0),
                       ("pci:v00008086d000010D3sv*sd*bc*sc*i*",))


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in [("UDRIVER_STATE_DIR", "state"), ("UDRIVER_RUN_DIR", "run"),
                     ("UDRIVER_CONFIG_DIR", "etc"), ("UDRIVER_UDEV_RULES", "rules/60.rules")]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    d = tmp_path / "root/sys/bus/pci/devices" / BDF
    d.mkdir(parents=True)
    for name, value in [("vendor", "0x1234"), ("device", "0x11e8"),
                        ("subsystem_vendor", "0x1af4"), ("subsystem_device", "0x1100"),
                        ("class", "0x00ff00"), ("modalias", EDU_ALIAS),
                        ("driver_override", "(null)")]:
        (d / name).write_text(value + "\n")
    monkeypatch.setattr(_autobind, "systemd_running", lambda: False)
    return tmp_path / "root"


def test_find_installed_by_name() -> None:
    alias = parse_modalias(EDU_ALIAS)
    assert _autobind.find_installed(alias, "edu", [OTHER, EDU]) is EDU
    assert _autobind.find_installed(alias, "gone", [OTHER, EDU]) is None


def test_find_installed_named_driver_must_claim_the_device() -> None:
    with pytest.raises(InstallError, match=r"installed driver `nic` \(udriver-nic 1.0\) does "
                                           r"not claim device pci:v00001234d000011E8"):
        _autobind.find_installed(parse_modalias(EDU_ALIAS), "nic", [OTHER])


def test_find_installed_most_specific_wins() -> None:
    alias = parse_modalias(EDU_ALIAS)
    assert _autobind.find_installed(alias, None, [WIDE, EDU, OTHER]) is EDU
    assert _autobind.find_installed(alias, None, [WIDE, OTHER]) is WIDE
    assert _autobind.find_installed(alias, None, [OTHER]) is None


def test_add_without_driver_or_auto_install_fails_unbound(machine: Path) -> None:
    assert _autobind.add_device(BDF, None, root=machine) == 1
    rec = _devstate.read_record(BDF)
    assert rec["state"] == "failed"
    assert rec["reason"] == (f"no installed driver claims {BDF} ({EDU_ALIAS}) and no "
                             f"repository has auto-install enabled")
    dev = machine / "sys/bus/pci/devices" / BDF
    assert (dev / "driver_override").read_text() == "(null)\n"
    assert not (dev / "driver").exists()


def test_add_named_driver_not_claiming_device_fails_unbound(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_autobind, "installed_manifests", lambda: [OTHER])
    assert _autobind.add_device(BDF, "nic", root=machine) == 1
    rec = _devstate.read_record(BDF)
    assert rec["state"] == "failed" and "does not claim device" in rec["reason"]
    assert (machine / "sys/bus/pci/devices" / BDF / "driver_override").read_text() == "(null)\n"


def test_add_leaves_kernel_driven_device_alone(machine: Path) -> None:
    drv = machine / "sys/bus/pci/drivers/e1000e"
    drv.mkdir(parents=True)
    (machine / "sys/bus/pci/devices" / BDF / "driver").symlink_to(drv)
    assert _autobind.add_device(BDF, None, root=machine) == 0
    assert _devstate.read_record(BDF) == {}


def test_match_installed_takes_the_driver_udev_rule_1_would_name(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd mode: one unit for every device; the ID tables name the driver, so a device
    a kernel driver took is handed over only when an installed driver claims it."""
    drv = machine / "sys/bus/pci/drivers/e1000e"
    drv.mkdir(parents=True)
    (machine / "sys/bus/pci/devices" / BDF / "driver").symlink_to(drv)
    monkeypatch.setattr(_autobind, "installed_manifests", lambda: [OTHER])
    assert _autobind.add_device(BDF, None, root=machine, match_installed=True) == 0
    assert _devstate.read_record(BDF) == {}  # left alone: nothing installed claims it
    monkeypatch.setattr(_autobind, "installed_manifests", lambda: [WIDE, EDU, OTHER])
    _autobind.add_device(BDF, None, root=machine, match_installed=True)
    # Claimed: the most specific installed driver was chosen and binding was attempted
    # (this fake sysfs has no vfio-pci to bind to, so it is recorded as failed).
    rec = _devstate.read_record(BDF)
    assert rec["driver"] == "edu" and rec["state"] == "failed", rec


def test_unexpected_error_is_recorded_not_left_installing(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[DriverManifest]:
        raise AttributeError("'WheelFile' object has no attribute 'validate_record'")
    monkeypatch.setattr(_autobind, "installed_manifests", broken)
    assert _autobind.add_device(BDF, None, root=machine) == 1
    rec = _devstate.read_record(BDF)
    assert rec["state"] == "failed", rec
    assert rec["reason"].startswith("internal error (AttributeError: 'WheelFile' object has "
                                    "no attribute 'validate_record'); see "), rec
    assert (machine / "sys/bus/pci/devices" / BDF / "driver_override").read_text() == "(null)\n"


def test_add_missing_device(machine: Path) -> None:
    assert _autobind.add_device("0000:09:00.0", None, root=machine) == 1
    assert not (Path(os.environ["UDRIVER_STATE_DIR"]) / "status").exists()


def test_remove_signals_supervisor_and_forgets_device(machine: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _devstate.write_claim(BDF, child.pid, "edu", "supervise")
        _devstate.record_state(BDF, "running", "driver running", driver="edu")
        assert _autobind.remove_device(BDF) == 0
        assert child.wait(5) == -signal.SIGTERM
        assert not _devstate.status_path(BDF).exists()
    finally:
        child.kill()
        child.wait()


def test_remove_with_stale_claim(machine: Path) -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    _devstate.write_claim(BDF, p.pid, "edu", "supervise")
    assert _autobind.remove_device(BDF) == 0
    assert not _devstate.claim_path(BDF).exists()


def test_cli_autobind_without_bdf(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["autobind"]) == 1
    assert capsys.readouterr().err == \
        "error: no device given: `udriver autobind [--driver NAME] BDF`\n"


def test_cli_update_rules(machine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(os.environ["UDRIVER_UDEV_RULES"])
    assert cli_main(["autobind", "--update-rules"]) == 0
    assert capsys.readouterr().out == f"wrote {path}\n"
    text = path.read_text()
    assert "--action remove $kernel" in text and "MODALIAS" not in text
    assert f"UDRIVER_STATE_DIR={os.environ['UDRIVER_STATE_DIR']}" in text


def test_cli_add_detaches_and_worker_logs(machine: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UDRIVER_SYSFS_ROOT", str(machine))
    t0 = time.monotonic()
    assert cli_main(["autobind", "--action", "add", BDF]) == 0
    assert time.monotonic() - t0 < 1.0
    out = capsys.readouterr().out
    log = _autobind.log_path(BDF)
    assert out.startswith(f"{BDF}: autobind worker ") and out.endswith(f", log {log}\n")
    deadline = time.monotonic() + 20
    while _devstate.read_record(BDF).get("state") != "failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _devstate.read_record(BDF)["state"] == "failed"


def test_cli_supervise_without_device(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UDRIVER_DEVICE", raising=False)
    assert cli_main(["supervise"]) == 1
    assert capsys.readouterr().err == \
        "error: no device given: use `--device BDF` or set UDRIVER_DEVICE\n"


# -- systemd mode: ExecStopPost accounting ---------------------------------------------

from udriver.supervise import _run

CRASH = {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "3"}
SEGV = {"SERVICE_RESULT": "core-dump", "EXIT_CODE": "dumped", "EXIT_STATUS": "SEGV"}


@pytest.fixture
def bound(machine: Path) -> Path:
    (machine / "sys/bus/pci/devices" / BDF / "driver_override").write_text("vfio-pci\n")
    (machine / "sys/bus/pci/drivers_probe").write_text("")
    return machine


def test_stop_post_counts_crashes_and_gives_up_on_the_fifth(bound: Path) -> None:
    for i in range(4):
        assert _run.systemd_stop_post(BDF, SEGV if i % 2 else CRASH, root=bound,
                                      now=100.0 + i) == 0
        rec = _devstate.read_record(BDF)
        assert rec["state"] == "restarting" and rec["restarts"] == i + 1
    assert (bound / "sys/bus/pci/devices" / BDF / "driver_override").read_text() == "vfio-pci\n"
    _run.systemd_stop_post(BDF, SEGV, root=bound, now=110.0)
    rec = _devstate.read_record(BDF)
    assert rec["state"] == "failed"
    assert rec["reason"] == "gave up after 5 crashes in 60 s (last: killed by SIGSEGV)"
    # unbind cleared driver_override (sysfs writes do not truncate a plain file: prefix)
    assert (bound / "sys/bus/pci/devices" / BDF / "driver_override").read_text()[0] == "\n"
    with pytest.raises(Exception, match="not starting: gave up after 5 crashes"):
        _run.systemd_pre(BDF, root=bound)


def test_stop_post_old_crashes_leave_the_window(bound: Path) -> None:
    for t in (0.0, 10.0, 20.0, 30.0, 70.0, 80.0):
        _run.systemd_stop_post(BDF, CRASH, root=bound, now=t)
    assert _devstate.read_record(BDF)["state"] == "restarting"


def test_stop_post_clean_stop_is_not_a_crash(bound: Path) -> None:
    _run.systemd_stop_post(BDF, {"SERVICE_RESULT": "success", "EXIT_CODE": "killed",
                                 "EXIT_STATUS": "TERM"}, root=bound, now=1.0)
    rec = _devstate.read_record(BDF)
    assert rec["state"] == "stopped" and _devstate.read_crash_history(BDF) == ([], False)


def test_stop_post_after_device_removal_forgets_it(bound: Path) -> None:
    import shutil
    _devstate.record_state(BDF, "running", "x")
    shutil.rmtree(bound / "sys/bus/pci/devices" / BDF)
    _run.systemd_stop_post(BDF, {"SERVICE_RESULT": "success"}, root=bound, now=1.0)
    assert not _devstate.status_path(BDF).exists()


@pytest.mark.parametrize("env, rc", [
    ({"EXIT_CODE": "exited", "EXIT_STATUS": "7"}, 7),
    ({"EXIT_CODE": "killed", "EXIT_STATUS": "KILL"}, -9),
    ({"EXIT_CODE": "dumped", "EXIT_STATUS": "SIGABRT"}, -6),
    ({"EXIT_CODE": "killed", "EXIT_STATUS": "NOPE"}, -9),
])
def test_returncode_from_systemd_environment(env: dict, rc: int) -> None:
    assert _run._returncode(env) == rc


def test_policy_from_env() -> None:
    assert _run.policy_from_env({}).max_crashes == 5 and _run.policy_from_env({}).window == 60
    p = _run.policy_from_env({"UDRIVER_MAX_CRASHES": "3", "UDRIVER_CRASH_WINDOW": "300"})
    assert (p.max_crashes, p.window) == (3, 300.0)


def test_policy_from_env_rejects_garbage() -> None:
    from udriver.errors import ConfigError
    with pytest.raises(ConfigError, match="invalid UDRIVER_MAX_CRASHES/UDRIVER_CRASH_WINDOW"):
        _run.policy_from_env({"UDRIVER_CRASH_WINDOW": "soon"})
    with pytest.raises(ConfigError):
        _run.policy_from_env({"UDRIVER_MAX_CRASHES": "0"})
