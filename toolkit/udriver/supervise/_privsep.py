"""Open the device as root, then run the driver as a user with no privileges.

"Can drop root after open call" (the 2004 user-level driver work; DESIGN.md, "Run").
Order of operations, in the privileged parent:

1. The device is already bound to vfio-pci (`udriver.pci.bind`, done by the caller).
2. Open the VFIO container `/dev/vfio/vfio` and the device's group `/dev/vfio/<group>`
   (linux/vfio.h, "VFIO User API": the group number is the `iommu_group` link in sysfs).
   Attaching the group to the container (`VFIO_GROUP_SET_CONTAINER`) and choosing the
   IOMMU model (`VFIO_SET_IOMMU`) need no capability, only the open fds, so they are
   left to the runtime in the child: `native/` stays the only code issuing VFIO ioctls.
3. In the child, between fork and exec (`drop_privileges`):
   a. raise RLIMIT_MEMLOCK: type1 accounts pinned DMA pages against it
      (drivers/vfio/vfio_iommu_type1.c, `vfio_lock_acct`), and raising the hard limit
      needs CAP_SYS_RESOURCE, so it has to happen before the drop;
   b. PR_SET_NO_NEW_PRIVS, so that no later execve can gain privileges;
   c. drop every capability from the bounding set (PR_CAPBSET_DROP, needs CAP_SETPCAP)
      and clear the ambient set;
   d. setgroups([]), setresgid, setresuid to the driver's user (by default a uid of the
      device's own, `_uids`, so that no two drivers share one): with all three uids
      non-zero the kernel clears the permitted and effective sets (capabilities(7),
      "Effect of user ID changes on capabilities");
   e. capset() all-zero, which also empties the inheritable set.
4. exec `udriver run --device BDF --driver NAME --container-fd N --group-fd M`; the
   two fds are the only ones inherited.
5. The parent closes its copies, so that when the driver dies the kernel releases the
   group, its interrupts and its DMA mappings.

A driver whose manifest declares a kernel bridge (`[tool.udriver] bridge`) also inherits
one end of the bridge control channel (`--bridge-fd`), and the parent stays: a
`BridgeHost` thread answers the driver's request by setting up the kernel side as root
(`_bridgehost`, `_nbd`, `_tap`) and tears it down when the driver exits. `exec_driver`
then does not exec in place: it forks like `spawn_driver`, forwards SIGTERM/SIGINT/SIGHUP
to the driver, and ends the way the driver ended (same exit status, or the same signal).
A driver without a bridge gets neither the channel nor a waiting parent.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError
from ..launch import self_command
from ._bridgehost import BridgeHost, channel
from ._caps import (
    DEFAULT_MEMLOCK,
    Credentials,
    PrivilegeError,
    drop_privileges,
    resolve_user,
)

__all__ = [
    "DEFAULT_MEMLOCK",
    "BridgedProcess",
    "Credentials",
    "PrivilegeError",
    "VfioFds",
    "drop_privileges",
    "exec_driver",
    "open_vfio",
    "resolve_user",
    "runner_command",
    "spawn_driver",
]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class VfioFds:
    """The two fds the driver needs, opened as root."""

    container: int
    """Open `/dev/vfio/vfio`."""
    group: int
    """Open `/dev/vfio/<group>`."""
    group_number: int
    """The IOMMU group number."""

    def close(self) -> None:
        for fd in (self.container, self.group):
            try:
                os.close(fd)
            except OSError:
                pass


def open_vfio(bdf: str, root: Path = Path("/")) -> VfioFds:
    """Open the VFIO container and the group of `bdf` (as root).

    Args:
        bdf: canonical PCI address.
        root: filesystem root holding sys/ and dev/ (as for `udriver.pci`).

    Raises:
        DeviceError: the device has no IOMMU group, or a VFIO node cannot be opened.
    """
    sysfs, dev = root / "sys", root / "dev"
    link = sysfs / "bus/pci/devices" / bdf / "iommu_group"
    try:
        group = int(os.path.basename(os.readlink(link)))
    except (OSError, ValueError) as e:
        raise DeviceError(f"{bdf}: no IOMMU group ({link}): {e}; VFIO needs an IOMMU") from e
    paths = (dev / "vfio/vfio", dev / "vfio" / str(group))
    fds: list[int] = []
    try:
        for p in paths:
            fds.append(os.open(p, os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        for fd in fds:
            os.close(fd)
        raise DeviceError(f"{bdf}: cannot open {e.filename}: {e.strerror}; is the device "
                          f"bound to vfio-pci and the group viable?") from e
    return VfioFds(fds[0], fds[1], group)


def runner_command(bdf: str, driver: str | None, fds: VfioFds,
                   extra: Sequence[str] = (), bridge_fd: int | None = None) -> list[str]:
    """The `udriver run` command line that takes over the open fds.

    Args:
        bdf: the device.
        driver: the driver's entry-point name (None: the runner's default).
        fds: the fds opened as root.
        extra: further `udriver run` arguments (`--option`, `--once`), passed as is.
        bridge_fd: the driver's end of the bridge control channel, if it has a bridge.
    """
    cmd = [*self_command(), "run",
           "--device", bdf, "--container-fd", str(fds.container), "--group-fd", str(fds.group)]
    if bridge_fd is not None:
        cmd += ["--bridge-fd", str(bridge_fd)]
    if driver:
        cmd += ["--driver", driver]
    return cmd + list(extra)


class BridgedProcess:
    """A driver process with a bridge: `subprocess.Popen`'s interface for the supervisor,
    plus the `BridgeHost` that serves it; the kernel side is torn down once the process
    has exited (before `poll`/`wait` report the exit, so a restarted driver finds it free)."""

    def __init__(self, proc: subprocess.Popen[bytes], host: BridgeHost) -> None:
        self.proc, self.host = proc, host
        self.pid = proc.pid

    def poll(self) -> int | None:
        rc = self.proc.poll()
        if rc is not None:
            self.host.close()
        return rc

    def wait(self, timeout: float | None = None) -> int:
        """Raises: subprocess.TimeoutExpired: still running after `timeout` seconds."""
        rc = self.proc.wait(timeout)
        self.host.close()
        return rc

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()


def spawn_driver(bdf: str, driver: str | None, creds: Credentials,
                 memlock: int | None = DEFAULT_MEMLOCK, root: Path = Path("/"),
                 stdout: int | None = None, *, extra: Sequence[str] = (),
                 bridge: str | None = None) -> subprocess.Popen[bytes] | BridgedProcess:
    """Open the device, fork, drop privileges in the child and exec the runner.

    The parent's copies of the fds are closed before returning. With a `bridge` (the kind
    the driver's manifest declares), the child also gets the bridge channel and a
    `BridgedProcess` is returned, its `BridgeHost` serving in a thread.

    Raises:
        DeviceError: the device cannot be opened.
        PrivilegeError: the child could not drop privileges (it never ran the driver).
    """
    fds = open_vfio(bdf, root)
    ends: tuple[socket.socket, socket.socket] | None = channel() if bridge else None
    try:
        child_fd = ends[1].fileno() if ends else None
        cmd = runner_command(bdf, driver, fds, extra, child_fd)
        log.info("starting driver for %s as %s (uid %d): %s", bdf, creds.name, creds.uid,
                 " ".join(cmd))
        passed = (fds.container, fds.group) + ((child_fd,) if child_fd is not None else ())
        try:
            proc = subprocess.Popen(cmd, pass_fds=passed, close_fds=True,
                                    # The drop must run between fork and exec; the
                                    # supervisor is single-threaded when it spawns.
                                    preexec_fn=lambda: drop_privileges(creds, memlock),  # noqa: PLW1509
                                    stdin=subprocess.DEVNULL, stdout=stdout,
                                    stderr=subprocess.STDOUT if stdout is not None else None)
        except subprocess.SubprocessError as e:
            raise PrivilegeError(f"{bdf}: the driver process could not drop privileges: "
                                 f"{e}") from e
        except OSError as e:  # exec after the drop: the interpreter is not the user's to run
            err = PrivilegeError(f"{bdf}: the driver's user {creds.name} (uid {creds.uid}) "
                                 f"cannot run {cmd[0]}: {e.strerror}")
            err.hint = ("the Python that runs udriver must be executable by every user "
                        "(Debian's /usr/bin/python3 is; one under /root, mode 0700, is not)")
            raise err from e
        if ends is None or bridge is None:
            return proc
        host = BridgeHost(bdf, bridge, ends[0])
        host.driver_pid = proc.pid
        host.start()
        return BridgedProcess(proc, host)
    except BaseException:
        if ends is not None:
            ends[0].close()
        raise
    finally:
        fds.close()
        if ends is not None:
            ends[1].close()


def _run_bridged(bdf: str, driver: str | None, creds: Credentials, memlock: int | None,
                 root: Path, extra: Sequence[str], bridge: str) -> int:
    """Fork mode of `exec_driver`: stay as the bridge's privileged parent."""
    proc = spawn_driver(bdf, driver, creds, memlock, root, extra=extra, bridge=bridge)

    def forward(signum: int, frame: object) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    rc = proc.wait()
    log.info("%s: driver pid %d ended (%s); bridge torn down", bdf, proc.pid,
             f"signal {-rc}" if rc < 0 else f"status {rc}")
    if rc < 0:  # end the way the driver ended, for systemd's $EXIT_CODE/$EXIT_STATUS
        signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    return rc


