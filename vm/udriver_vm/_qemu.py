"""The QEMU side of a guest: prerequisites, the run folders, and the command line.

Rules of the command line :func:`qemu_argv` builds (``qemu-system-x86_64(1)``):

* ``-accel tcg`` always (``/dev/kvm`` here is a nested PVM that cannot run a stock kernel),
  ``-machine q35``, one CPU, no default devices, no network (``-nic none``), no reboot.
* The uncompressed ``vmlinux`` boots through its PVH entry note; the kernel command line has
  ``intel_iommu=on`` (vfio-pci needs IOMMU groups) and the work folder's path.
* ``-device intel-iommu,intremap=on`` comes before any other device: the IOMMU must exist
  before the devices behind it.
* ttyS0 is the console log file; ttyS1 is a socket on which a byte wakes the guest agent.
* The host root (or a booted system's root) and the work folder are 9p shares; the work
  folder is mounted at the same path in the guest.
* ``edu`` devices without an id get ``edu0``, ``edu1``...; ``nvme`` files become controllers
  ``nvme0``... with serials ``udrv0001``...; root ports are ``rp1..rpN`` (chassis 1..N).

Run folders live under :data:`RUN_ROOT` (``<checkout>/vm/.work``, ignored by git); kept ones
(failed runs, ``UDRIVER_VM_KEEP=1``) older than two days are pruned at the next boot.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import kernels
from ._paths import checkout_root
from .kernels import KernelPaths

if TYPE_CHECKING:
    from .harness import Guest

__all__ = [
    "QEMU",
    "RUN_ROOT",
    "console_tail",
    "prerequisites_missing",
    "prune_old_runs",
    "qemu_argv",
]

QEMU = "qemu-system-x86_64"
RUN_ROOT = checkout_root() / "vm" / ".work"
"""Where each guest gets its run folder (console log, QEMU command line, shared folder)."""


def prune_old_runs(max_age: float = 2 * 86400) -> None:
    """Delete run folders kept by failed runs more than ``max_age`` seconds ago."""
    if not RUN_ROOT.is_dir():
        return
    now = time.time()
    for d in RUN_ROOT.iterdir():
        try:
            if now - d.stat().st_mtime > max_age:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def prerequisites_missing(kernel: str | None) -> str | None:
    """Return why a guest with ``kernel`` cannot boot here, or None if it can.

    ``kernel=None`` checks only the tools (QEMU, busybox), not the cached kernels.
    """
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-system-x86)"
    if not Path("/bin/busybox").is_file():
        return "/bin/busybox not found (apt-get install busybox-static)"
    if kernel is None:
        return None
    try:
        kernels.kernel_paths(kernel)
    except kernels.KernelFetchError as e:
        return str(e)
    return None


def console_tail(rundir: Path, console_log: Path, n: int = 40) -> str:
    """The last ``n`` console lines and QEMU's own output, for an error message."""
    try:
        lines = console_log.read_bytes().decode(errors="replace").splitlines()[-n:]
    except OSError:
        lines = []
    text = f"\n--- console tail ({console_log}) ---\n" + "\n".join(lines)
    try:
        qemu = (rundir / "qemu.out").read_text(errors="replace").strip()
    except OSError:
        qemu = ""
    return text + (f"\n--- QEMU output ---\n{qemu[-2000:]}" if qemu else "")


def qemu_argv(g: Guest, kp: KernelPaths, initrd: Path, *, qmp: Path, wake: Path) -> list[str]:
    """The QEMU command line of guest ``g`` (the rules in the module docstring)."""
    root = "/"
    boot = []
    if g.system is not None:
        root = str(g.system)
        boot = [f"UDRIVER_MODULES={kp.version}", "UDRIVER_INIT=systemd"]
    append = " ".join(
        [
            "console=ttyS0",
            "intel_iommu=on",  # the emulated VT-d unit; vfio-pci needs IOMMU groups
            "panic=-1",
            "loglevel=4",
            "mitigations=off",
            "tsc=reliable",
            # Under a loaded TCG host the 6.1 kernel's IO-APIC timer self-test can fail
            # through interrupt remapping and panic the boot; the timer works regardless.
            "no_timer_check",
            "rdinit=/init",
            f"UDRIVER_WORK={g.guest_workdir}",
            f"UDRIVER_HOSTCACHE={g.host_cache}",
            *boot,
            g.extra_cmdline,
        ]
    ).strip()
    argv = [
        QEMU, "-accel", "tcg", "-machine", "q35", "-cpu", g.cpu, "-smp", "1",
        "-m", str(g.mem_mb), "-nodefaults", "-no-user-config", "-display", "none",
        "-no-reboot", "-nic", "none",
        "-kernel", str(kp.vmlinux), "-initrd", str(initrd), "-append", append,
        "-serial", f"file:{g.console_log}",
        # ttyS1: a byte from the host wakes the agent's loop (see wake()).
        "-chardev", f"socket,id=wake,path={wake},server=on,wait=off",
        "-serial", "chardev:wake",
        "-qmp", f"unix:{qmp},server=on,wait=off",
        # The IOMMU must exist before the devices behind it.
        "-device", "intel-iommu,intremap=on",
        "-virtfs",
        f"local,path={root},mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={g.workdir},mount_tag=work,security_model=none",
    ]
    if g.system is not None:
        modules = f"local,path={kp.modules_dir},mount_tag=modules,security_model=none"
        argv += ["-virtfs", modules + ",readonly=on"]
    n_edu = 0
    for spec in g.devices:
        driver = spec.split(",", 1)[0]
        if "id=" not in spec and driver == "edu":
            spec = f"{spec},id=edu{n_edu}"
            n_edu += 1
        argv += ["-device", spec]
    for i, path in enumerate(g.nvme):
        argv += ["-drive", f"file={path},if=none,id=nvmedrv{i},format=raw",
                 "-device", f"nvme,serial=udrv{i + 1:04d},drive=nvmedrv{i},id=nvme{i}"]
    for i in range(1, g.root_ports + 1):
        argv += ["-device", f"pcie-root-port,id=rp{i},chassis={i},slot={i}"]
    return argv + g.qemu_args
