"""The template units shipped in `udriver/data/`: `udriver@.service` (runs a device's
driver) and `udriver-autobind@.service` (the hotplug worker, started by the udev rules).

`unit_text` fills in `@bindir@` (the directory of the `udriver` program) so that the units
run the udriver this machine has installed; `install_unit` writes them where systemd looks
for administrator units and reloads systemd when it is running.

A driver that declares a kernel bridge (`[tool.udriver] bridge`) runs under a variant of
`udriver@.service` generated here (`BRIDGE_UNITS`): `udriver-block@.service` adds the NBD
and ublk device nodes, CAP_SYS_ADMIN (drivers/block/nbd.c checks it on every ioctl;
ublk's control commands need it too) and loads the modules before it starts;
`udriver-net@.service` adds /dev/net/tun, CAP_NET_ADMIN (TUNSETIFF, SIOCSIFHWADDR,
SIOCSIFFLAGS) and the host's network namespace (the interface must appear where the
administrator sees it, so PrivateNetwork= is off). Nothing else differs, and
`udriver@.service` itself grants no bridge.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

__all__ = [
    "AUTOBIND_TEMPLATE",
    "BRIDGE_UNITS",
    "UNIT_TEMPLATE",
    "bindir",
    "bridge_variant",
    "install_unit",
    "service_unit",
    "systemd_running",
    "unit_text",
]

log = logging.getLogger(__name__)

UNIT_TEMPLATE = "udriver@.service"
AUTOBIND_TEMPLATE = "udriver-autobind@.service"

BRIDGE_UNITS = {"block": "udriver-block@.service", "net": "udriver-net@.service"}
"""Kernel bridge (`udriver.manifest.BRIDGE_KINDS`) -> the template unit that grants it."""

_CONDITION = "ConditionPathExists=/sys/bus/pci/devices/%I"


def _modules(*names: str) -> str:
    """[Unit] lines that load `names` before the unit starts, through systemd's own
    `modprobe@.service` (systemd >= 245; it ignores a module the kernel lacks, as 6.1 lacks
    ublk_drv). An ExecStartPre= would be too late: systemd resolves DeviceAllow= (node
    paths and /proc/devices names such as `block-nbd`) when it sets the unit's cgroup up,
    before any Exec line, and leaves out what does not exist yet. Loading the modules
    there made the first start after boot fail with EPERM on /dev/ublk-control, and only
    the restart work (tests/vm/test_nvme_system.py found it)."""
    units = " ".join(f"modprobe@{n}.service" for n in names)
    return (f"\n# The bridge's kernel modules, loaded before the device policy is set up\n"
            f"# (udriver.supervise._systemd._modules says why not in ExecStartPre).\n"
            f"Wants={units}\nAfter={units}")


_CAPS = "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_SYS_RESOURCE"
_GRANTS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    # bridge: (capability, lines after `DeviceAllow=char-vfio rw`, replaced lines)
    "block": ("CAP_SYS_ADMIN",
              ["# The block bridge: NBD (linux/nbd.h) and ublk (linux/ublk_cmd.h) nodes, opened",
               "# by the root parent only (the driver receives a socket or an fd).",
               "DeviceAllow=block-nbd rw",
               "DeviceAllow=/dev/ublk-control rw",
               "DeviceAllow=char-ublk-char rw"],
              {_CONDITION: _CONDITION + _modules("nbd", "ublk_drv"),
               # ublk's server is an io_uring (linux/ublk_cmd.h: FETCH_REQ and
               # COMMIT_AND_FETCH_REQ are URING_CMDs on /dev/ublkcN); systemd's
               # @system-service lacks io_uring_*. Only the block unit allows them: what
               # io_uring then does is not seen by this filter, so drivers that need no
               # ublk stay without it.
               "SystemCallFilter=@system-service @setuid ioctl mmap":
               "# io_uring for ublk's server (block unit only; see udriver.supervise._systemd).\n"
               "SystemCallFilter=@system-service @setuid ioctl mmap io_uring_setup "
               "io_uring_enter"}),
    "net": ("CAP_NET_ADMIN",
            ["# The net bridge: the TUN/TAP clone device (linux/if_tun.h), opened by the root",
             "# parent only (the driver receives the tap queue fd).",
             "DeviceAllow=/dev/net/tun rw"],
            {_CONDITION: _CONDITION + _modules("tun"),
             "PrivateNetwork=yes":
             "# The TAP interface must appear in the host's network namespace.\n"
             "PrivateNetwork=no"}),
}


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return Path("/run/systemd/system").is_dir()


def bindir() -> Path:
    """Where the `udriver` program is (next to this Python when not on PATH)."""
    exe = shutil.which("udriver")
    return Path(exe).parent if exe else Path(sys.executable).parent


def service_unit(bdf: str, bridge: str | None) -> str:
    """The unit that runs `bdf`'s driver: `udriver@<bdf>.service`, or the bridge's variant."""
    return (BRIDGE_UNITS[bridge] if bridge else UNIT_TEMPLATE).replace("@", f"@{bdf}")


def bridge_variant(text: str, bridge: str) -> str:
    """`udriver@.service`'s text turned into the unit for `bridge` (module docstring).

    The variants are shipped as files next to the template (so that the .deb installs them
    like any unit); a unit test checks that they equal this function's output.

    Raises:
        ValueError: the template lacks a line the variant replaces.
    """
    cap, lines, replace = _GRANTS[bridge]
    for old, new in replace.items():
        if old not in text:
            raise ValueError(f"{UNIT_TEMPLATE} has no line {old!r}")
        text = text.replace(old, new, 1)
    text = text.replace(_CAPS, f"{_CAPS} {cap}", 1)
    text = text.replace("DeviceAllow=char-vfio rw\n",
                        "DeviceAllow=char-vfio rw\n" + "".join(f"{x}\n" for x in lines), 1)
    return text.replace("Description=udriver user-mode driver for PCI device %I",
                        f"Description=udriver user-mode driver for PCI device %I ({bridge} "
                        f"bridge)", 1)


def unit_text(bin_dir: Path | None = None, name: str = UNIT_TEMPLATE) -> str:
    """The template unit `name` with `@bindir@` replaced."""
    text = resources.files("udriver").joinpath("data", name).read_text()
    return text.replace("@bindir@", str(bin_dir or bindir()))


def install_unit(dest: Path = Path("/etc/systemd/system")) -> list[Path]:
    """Write the template units (the driver's, its bridge variants, autobind's) to `dest` and `systemctl daemon-reload` if systemd is PID 1.

    Raises:
        OSError: `dest` is not writable.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in (UNIT_TEMPLATE, *BRIDGE_UNITS.values(), AUTOBIND_TEMPLATE):
        path = dest / name
        path.write_text(unit_text(name=name))
        log.info("installed %s", path)
        out.append(path)
    if systemd_running():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return out