def exec_driver(bdf: str, driver: str | None, creds: Credentials,
                memlock: int | None = DEFAULT_MEMLOCK, root: Path = Path("/"),
                extra: Sequence[str] = (), bridge: str | None = None) -> int:
    """Open the device, drop privileges and exec the runner in place.

    Used by the systemd unit's `ExecStart=!` step and by `udriver run` started as root.
    Never returns on success without a `bridge`: the calling process becomes the driver.
    With one, it stays the privileged parent (module docstring) and returns the driver's
    exit status once the driver has ended and the bridge is torn down.

    Raises:
        DeviceError: the device cannot be opened.
        PrivilegeError: dropping privileges failed.
    """
    if bridge is not None:
        return _run_bridged(bdf, driver, creds, memlock, root, extra, bridge)
    fds = open_vfio(bdf, root)
    os.set_inheritable(fds.container, True)
    os.set_inheritable(fds.group, True)
    cmd = runner_command(bdf, driver, fds, extra)
    try:
        drop_privileges(creds, memlock)
    except BaseException:
        fds.close()
        raise
    log.info("exec driver for %s as %s: %s", bdf, creds.name, " ".join(cmd))
    try:
        os.execv(cmd[0], cmd)
    except OSError as e:  # after the drop: the interpreter is not the driver user's to run
        err = PrivilegeError(f"{bdf}: the driver's user {creds.name} (uid {creds.uid}) cannot "
                             f"run {cmd[0]}: {e.strerror}")
        err.hint = ("the Python that runs udriver must be executable by every user (Debian's "
                    "/usr/bin/python3 is; one under /root, mode 0700, is not)")
        raise err from e
