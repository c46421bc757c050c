"""The guest: boot it, run commands in it, talk QMP to it (:class:`Guest`).

The rules the guest keeps (overlay root, the agent loop, timeouts, run folders, udev) are in
the package docstring (:mod:`udriver_vm`); the QEMU command line is built by :mod:`._qemu`,
the agent scripts by :mod:`._agent`, the initramfs by :mod:`.initramfs`, and the command
files are read back by :mod:`._jobs`. Every wait has a timeout: a command that times out is
killed and raises :class:`GuestTimeout`; if QEMU dies, :class:`GuestDied` carries the tail
of the console.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import _devices, _qemu
from . import kernels as _kernels
from ._agent import write_agent
from ._errors import GuestCommandError, GuestDied, GuestError, GuestTimeout
from ._jobs import BgJob, CommandResult, kill_pending
from ._qemu import prerequisites_missing
from ._qmp import Qmp
from .initramfs import build_initramfs

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

_POLL = 0.02
_counter = itertools.count(1)


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
            system: boot this Debian root directory (see :mod:`.system`) with systemd as
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
        self.rundir = _qemu.RUN_ROOT / f"{kernel}-{os.getpid()}-{next(_counter)}"
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
        _qemu.prune_old_runs()
        shutil.rmtree(self.rundir, ignore_errors=True)
        self._cmd_dir.mkdir(parents=True)
        udev_root = _kernels.fetch_udev() if self.udev and self.system is None else None
        write_agent(self.workdir, kp, booted=self.system is not None,
                    ready_timeout=self.boot_timeout, udev_root=udev_root)
        initrd = build_initramfs(kp.modules_dir, kp.vmlinux.parent)
        argv = _qemu.qemu_argv(self, kp, initrd, qmp=self._qmp_path, wake=self._wake_path)
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
            raise GuestError(f"cannot start {_qemu.QEMU}: {e}") from e
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
        """Return the PCI addresses of the guest's edu devices (1234:11e8), sorted.

        Raises:
            GuestCommandError: the guest could not list them.
        """
        return _devices.edu_bdfs(self)

    def drop_caches(self) -> None:
        """Forget cached host files (needed with ``host_cache="loose"`` after host changes)."""
        self.run("sync; echo 3 > /proc/sys/vm/drop_caches", timeout=60, check=True)

    def kill_jobs(self, timeout: float = 10) -> None:
        """SIGKILL every command that has not finished yet (whole process groups).

        Waits up to ``timeout`` s for the agent to have reaped them (no error if not).
        """
        kill_pending(self, self._cmd_dir, timeout)

    def reset_devices(self, timeout: float = 30) -> None:
        """Undo per-test device state: unplug hot-added devices, unbind every edu.

        Hot-added devices are those added through :meth:`qmp` ``device_add`` and not yet
        removed (see :func:`._devices.reset_devices`).

        Raises:
            GuestTimeout: a device did not go away within ``timeout`` s.
        """
        self.kill_jobs()
        _devices.reset_devices(self, self._hotplugged, self._blockdevs, timeout)

    def hotplug_nvme(self, path: str | Path, dev_id: str = "nvme1", bus: str = "rp1",
                     serial: str = "udrv0101") -> None:
        """Hot-add a QEMU ``nvme`` controller backed by the raw host file ``path``.

        QMP ``blockdev-add`` (node ``<dev_id>-blk``) then ``device_add nvme`` on root port
        ``bus``. :meth:`reset_devices` removes both (``device_del``, then ``blockdev-del``).

        Raises:
            GuestError: QEMU refused either command.
        """
        _devices.hotplug_nvme(self, self._blockdevs, path, dev_id, bus, serial)

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
        return _qemu.console_tail(self.rundir, self.console_log, n)

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
