"""`udriver autobind`: what udev runs when a PCI device is added or removed.

udev kills RUN programs that take long (udev(7), "RUN"), and installing a driver can take
seconds, so `add` only validates its arguments and starts a detached worker
(`--foreground`, its own session, output to `<run>/log/<bdf>.log`). The worker:

1. looks the device up in sysfs; a device a kernel driver already took is left alone
   unless an installed driver's rule named it (`--driver`);
2. under `<state>/autobind.lock` (so that two devices added together install a package
   once), finds the installed driver for the device, or, when a repository has
   auto-install on, resolves and installs one through the client (TUF-verified, ID table
   checked against the device before install); then regenerates the udev rules;
3. checks that the driver's ID table claims the device; any failure up to here records
   `failed` with the reason and leaves the device unbound;
4. binds the device to vfio-pci (`udriver.pci.bind`);
5. starts the driver: `systemctl start --no-block udriver@<bdf>.service` when systemd is
   PID 1 (`udriver-block@` / `udriver-net@` for a driver whose manifest declares that
   kernel bridge, `_systemd.BRIDGE_UNITS`), otherwise the worker itself becomes `udriver
   supervise` for the device.

`remove` stops the device's driver (systemctl stop, or SIGTERM to the supervisor) and
forgets the device's status.

Where the `add` work runs is chosen here (`autobind`), not by the caller:

- systemd is PID 1: in `udriver-autobind@<bdf>.service`, never in udev's confined,
  short-lived RUN environment;
- otherwise detached: a worker in its own session (`detach_add`);
- `--foreground` (the worker itself, the systemd unit, tests): in this process;
  `--worker` (udev's `setsid -f`): here too, with output to the device's log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import _devstate, paths
from ..client import find_installed, installed_manifests
from ..errors import DeviceError, InstallError, UdriverError
from ..launch import self_command
from ..modalias import Modalias
from ..pci import normalise_bdf
from ._systemd import AUTOBIND_TEMPLATE, BRIDGE_UNITS, service_unit, systemd_running
from ._udev import write_rules

__all__ = [
    "add_device",
    "autobind",
    "detach_add",
    "ensure_path",
    "find_installed",
    "log_path",
    "redirect_output",
    "remove_device",
    "start_autobind_unit",
    "systemd_running",
    "unit_name",
]

log = logging.getLogger(__name__)


def unit_name(bdf: str) -> str:
    """`udriver@0000:01:00.0.service` (":" and "." are valid in unit names)."""
    return f"udriver@{normalise_bdf(bdf)}.service"


def log_path(bdf: str) -> Path:
    return paths.run_dir() / "log" / f"{normalise_bdf(bdf)}.log"


_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def ensure_path() -> None:
    """udev runs RUN programs with a minimal environment: make sure PATH reaches
    modprobe and systemctl (in /sbin, /usr/sbin)."""
    have = [p for p in os.environ.get("PATH", "").split(":") if p]
    os.environ["PATH"] = ":".join(have + [p for p in _SYSTEM_PATH if p not in have])


def redirect_output(bdf: str) -> None:
    """Send stdout and stderr (ours and the driver's) to the device's log file, which
    starts afresh with each `add` and is kept after `remove` for post-mortems."""
    logf = log_path(bdf)
    logf.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(logf, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _self_command() -> list[str]:
    return self_command()


def detach_add(bdf: str, driver: str | None) -> int:
    """Start the `add` worker in its own session and return its pid at once."""
    bdf = normalise_bdf(bdf)
    logf = log_path(bdf)
    logf.parent.mkdir(parents=True, exist_ok=True)
    argv = [*_self_command(), "autobind", "--action", "add", "--foreground", bdf]
    if driver:
        argv += ["--driver", driver]
    with open(logf, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, close_fds=True)
    log.info("%s: autobind worker pid %d, log %s", bdf, proc.pid, logf)
    return proc.pid


def start_autobind_unit(bdf: str) -> int:
    """systemd mode: queue `udriver-autobind@<bdf>.service` (which runs the `add` worker
    with `--match-installed`) and return at once. Returns systemctl's exit status."""
    unit = AUTOBIND_TEMPLATE.replace("@", f"@{normalise_bdf(bdf)}")
    r = subprocess.run(["systemctl", "--no-block", "start", unit], check=False,
                       capture_output=True, text=True)
    if r.returncode != 0:
        log.error("%s: systemctl start %s failed: %s", bdf, unit, r.stderr.strip())
    else:
        print(f"{bdf}: started {unit}")
    return r.returncode


@contextmanager
def _lock() -> Iterator[None]:
    path = paths.state_dir() / "autobind.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _install(bdf: str, alias: Modalias) -> None:
    from ..client import Client, list_repos
    repos = [r for r in list_repos() if r.auto_install]
    if not repos:
        raise InstallError(f"no installed driver claims {bdf} ({alias}) and no repository "
                           f"has auto-install enabled")
    _devstate.record_state(bdf, "installing", "resolving and installing a driver")
    for res in Client(repos).install_for_devices({bdf: alias}):
        log.info("%s: installed %s %s from %s", bdf, res.driver, res.version, res.repo)


def add_device(bdf: str, driver: str | None, *, root: Path = Path("/"),
               match_installed: bool = False) -> int:
    """The `add` worker (module steps 1-5). Returns the exit status.

    `match_installed`: no rule named the driver (systemd mode starts one unit for every
    device): take it from the installed drivers' ID tables, as udev rule 1 would have.

    Errors are recorded in the status record and logged, never raised: nothing is bound
    when the driver cannot be trusted.
    """
    from .. import pci
    os.umask(0o022)  # installed drivers must be readable by the unprivileged driver user
    try:
        dev = pci.get_device(bdf, root)
        bdf = dev.bdf
    except DeviceError as e:
        log.error("%s", e)
        return 1
    if driver is None and match_installed:
        try:
            m = find_installed(dev.modalias, None, installed_manifests())
        except UdriverError as e:
            log.error("%s: %s", bdf, e)
            return 1
        driver = m.driver if m is not None else None
    if driver is None and dev.driver is not None and not pci.is_vfio_driver(dev.driver):
        log.info("%s: bound to kernel driver %s; leaving it alone", bdf, dev.driver)
        return 0
    try:
        with _lock():
            m = find_installed(dev.modalias, driver, installed_manifests())
            if m is None:
                _install(bdf, dev.modalias)
                write_rules()
                m = find_installed(dev.modalias, driver, installed_manifests())
            if m is None:
                raise InstallError(f"the driver installed for {bdf} does not claim "
                                   f"{dev.modalias}")
        _devstate.clear_crash_history(bdf)
        _devstate.record_state(bdf, "binding", f"binding to vfio-pci for "
                               f"{m.driver} {m.version}", driver=m.driver)
        pci.bind(bdf, sysfs_root=root)
    except Exception as e:  # the worker's last word must be in the status record
        if isinstance(e, UdriverError):
            log.error("%s: %s", bdf, e)
            reason = str(e)
        else:  # a bug: keep the traceback in the log, never leave "installing" behind
            log.exception("%s: unexpected error", bdf)
            reason = f"internal error ({type(e).__name__}: {e}); see {log_path(bdf)}"
        try:
            _devstate.record_state(bdf, "failed", reason, driver=driver)
        except (OSError, UdriverError) as e2:
            log.error("%s: cannot record the failure: %s", bdf, e2)
        return 1
    if systemd_running():
        unit = service_unit(bdf, m.bridge)
        r = subprocess.run(["systemctl", "start", "--no-block", unit],
                           check=False, capture_output=True, text=True)
        if r.returncode != 0:
            log.error("%s: systemctl start failed: %s", bdf, r.stderr.strip())
            _devstate.record_state(bdf, "failed", f"systemctl start "
                                   f"{unit}: {r.stderr.strip()}")
            return 1
        return 0
    from ._run import supervise
    return supervise(bdf, m.driver, bind=False, root=root)


def remove_device(bdf: str) -> int:
    """The `remove` handler: stop the driver of a removed device, forget its status."""
    bdf = normalise_bdf(bdf)
    claim = _devstate.read_claim(bdf)
    if claim.get("mode") == "systemd" or (not claim and systemd_running()):
        # Whichever variant runs it (the driver's bridge may have changed since).
        units = [unit_name(bdf), *(service_unit(bdf, b) for b in BRIDGE_UNITS)]
        subprocess.run(["systemctl", "stop", "--no-block", *units],
                       check=False, capture_output=True)
    elif isinstance(claim.get("pid"), int):
        try:
            os.kill(claim["pid"], signal.SIGTERM)
            log.info("%s: sent SIGTERM to supervisor %d", bdf, claim["pid"])
        except ProcessLookupError:
            _devstate.remove_claim(bdf)
    _devstate.clear_status(bdf)
    _devstate.clear_crash_history(bdf)
    return 0


def autobind(bdf: str, *, action: str = "add", driver: str | None = None,
             foreground: bool = False, worker: bool = False, match_installed: bool = False,
             root: Path = Path("/")) -> int:
    """`udriver autobind`: handle udev's `action` for `bdf` in the mode this machine calls
    for (module docstring). Returns the exit status.

    Raises:
        DeviceError: `bdf` is not a PCI address (before anything starts).
    """
    if action == "remove":
        return remove_device(bdf)
    ensure_path()
    if worker:
        redirect_output(bdf)
    elif not foreground:
        if systemd_running():
            return start_autobind_unit(bdf)
        pid = detach_add(bdf, driver)
        print(f"{normalise_bdf(bdf)}: autobind worker {pid}, log {log_path(bdf)}")
        return 0
    return add_device(bdf, driver, root=root, match_installed=match_installed)

