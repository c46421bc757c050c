"""The entry points behind `udriver supervise`: stand-alone, and the systemd unit's steps.

Stand-alone (`supervise`): bind, then a `Supervisor` with the privilege-separated
launcher. Under systemd the same policy is split over the unit's commands
(`udriver@.service`):

    ExecStartPre=+  `systemd_pre`:  refuse if we gave up on the device; bind it
    ExecStart=!     `systemd_exec`: open VFIO as root, drop privileges, exec the driver
    ExecStopPost=+  `systemd_stop_post`: a crash (per $SERVICE_RESULT, $EXIT_CODE,
                    $EXIT_STATUS, systemd.exec(5) "Environment variables in spawned
                    processes") goes through the same `CrashTracker`, its history kept in
                    the run dir; the 5th crash in 60 s unbinds and records `failed`

systemd's `StartLimitBurst=5`/`StartLimitIntervalSec=60` stop the restarts at the same
point, and `RestartSec=` provides the delay.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from .. import _devstate
from ..errors import ConfigError, DeviceError, UdriverError
from ..pci import normalise_bdf
from ._kmsg import RemovalWatcher
from ._policy import CrashTracker, RestartPolicy
from ._privsep import Credentials, exec_driver, resolve_user, spawn_driver
from ._supervisor import REMOVED, Supervisor
from ._uids import device_credentials

__all__ = ["driver_bridge", "driver_user", "resolve_driver", "run_as_device_user", "supervise", "systemd_exec",
           "systemd_pre", "systemd_stop_post"]

log = logging.getLogger(__name__)


def policy_from_env(env: Mapping[str, str] | None = None) -> RestartPolicy:
    """The restart policy, with UDRIVER_MAX_CRASHES / UDRIVER_CRASH_WINDOW overrides.

    Raises:
        ConfigError: an override is not a positive number.
    """
    env = os.environ if env is None else env
    base = RestartPolicy()
    try:
        max_crashes = int(env.get("UDRIVER_MAX_CRASHES") or base.max_crashes)
        window = float(env.get("UDRIVER_CRASH_WINDOW") or base.window)
        return RestartPolicy(max_crashes=max_crashes, window=window)
    except ValueError as e:
        raise ConfigError(f"invalid UDRIVER_MAX_CRASHES/UDRIVER_CRASH_WINDOW: {e}") from e


def driver_user(bdf: str, name: str | None = None) -> Credentials:
    """Who `bdf`'s driver runs as: user `name` when given, else the device's own uid.

    The default is one uid per device (`_uids`), so that no driver can signal, trace or
    read another; `name` is the administrator's explicit choice (`--user`).

    Raises:
        PrivilegeError: `name` does not exist or is root; the device's uid cannot be
            allocated or recorded.
        ConfigError: `UDRIVER_DRIVER_UIDS` is invalid.
    """
    if name:
        return resolve_user(name)
    return device_credentials(bdf)


def _unbind(bdf: str, root: Path) -> None:
    from .. import pci
    pci.unbind(bdf, sysfs_root=root)


def _gone(bdf: str, root: Path) -> bool:
    return not (root / "sys/bus/pci/devices" / bdf).exists()


def driver_bridge(driver: str) -> str | None:
    """The kernel bridge driver `driver`'s manifest declares (None: none), read without
    importing the driver (the caller is root).

    When no package, or two, provide `driver`, None: the runner in the unprivileged child
    makes the same lookup and refuses with the full message before anything runs.
    """
    from ..errors import ConfigError
    from ..runtime.runner import driver_manifest
    try:
        m = driver_manifest(driver)
    except ConfigError:
        return None
    return m.bridge if m is not None else None


def resolve_driver(bdf: str, driver: str | None, root: Path = Path("/")) -> str:
    """`driver`, or the installed driver whose ID table claims the device best.

    Raises:
        DeviceError: the device is missing, or no installed driver claims it.
        InstallError: a named driver does not claim the device.
    """
    if driver:
        return driver
    from .. import pci
    from ..client import find_installed, installed_manifests
    alias = pci.get_device(bdf, root).modalias
    m = find_installed(alias, None, installed_manifests())
    if m is None:
        err = DeviceError(f"{bdf}: no installed driver claims {alias}")
        err.hint = "install one with `udriver install`, or name it with `--driver`"
        raise err
    return m.driver


def supervise(bdf: str, driver: str | None, *, bind: bool = True, root: Path = Path("/"),
              user: str | None = None, stop_timeout: float = 10.0,
              policy: RestartPolicy | None = None) -> int:
    """Run and supervise the driver of `bdf` until stopped or given up. Returns exit status.

    Raises:
        DeviceError: the device cannot be bound.
        PrivilegeError: the driver user is invalid.
    """
    from .. import pci
    bdf = normalise_bdf(bdf)
    creds = driver_user(bdf, user)
    driver = resolve_driver(bdf, driver, root)
    if bind:
        pci.bind(bdf, sysfs_root=root)
    _devstate.clear_crash_history(bdf)
    bridge = driver_bridge(driver)
    sup = Supervisor(bdf, driver,
                     launcher=lambda: spawn_driver(bdf, driver, creds, root=root, bridge=bridge),
                     unbind=lambda b: _unbind(b, root), policy=policy or policy_from_env(),
                     stop_timeout=stop_timeout, device_gone=lambda: _gone(bdf, root))
    sup.install_signal_handlers()
    watcher = RemovalWatcher(bdf, lambda: sup.request_stop(REMOVED))
    watcher.start()
    try:
        res = sup.run()
    finally:
        watcher.stop()
    log.info("%s: %s", bdf, res.reason)
    return res.exit_code


def systemd_pre(bdf: str, *, root: Path = Path("/")) -> int:
    """ExecStartPre: refuse after a give-up, else bind.

    Raises:
        DeviceError: binding failed.
    """
    from .. import pci
    bdf = normalise_bdf(bdf)
    _, gave_up = _devstate.read_crash_history(bdf)
    if gave_up:
        rec = _devstate.read_record(bdf)
        raise DeviceError(f"{bdf}: not starting: {rec.get('reason', 'gave up after crashes')}; "
                          f"re-add the device or run `udriver supervise --device {bdf}`")
    # Record the device's uid here, with full privileges: ExecStart= only reads it (its
    # /var is read-only under ProtectSystem=strict).
    device_credentials(bdf)
    pci.bind(bdf, sysfs_root=root)
    return 0


def systemd_exec(bdf: str, driver: str | None, *, user: str | None = None,
                 root: Path = Path("/")) -> int:
    """ExecStart: become the driver (never returns on success).

    Raises:
        DeviceError, PrivilegeError: as `exec_driver`.
    """
    bdf = normalise_bdf(bdf)
    creds = driver_user(bdf, user)
    driver = resolve_driver(bdf, driver, root)
    _devstate.write_claim(bdf, os.getpid(), driver, "systemd")
    _devstate.record_state(bdf, "running", "driver running (systemd)", driver=driver,
                           pid=os.getpid())
    # Without a bridge this never returns; with one, this process stays the bridge's
    # privileged parent and ends the way the driver ended.
    return exec_driver(bdf, driver, creds, root=root, bridge=driver_bridge(driver))


def run_as_device_user(bdf: str, driver: str, extra: list[str], *,
                       root: Path = Path("/")) -> int:
    """`udriver run` started as root: open the device, drop to its uid, exec the runner.

    The device must already be bound to vfio-pci (`udriver bind`); nothing is recorded
    but the device's uid. Never returns on success, unless the driver declares a kernel
    bridge: then this process stays its privileged parent and returns its exit status.

    Raises:
        DeviceError: bad address, or the device cannot be opened (not bound, group busy).
        PrivilegeError: no uid can be allocated, or dropping privileges failed.
        ConfigError: `UDRIVER_DRIVER_UIDS` is invalid.
    """
    bdf = normalise_bdf(bdf)
    creds = device_credentials(bdf)
    log.info("%s: running driver %r as uid %d (root drops after opening the device)",
             bdf, driver, creds.uid)
    return exec_driver(bdf, driver, creds, root=root, extra=extra,
                       bridge=driver_bridge(driver))


def _returncode(env: Mapping[str, str]) -> int:
    code, status = env.get("EXIT_CODE", ""), env.get("EXIT_STATUS", "")
    if code == "exited":
        try:
            return int(status)
        except ValueError:
            return 1
    try:
        return -signal.Signals[status if status.startswith("SIG") else f"SIG{status}"].value
    except (KeyError, ValueError):
        return -signal.SIGKILL


def systemd_stop_post(bdf: str, env: Mapping[str, str], *, root: Path = Path("/"),
                      policy: RestartPolicy | None = None, now: float | None = None) -> int:
    """ExecStopPost: account the exit; unbind and record `failed` on give-up."""
    bdf = normalise_bdf(bdf)
    _devstate.remove_claim(bdf)
    times, gave_up = _devstate.read_crash_history(bdf)
    if gave_up:
        return 0  # ExecStartPre refused; the record already says why
    result = env.get("SERVICE_RESULT", "")
    if result == "success":
        if _gone(bdf, root):
            _devstate.clear_status(bdf)
        else:
            _devstate.record_state(bdf, "stopped", "stopped by systemd")
        return 0
    t = time.monotonic() if now is None else now
    tracker = CrashTracker(policy or policy_from_env(env), deque(t0 for t0 in times if t0 <= t))
    d = tracker.on_exit(_returncode(env) or 1, t, t)
    if d.give_up:
        reason = d.reason
        try:
            _unbind(bdf, root)
        except UdriverError as e:
            reason = f"{reason}; unbinding failed: {e}"
        _devstate.record_state(bdf, "failed", reason, crashes=d.crashes)
        log.error("%s: %s; device unbound", bdf, reason)
    else:
        _devstate.record_state(bdf, "restarting", f"{d.reason} ({result})",
                               crashes=d.crashes)
    _devstate.write_crash_history(bdf, list(tracker.crashes), d.give_up)
    return 0
