"""Boot a Debian kernel under QEMU (TCG) with an IOMMU and ``edu`` devices; run commands in it.

API::

    from vm.harness import Guest

    with Guest(kernel="6.1", devices=["edu"], root_ports=2, mem_mb=1024,
               qemu_args=[], udev=False) as g:
        r = g.run("udriver --version", timeout=60)   # bash script, as root, cwd /, env=, cwd=
        r.rc, r.stdout, r.stderr          # r.check() raises GuestCommandError if rc != 0
        job = g.run_bg("sleep 5")         # job.pid (guest pid), job.wait(timeout) -> result,
        job.kill()                        #   job.poll() -> result or None
        g.qmp("device_add", driver="edu", bus="rp1", id="edu1")   # -> QMP reply dict
        g.wait_qmp_event("DEVICE_DELETED", device="edu1")           # after device_del
        g.qmp_events()                    # QMP events received so far (and forgets them)
        g.edu_bdfs()                      # ["0000:00:03.0", ...] read from the guest's /sys
        g.dmesg()                         # guest kernel log so far
        g.workdir                         # host Path of a folder shared read-write...
        g.guest_workdir                   # ...and its path in the guest (the SAME path string)
        g.kernel_version                  # guest `uname -r`
        g.boot_seconds                    # QEMU start -> first command possible
        g.console()                       # serial console so far (also g.console_log)
        g.reset_devices()                 # unplug hot-added devices, unbind every edu
        g.drop_caches()                   # see host files changed after the guest read them
        g.udev_reload()                   # udev=True: after writing /etc/udev/rules.d/*
        g.hotplug_nvme(path, "nvme1", bus="rp1")  # QEMU nvme backed by host file `path`

    ``Guest(nvme=[path, ...])`` attaches one QEMU ``nvme`` controller per host file at boot
    (``-drive file=PATH,if=none,format=raw`` + ``-device nvme,serial=udrv000N``), ids
    ``nvme0``, ``nvme1``... on the root bus, each in its own IOMMU group.

Import it as ``from vm.harness import Guest`` (pytest puts ``tests/`` on ``sys.path``); the
pytest fixtures ``guest``, ``guest_61``, ``guest_612``, ``vm_pool`` are in ``_fixtures.py``.

The guest (the rules this module keeps):

* ``-accel tcg`` always (``/dev/kvm`` here is a nested PVM that cannot run a stock kernel),
  ``-machine q35``, ``-device intel-iommu,intremap=on`` before any other device, ``-nic none``,
  the uncompressed ``vmlinux`` via its PVH entry, kernel cmdline ``intel_iommu=on``.
* The host's ``/`` is the read-only lower layer of an overlayfs with a tmpfs upper layer, so the
  guest sees the checkout, the host's ``python3`` and the editable udriver install at the same
  paths, and its writes (``/etc/udriver``, ``/var/lib/udriver``, ``/tmp``...) never reach the
  host. ``/run`` and ``/dev/shm`` are fresh tmpfs; the kernel's own modules are bind-mounted at
  ``/lib/modules/$(uname -r)``, so ``modprobe`` works; the host's kmod honours the softdep, so
  ``modprobe vfio-pci`` also loads ``vfio_iommu_type1`` (checked on 6.1 and 6.12; only busybox
  modprobe needs it loaded explicitly). ``PATH`` starts with the directory of the host's
  ``python3`` (so ``python3`` and the ``udriver`` console script are the host's). Only ``lo``
  exists, and it is up.
* The host root is mounted with 9p ``cache=loose`` (about 2x faster Python start-up): files the
  guest already read do not change in the guest when the host rewrites them. Put per-test files
  in ``g.workdir`` (no caching) or call ``g.drop_caches()``; ``host_cache="none"`` turns it off.
* The work folder is a writable 9p share mounted at the same path as on the host. Commands are
  files ``cmd/<n>.sh`` in it; the agent loop (stage 2, ``agent.sh``, bash as PID 1) looks at
  ``cmd/`` when the host sends a newline on the guest's ``ttyS1`` (a QEMU socket chardev) and
  at least every second (an idle guest costs <1 % of a host core, instead of ~11 % when
  polling every 50 ms), runs each command as a job in its own process group (``set -m``), and
  writes ``<n>.out``, ``<n>.err``, ``<n>.pid`` and finally ``<n>.rc``.
* Every wait has a timeout. A command that times out is killed (its process group) and raises
  :class:`GuestTimeout`. If QEMU dies, :class:`GuestDied` carries the tail of the console.
* Exit: the agent flushes and powers off through ``/proc/sysrq-trigger``; QEMU is killed if it
  has not exited after 15 s. The run folder (console log ``console.log``, QEMU command line,
  the shared work folder) is deleted after a clean exit and kept, with its path logged, after an
  exception or when ``UDRIVER_VM_KEEP=1``; kept folders older than two days are pruned at the
  next boot.
* ``root_ports=N`` adds ``pcie-root-port`` ids ``rp1..rpN`` (chassis 1..N) for hotplug with
  ``g.qmp("device_add", driver="edu", bus="rp1", id="edu1")`` and ``device_del``.
* ``udev=True`` starts ``systemd-udevd`` (unpacked from Debian's ``udev`` .deb by
  :mod:`kernels`, nothing installed on the host) after ``switch_root``, with the package's
  default rules, and waits until it answers. There is NO coldplug: devices present at boot get
  no ``add`` event unless a test runs ``udevadm trigger --action=add ...; udevadm settle``.
  Write rules to ``/etc/udev/rules.d`` in the guest with ``g.run`` and call ``g.udev_reload()``.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import kernels as _kernels
from ._agent import agent_script, systemd_agent
from ._errors import GuestCommandError, GuestDied, GuestError, GuestTimeout
from ._initramfs import build_initramfs
from ._jobs import BgJob, CommandResult
from ._qmp import Qmp

__all__ = [
    "BgJob",
    "CommandResult",
    "Guest",
    "GuestCommandError",
    "GuestDied",
    "GuestError",
    "GuestTimeout",
    "prerequisites_missing",
]

_log = logging.getLogger("udriver.vm")

QEMU = "qemu-system-x86_64"
_POLL = 0.02
_RUN_ROOT = Path(__file__).resolve().parent / ".work"
_counter = itertools.count(1)


def _prune_old_runs(max_age: float = 2 * 86400) -> None:
    """Delete run folders kept by failed runs more than ``max_age`` seconds ago."""
    if not _RUN_ROOT.is_dir():
        return
    now = time.time()
    for d in _RUN_ROOT.iterdir():
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
        _kernels.kernel_paths(kernel)
    except _kernels.KernelFetchError as e:
        return str(e)
    return None


class Guest:
    """One booted guest; see the module docstring. Use it as a context manager."""

    def __init__(
        self,
        kernel: str = "6.1",
        devices: list[str] | tuple[str, ...] = ("edu",),
        root_ports: int = 0,
        mem_mb: int = 1024,
        qemu_args: list[str] | tuple[str, ...] = (),
        udev: bool = False,
        *,
        boot_timeout: float = 180.0,
        cmdline: str = "",
        keep: bool | None = None,
        host_cache: str = "loose",
        cpu: str = "max",
        system: Path | None = None,
        nvme: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Describe a guest; nothing starts before ``__enter__``/``start``.

        Args:
            kernel: "5.10", "6.1", "6.12" or "7.2" (see :mod:`kernels`).
            devices: ``-device`` specs; "edu" gets ids edu0, edu1... unless one is given.
            root_ports: number of hotplug-capable ``pcie-root-port`` (ids rp1..rpN).
            mem_mb: guest RAM.
            qemu_args: extra QEMU arguments, appended last.
            udev: start systemd-udevd in the guest.
            boot_timeout: seconds from QEMU start to the agent being ready.
            cmdline: extra kernel command line words.
            keep: keep the run folder even after a clean exit (default: $UDRIVER_VM_KEEP).
            host_cache: 9p ``cache=`` mode for the read-only host root. "loose" (default) is
                several times faster but does not see host files changed after the guest read
                them; call :meth:`drop_caches` after rewriting a file the guest already read,
                or pass "none".
            cpu: QEMU ``-cpu`` model.
            system: boot this Debian root directory (see :mod:`vm.system`) with systemd as
                PID 1 instead of the host's root with the agent as PID 1; ``udev`` is then
                ignored (the system runs its own udevd, with coldplug). Commands run from
                the agent service, so the host's Python and checkout are NOT visible.
            nvme: host files (raw images) to attach as QEMU ``nvme`` controllers at boot,
                serial numbers ``udrv0001``, ``udrv0002``... (namespace 1 = the whole file).
        """
        self.kernel = kernel
        self.devices = list(devices)
        self.root_ports = root_ports
        self.mem_mb = mem_mb
        self.qemu_args = list(qemu_args)
        self.udev = udev
        self.boot_timeout = boot_timeout
        self.extra_cmdline = cmdline
        self.host_cache = host_cache
        self.cpu = cpu
        self.system = system
        self.nvme = [str(p) for p in nvme]
        self.keep = bool(os.environ.get("UDRIVER_VM_KEEP")) if keep is None else keep
        self.kernel_version = ""
        self.boot_seconds = 0.0
        self.rundir = _RUN_ROOT / f"{kernel}-{os.getpid()}-{next(_counter)}"
        self.workdir = self.rundir / "share"
        self.guest_workdir = str(self.workdir)
        self.console_log = self.rundir / "console.log"
        self._cmd_dir = self.workdir / "cmd"
        self._qmp_path = self.rundir / "qmp.sock"
        self._wake_path = self.rundir / "wake.sock"
        self._wake: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp = Qmp(self._qmp_path, self._tail)
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._hotplugged: list[str] = []
        self._blockdevs: list[str] = []

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)

    def start(self) -> None:
        """Boot the guest and wait until it runs commands.

        Raises:
            GuestError: prerequisites missing or QEMU failed to start.
            GuestTimeout: the agent was not ready within ``boot_timeout``.
            GuestDied: QEMU exited during boot.
        """
        why = prerequisites_missing(self.kernel)
        if why:
            raise GuestError(f"cannot boot kernel {self.kernel}: {why}")
        kp = _kernels.kernel_paths(self.kernel)
        if len(str(self._qmp_path)) > 100:  # sun_path is 108 bytes
            self._qmp_path = Path(f"/tmp/udvm-{os.getpid()}-{id(self)}.qmp")
            self._wake_path = Path(f"/tmp/udvm-{os.getpid()}-{id(self)}.wake")
            self._qmp = Qmp(self._qmp_path, self._tail)
        _prune_old_runs()
        shutil.rmtree(self.rundir, ignore_errors=True)
        self._cmd_dir.mkdir(parents=True)
        if self.system is not None:
            script, unit = systemd_agent(work=self.guest_workdir, ready_timeout=self.boot_timeout)
            (self.workdir / "agent.sh").write_text(script)
            (self.workdir / "udriver-test-agent.service").write_text(unit)
        else:
            udev_root = _kernels.fetch_udev() if self.udev else None
            (self.workdir / "agent.sh").write_text(
                agent_script(
                    work=self.guest_workdir,
                    pybin=str(Path(sys.executable).parent),
                    kernel=kp,
                    udev_root=udev_root,
                )
            )
        initrd = build_initramfs(kp.modules_dir, kp.vmlinux.parent)
        argv = self._qemu_argv(kp, initrd)
        (self.rundir / "qemu.cmdline").write_text(shlex.join(argv) + "\n")
        t0 = time.monotonic()
        try:
            with open(self.rundir / "qemu.out", "wb") as out:
                # Own session: a Ctrl-C on the terminal reaches pytest, which then shuts the
                # guest down cleanly. setpriv --pdeathsig (prctl(2) PR_SET_PDEATHSIG): QEMU
                # gets SIGKILL if the thread that started it dies, e.g. pytest killed outright.
                self._proc = subprocess.Popen(
                    ["setpriv", "--pdeathsig", "KILL", *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as e:
            raise GuestError(f"cannot start {QEMU}: {e}") from e
        try:
            self._wait_for(
                lambda: (self.workdir / "ready").exists(), self.boot_timeout, "guest boot"
            )
            self.boot_seconds = time.monotonic() - t0
            self.kernel_version = (self.workdir / "ready").read_text().split()[0]
            self._qmp.connect()
            self._wake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._wake.connect(str(self._wake_path))
        except BaseException:
            self.close(failed=True)
            raise
        _log.info(
            "guest %s (%s) ready in %.1f s; run folder %s",
            self.kernel, self.kernel_version, self.boot_seconds, self.rundir,
        )

    def close(self, failed: bool = False) -> None:
        """Shut the guest down (clean poweroff, else kill) and tidy the run folder."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                if not (self.workdir / "ready").exists():
                    raise OSError("no agent to shut down")  # boot failed: nothing to flush
                (self.workdir / "shutdown").touch()
                self.wake()
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                _log.warning("guest %s did not power off; killing QEMU", self.kernel)
                proc.kill()
                proc.wait(timeout=10)
        self._qmp.close()
        if failed or self.keep:
            _log.warning("guest %s: run folder kept at %s", self.kernel, self.rundir)
        else:
            shutil.rmtree(self.rundir, ignore_errors=True)
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        if self._qmp_path.parent != self.rundir:
            self._qmp_path.unlink(missing_ok=True)
            self._wake_path.unlink(missing_ok=True)
        self._proc = None

    @property
    def alive(self) -> bool:
        """True while QEMU runs."""
        return self._proc is not None and self._proc.poll() is None

    def console(self) -> str:
        """Return the serial console output so far (kernel messages and stage 1)."""
        try:
            return self.console_log.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    # --- commands -----------------------------------------------------------------------

    def wake(self) -> None:
        """Nudge the agent to look at ``cmd/`` now (it also looks every second by itself)."""
        if self._wake is not None:
            try:
                self._wake.sendall(b"\n")
            except OSError:
                pass  # the agent's 1 s poll still finds the request

    def run_bg(self, cmd: str, *, env: dict[str, str] | None = None, cwd: str = "/") -> BgJob:
        """Start ``cmd`` (a bash script) in the guest as root and return at once.

        Raises:
            GuestDied: QEMU is not running.
        """
        if not self.alive:
            raise GuestDied(f"guest {self.kernel} is not running{self._tail()}")
        with self._ids_lock:
            job_id = str(next(self._ids))
        pidfile = shlex.quote(f"{self.guest_workdir}/cmd/{job_id}.pid")
        lines = [f"echo $$ > {pidfile}", f"cd {shlex.quote(cwd)} || exit 126"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in (env or {}).items()]
        lines.append(cmd)
        tmp = self._cmd_dir / f"{job_id}.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.rename(self._cmd_dir / f"{job_id}.sh")  # atomic: the agent only globs *.sh
        self.wake()
        return BgJob(self, job_id, cmd)

    def run(
        self,
        cmd: str,
        timeout: float = 60,
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/",
        check: bool = False,
    ) -> CommandResult:
        """Run ``cmd`` in the guest and wait for it.

        Raises:
            GuestTimeout: not done within ``timeout`` s (it is killed).
            GuestDied: QEMU exited.
            GuestCommandError: ``check`` and rc != 0.
        """
        res = self.run_bg(cmd, env=env, cwd=cwd).wait(timeout)
        return res.check() if check else res

    def dmesg(self) -> str:
        """Return the guest kernel log so far (``dmesg``; the console log if that fails)."""
        try:
            r = self.run("dmesg", timeout=30)
            if r.rc == 0:
                return r.stdout
        except GuestError:
            pass
        return self.console()

    def edu_bdfs(self) -> list[str]:
        """Return the PCI addresses of the guest's edu devices (1234:11e8), sorted."""
        r = self.run(
            "cd /sys/bus/pci/devices && for d in *; do "
            '[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && echo $d; '
            "done; true",
            timeout=30,
            check=True,
        )
        return sorted(r.stdout.split())

    def drop_caches(self) -> None:
        """Forget cached host files (needed with ``host_cache="loose"`` after host changes)."""
        self.run("sync; echo 3 > /proc/sys/vm/drop_caches", timeout=60, check=True)

    def kill_jobs(self, timeout: float = 10) -> None:
        """SIGKILL every command that has not finished yet (whole process groups).

        Waits up to ``timeout`` s for the agent to have reaped them (no error if not).
        """
        pending = [sh for sh in self._cmd_dir.glob("*.sh") if not sh.with_suffix(".rc").exists()]
        for sh in pending:
            sh.with_suffix(".kill").touch()
        self.wake()
        deadline = time.monotonic() + timeout
        while self.alive and time.monotonic() < deadline:
            if all(sh.with_suffix(".rc").exists() for sh in pending):
                break
            time.sleep(_POLL)

    def reset_devices(self, timeout: float = 30) -> None:
        """Undo per-test device state: unplug hot-added devices, unbind every edu.

        Hot-added devices are those added through :meth:`qmp` ``device_add`` and not yet
        removed. Each edu left is unbound from its driver and its ``driver_override`` cleared.

        Raises:
            GuestTimeout: a device did not go away within ``timeout`` s.
        """
        self.kill_jobs()
        for dev_id in list(self._hotplugged):
            self.qmp("device_del", id=dev_id)
        deadline = time.monotonic() + timeout
        while self._hotplugged:
            if time.monotonic() > deadline:
                raise GuestTimeout(f"hot-added devices {self._hotplugged} not removed")
            present = {d.get("qdev_id") for d in self._pci_devices()}
            self._hotplugged = [d for d in self._hotplugged if d in present]
            time.sleep(0.2)
        for node in self._blockdevs:  # backends of hot-added nvme devices, now unused
            self.qmp("blockdev-del", **{"node-name": node})
        self._blockdevs.clear()
        self.run(
            "for d in /sys/bus/pci/devices/*; do "
            '[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] || continue; '
            '[ -e $d/driver ] && echo ${d##*/} > $d/driver/unbind; '
            "echo > $d/driver_override; done; true",
            timeout=timeout,
            check=True,
        )

    def _pci_devices(self) -> list[dict[str, Any]]:
        devs: list[dict[str, Any]] = []

        def walk(bus: dict[str, Any]) -> None:
            for d in bus.get("devices", []):
                devs.append(d)
                bridge = d.get("pci_bridge", {})
                if "bus" in bridge:
                    walk(bridge["bus"])

        for bus in self.qmp("query-pci").get("return", []):
            walk(bus)
        return devs

    def hotplug_nvme(self, path: str | Path, dev_id: str = "nvme1", bus: str = "rp1",
                     serial: str = "udrv0101") -> None:
        """Hot-add a QEMU ``nvme`` controller backed by the raw host file ``path``.

        QMP ``blockdev-add`` (node ``<dev_id>-blk``) then ``device_add nvme`` on root port
        ``bus``. :meth:`reset_devices` removes both (``device_del``, then ``blockdev-del``).

        Raises:
            GuestError: QEMU refused either command.
        """
        node = f"{dev_id}-blk"
        reply = self.qmp("blockdev-add", **{"driver": "raw", "node-name": node,
                                            "file": {"driver": "file", "filename": str(path)}})
        if "error" in reply:
            raise GuestError(f"blockdev-add {path}: {reply['error']}")
        self._blockdevs.append(node)
        reply = self.qmp("device_add", driver="nvme", bus=bus, id=dev_id, serial=serial,
                         drive=node)
        if "error" in reply:
            raise GuestError(f"device_add nvme {dev_id}: {reply['error']}")

    def udev_reload(self) -> None:
        """Make udevd re-read its rules (after writing to /etc/udev/rules.d).

        Raises:
            GuestError: udev is not running in this guest, or the reload failed.
        """
        if not self.udev and self.system is None:
            raise GuestError("udev_reload: this guest was started with udev=False")
        self.run("udevadm control --reload", timeout=30, check=True)

    # --- QMP ----------------------------------------------------------------------------

    def qmp(self, command: str, timeout: float = 30, **arguments: Any) -> dict[str, Any]:
        """Send one QMP command and return QEMU's reply (``{"return": ...}`` or ``{"error"}``).

        Keyword names are QMP argument names (use ``**{"a-b": 1}`` for dashed ones).
        Asynchronous events seen meanwhile are kept for :meth:`qmp_events`.

        Raises:
            GuestTimeout: no reply within ``timeout`` s.
            GuestDied: the QMP connection closed.
        """
        reply = self._qmp.execute(command, timeout, arguments)
        if command == "device_add" and "return" in reply and "id" in arguments:
            # Removal (device_del) completes asynchronously; reset_devices() waits for it.
            self._hotplugged.append(str(arguments["id"]))
        return reply

    def qmp_events(self) -> list[dict[str, Any]]:
        """Return (and forget) the QMP events received so far.

        Raises:
            GuestDied: the QMP connection closed.
        """
        return self._qmp.events()

    def wait_qmp_event(self, name: str, timeout: float = 30, **data: Any) -> dict[str, Any]:
        """Wait for QMP event ``name`` whose ``data`` contains ``data`` (e.g. ``device="x"``).

        Events before the match stay queued for :meth:`qmp_events`; the match is consumed.

        Raises:
            GuestTimeout: no such event within ``timeout`` s.
            GuestDied: the QMP connection closed.
        """
        return self._qmp.wait_event(name, timeout, data)

    # --- internals ----------------------------------------------------------------------

    def _tail(self, n: int = 40) -> str:
        lines = self.console().splitlines()[-n:]
        text = f"\n--- console tail ({self.console_log}) ---\n" + "\n".join(lines)
        try:
            qemu = (self.rundir / "qemu.out").read_text(errors="replace").strip()
        except OSError:
            qemu = ""
        return text + (f"\n--- QEMU output ---\n{qemu[-2000:]}" if qemu else "")

    def _wait_for(self, cond: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self._proc is not None and self._proc.poll() is not None:
                raise GuestDied(
                    f"QEMU exited with rc {self._proc.returncode} while waiting for {what}"
                    + self._tail()
                )
            if time.monotonic() > deadline:
                raise GuestTimeout(f"timed out after {timeout} s waiting for {what}" + self._tail())
            time.sleep(_POLL)

    def _qemu_argv(self, kp: _kernels.KernelPaths, initrd: Path) -> list[str]:
        root = "/"
        boot = []
        if self.system is not None:
            root = str(self.system)
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
                f"UDRIVER_WORK={self.guest_workdir}",
                f"UDRIVER_HOSTCACHE={self.host_cache}",
                *boot,
                self.extra_cmdline,
            ]
        ).strip()
        argv = [
            QEMU, "-accel", "tcg", "-machine", "q35", "-cpu", self.cpu, "-smp", "1",
            "-m", str(self.mem_mb), "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-nic", "none",
            "-kernel", str(kp.vmlinux), "-initrd", str(initrd), "-append", append,
            "-serial", f"file:{self.console_log}",
            # ttyS1: a byte from the host wakes the agent's loop (see wake()).
            "-chardev", f"socket,id=wake,path={self._wake_path},server=on,wait=off",
            "-serial", "chardev:wake",
            "-qmp", f"unix:{self._qmp_path},server=on,wait=off",
            # The IOMMU must exist before the devices behind it.
            "-device", "intel-iommu,intremap=on",
            "-virtfs",
            f"local,path={root},mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={self.workdir},mount_tag=work,security_model=none",
        ]
        if self.system is not None:
            modules = f"local,path={kp.modules_dir},mount_tag=modules,security_model=none"
            argv += ["-virtfs", modules + ",readonly=on"]
        n_edu = 0
        for spec in self.devices:
            driver = spec.split(",", 1)[0]
            if "id=" not in spec and driver == "edu":
                spec = f"{spec},id=edu{n_edu}"
                n_edu += 1
            argv += ["-device", spec]
        for i, path in enumerate(self.nvme):
            argv += ["-drive", f"file={path},if=none,id=nvmedrv{i},format=raw",
                     "-device", f"nvme,serial=udrv{i + 1:04d},drive=nvmedrv{i},id=nvme{i}"]
        for i in range(1, self.root_ports + 1):
            argv += ["-device", f"pcie-root-port,id=rp{i},chassis={i},slot={i}"]
        return argv + self.qemu_args
