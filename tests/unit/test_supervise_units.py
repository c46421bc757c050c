"""The systemd unit (checked by systemd-analyze) and the generated udev rules."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from udriver.errors import ConfigError
from udriver.manifest import DriverManifest
from udriver.supervise._systemd import AUTOBIND_TEMPLATE, UNIT_TEMPLATE, unit_text
from udriver.supervise._udev import autobind_command, render_rules

EDU = DriverManifest("udriver-edu", "0.1.0", "edu", "udriver_edu:Edu", (1, 0),
                     ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))
WIDE = DriverManifest("udriver-any1234", "2.0", "any1234", "a:B", (1, 0),
                      ("pci:v00001234d*sv*sd*bc*sc*i*",))
CMD = "/usr/bin/udriver autobind"


def unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_unit_has_the_sandbox_and_restart_policy() -> None:
    s = unit_settings(unit_text(Path("/opt/u/bin")))
    assert s["ExecStart"] == ["!/opt/u/bin/udriver supervise --systemd-exec --device %I"]
    assert s["ExecStartPre"] == ["+/opt/u/bin/udriver supervise --systemd-pre --device %I"]
    assert s["ExecStopPost"] == ["+/opt/u/bin/udriver supervise --systemd-stop-post --device %I"]
    assert s["Restart"] == ["on-failure"]
    assert s["StartLimitIntervalSec"] == ["60"] and s["StartLimitBurst"] == ["5"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "read-only"), ("ProtectKernelTunables", "yes"), ("PrivateTmp", "yes"), ("PrivateNetwork", "yes"),
                       ("RestrictAddressFamilies", "AF_UNIX"),
                       ("SystemCallArchitectures", "native"), ("DevicePolicy", "closed")]:
        assert s[key] == [value], key
    # No shared identity: the driver drops to the device's own uid (supervise._uids);
    # User=/DynamicUser= would give every instance the same one.
    assert "User" not in s and "DynamicUser" not in s
    assert "/dev/vfio/vfio rw" in s["DeviceAllow"]
    assert s["LimitMEMLOCK"] == ["256M"]
    assert "CAP_SYS_ADMIN" not in s["CapabilityBoundingSet"][0]
    assert "@bindir@" not in unit_text(Path("/x"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", [UNIT_TEMPLATE, AUTOBIND_TEMPLATE])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "udriver"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / name).write_text(unit_text(bindir, name))
    # FILE:NAME verifies the template as the instance for a real PCI address.
    instance = name.replace("@", "@0000:01:00.0")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"./{name}:{instance}"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""


def test_autobind_unit_runs_the_worker() -> None:
    s = unit_settings(unit_text(Path("/opt/u/bin"), AUTOBIND_TEMPLATE))
    assert s["ExecStart"] == [("/opt/u/bin/udriver autobind --worker --match-installed "
                               "--action add %I")]
    assert s["Type"] == ["oneshot"]
    assert s["ConditionPathExists"] == ["/sys/bus/pci/devices/%I"]


def test_autobind_unit_is_sandboxed() -> None:
    """Issue 9, case 11: the worker that downloads and unpacks ran as root, unconfined."""
    s = unit_settings(unit_text(Path("/opt/u/bin"), AUTOBIND_TEMPLATE))
    assert s["ExecStartPre"] == ["-+/sbin/modprobe -a vfio_iommu_type1 vfio-pci"]
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]
    assert s["ReadWritePaths"] == ["-/etc/udev/rules.d /sys/bus/pci /sys/devices"]
    assert s["StateDirectory"] == s["RuntimeDirectory"] == ["udriver"]
    assert s["RuntimeDirectoryPreserve"] == ["yes"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert s["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "read-only"), ("PrivateTmp", "yes"),
                       ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
                       ("DevicePolicy", "closed"), ("RestrictNamespaces", "yes"),
                       ("MemoryDenyWriteExecute", "yes"), ("PrivateIPC", "yes")]:
        assert s[key] == [value], key


def exposure(tmp_path: Path, name: str) -> float:
    (tmp_path / name).write_text(unit_text(Path("/usr/bin"), name))
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", name],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    [line] = [x for x in r.stdout.splitlines() if "Overall exposure level" in x]
    return float(line.split(": ", 1)[1].split()[0])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    """`systemd-analyze security` (0 safe .. 10 unsafe): the autobind unit was 9.6 before
    its sandbox. udriver@ scores 1.8; it would be 1.4 with User=, but the driver's uid is
    set by the process itself (after opening VFIO), which systemd-analyze cannot see."""
    assert exposure(tmp_path, AUTOBIND_TEMPLATE) <= 2.1
    assert exposure(tmp_path, UNIT_TEMPLATE) <= 1.8


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_would_catch_a_bad_key(tmp_path: Path) -> None:
    (tmp_path / "udriver@.service").write_text(unit_text(Path("/bin")) + "\nBogusKey=1\n")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        "./udriver@.service:udriver@0000:01:00.0.service"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert "Unknown key 'BogusKey'" in r.stderr


def test_rules_for_installed_drivers_most_specific_last() -> None:
    text = render_rules([EDU, WIDE], auto_install=False, command=CMD,
                        state_dir=Path("/var/lib/udriver"))
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        ('ACTION=="add", SUBSYSTEM=="pci", ENV{MODALIAS}=="pci:v00001234d*sv*sd*bc*sc*i*", '
        'ENV{UDRIVER_DRIVER}="any1234"'),
        ('ACTION=="add", SUBSYSTEM=="pci", ENV{MODALIAS}=="pci:v00001234d000011E8sv*sd*bc*sc*i*", '
        'ENV{UDRIVER_DRIVER}="edu"'),
        ('ACTION=="add", SUBSYSTEM=="pci", ENV{UDRIVER_DRIVER}=="?*", '
        'RUN+="/usr/bin/setsid -f /usr/bin/udriver autobind --worker --action add '
        '--driver $env{UDRIVER_DRIVER} $kernel"'),
        ('ACTION=="remove", SUBSYSTEM=="pci", TEST=="/var/lib/udriver/status/$kernel.json", '
        'RUN+="/usr/bin/udriver autobind --action remove $kernel"'),
    ]


def test_catch_all_rule_only_with_auto_install() -> None:
    on = render_rules([EDU], auto_install=True, command=CMD, state_dir=Path("/s"))
    off = render_rules([EDU], auto_install=False, command=CMD, state_dir=Path("/s"))
    catch_all = ('ACTION=="add", SUBSYSTEM=="pci", ENV{UDRIVER_DRIVER}!="?*", '
                 'RUN+="/usr/bin/setsid -f /usr/bin/udriver autobind --worker --action add '
                 '$kernel"')
    assert catch_all in on.splitlines() and catch_all not in off


def test_systemd_rules_start_the_autobind_unit() -> None:
    text = render_rules([EDU], auto_install=True, command=CMD, state_dir=Path("/s"),
                        systemd=True)
    runs = [line for line in text.splitlines() if "RUN+=" in line]
    start = 'RUN+="/bin/systemctl --no-block start udriver-autobind@$kernel.service"'
    assert [r.endswith(start) for r in runs] == [True, True, False], runs
    assert 'ENV{UDRIVER_DRIVER}=="?*"' in runs[0] and 'ENV{UDRIVER_DRIVER}!="?*"' in runs[1]
    assert "setsid" not in text
    assert runs[2] == ('ACTION=="remove", SUBSYSTEM=="pci", TEST=="/s/status/$kernel.json", '
                       'RUN+="/usr/bin/udriver autobind --action remove $kernel"')


def test_no_drivers_no_auto_install_has_no_add_match() -> None:
    text = render_rules([], auto_install=False, command=CMD, state_dir=Path("/s"))
    assert "MODALIAS" not in text and "!=" not in text


def test_autobind_command_passes_overrides() -> None:
    cmd = autobind_command({"UDRIVER_STATE_DIR": "/tmp/st", "HOME": "/root"})
    assert cmd.startswith("/usr/bin/env UDRIVER_STATE_DIR=/tmp/st /")
    assert cmd.endswith("/udriver autobind") and "HOME" not in cmd


def test_autobind_command_rejects_unsafe_values() -> None:
    with pytest.raises(ConfigError, match="cannot put the setting 'UDRIVER_STATE_DIR=/a b'"):
        autobind_command({"UDRIVER_STATE_DIR": "/a b"})
    with pytest.raises(ConfigError, match="cannot put the state directory"):
        render_rules([], auto_install=False, command=CMD, state_dir=Path('/x"y'))


def test_cli_installs_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from udriver.cli import main
    assert main(["autobind", "--install-unit", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (f"wrote {tmp_path / 'udriver@.service'}\n"
                                       f"wrote {tmp_path / 'udriver-block@.service'}\n"
                                       f"wrote {tmp_path / 'udriver-net@.service'}\n"
                                       f"wrote {tmp_path / 'udriver-autobind@.service'}\n")
    assert "@bindir@" not in (tmp_path / "udriver-autobind@.service").read_text()
    text = (tmp_path / "udriver@.service").read_text()
    assert "@bindir@" not in text and "/udriver supervise --systemd-exec --device %I" in text


def test_rules_name_ublk_disks_only_when_a_driver_serves_a_block_device() -> None:
    """Rule 5: systemd 252's persistent-storage rules skip ublkb*, so udriver gives its ublk
    disks the by-uuid/by-label links (and the watch after mkfs) itself, and only when an
    installed driver declares the block bridge."""
    nvme = DriverManifest("udriver-nvme", "0.1.0", "nvme", "udriver_nvme:NvmeDriver", (1, 1),
                          ("pci:v*d*sv*sd*bc01sc08i02",), bridge="block")
    net = dataclasses.replace(nvme, package="udriver-e1000e", driver="e1000e", bridge="net")
    plain = render_rules([EDU, net], auto_install=False, command=CMD, state_dir=Path("/s"))
    assert "ublkb" not in plain
    text = render_rules([EDU, nvme], auto_install=False, command=CMD, state_dir=Path("/s"))
    assert text.startswith(plain.split("# 1.")[0])
    ublk = [line for line in text.splitlines() if "ublkb" in line and not line.startswith("#")]
    assert ublk == [
        ('SUBSYSTEM=="block", KERNEL=="ublkb*", ACTION!="remove", OPTIONS+="watch", '
        'IMPORT{builtin}="blkid"'),
        ('SUBSYSTEM=="block", KERNEL=="ublkb*", ENV{ID_FS_USAGE}=="filesystem|other|crypto", '
        'ENV{ID_FS_UUID_ENC}=="?*", SYMLINK+="disk/by-uuid/$env{ID_FS_UUID_ENC}"'),
        ('SUBSYSTEM=="block", KERNEL=="ublkb*", ENV{ID_FS_USAGE}=="filesystem|other", '
        'ENV{ID_FS_LABEL_ENC}=="?*", SYMLINK+="disk/by-label/$env{ID_FS_LABEL_ENC}"'),
    ]
    # The PCI rules are unchanged by it, and the block rules come after them.
    assert text.index("# 4.") < text.index("# 5.")
