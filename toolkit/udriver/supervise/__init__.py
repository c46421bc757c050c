"""Running drivers: privilege separation, supervision, hotplug (udev) and systemd.

Modules (private; the names below are the public API):

    _policy      RestartPolicy, CrashTracker, Decision: the pure restart/give-up rule
    _privsep     open VFIO as root, drop to an unprivileged user with no capabilities,
    exec `udriver run --container-fd N --group-fd M`
    _uids        one uid per device (recorded, stable, unique): who each driver runs as
    _supervisor  Supervisor: the `udriver supervise` loop (backoff, give-up, SIGTERM)
    _kmsg        RemovalWatcher: vfio-pci's "give the device back" request on hot-unplug
    _run         `udriver supervise` stand-alone and the systemd unit's three steps
    _udev        render_rules/write_rules: udev rules for installed drivers' modaliases;
                 sync_udev_rules, the post-install hook
    _autobind    `udriver autobind`: udev's add/remove hook (install, bind, start / stop),
                 and where that work runs (systemd unit, detached worker, foreground)
    _systemd     the `udriver@.service` template unit
    (a device's status record, claim and crash history: `udriver._devstate`)

Names are imported on first use, as in `udriver.client`: `udriver install` calls the
post-install hook without loading the supervisor, and the supervisor without udev's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._autobind import autobind as autobind
    from ._policy import CrashTracker as CrashTracker
    from ._policy import Decision as Decision
    from ._policy import RestartPolicy as RestartPolicy
    from ._policy import describe_exit as describe_exit
    from ._privsep import Credentials as Credentials
    from ._privsep import PrivilegeError as PrivilegeError
    from ._privsep import VfioFds as VfioFds
    from ._privsep import drop_privileges as drop_privileges
    from ._privsep import exec_driver as exec_driver
    from ._privsep import open_vfio as open_vfio
    from ._privsep import resolve_user as resolve_user
    from ._privsep import spawn_driver as spawn_driver
    from ._run import run_as_device_user as run_as_device_user
    from ._run import supervise as supervise
    from ._run import systemd_exec as systemd_exec
    from ._run import systemd_pre as systemd_pre
    from ._run import systemd_stop_post as systemd_stop_post
    from ._supervisor import Supervisor as Supervisor
    from ._supervisor import SupervisorResult as SupervisorResult
    from ._systemd import install_unit as install_unit
    from ._udev import render_rules as render_rules
    from ._udev import sync_udev_rules as sync_udev_rules
    from ._udev import write_rules as write_rules
    from ._uids import device_credentials as device_credentials
    from ._uids import device_uid as device_uid

_LAZY = {
    "autobind": "_autobind",
    "CrashTracker": "_policy", "Decision": "_policy", "RestartPolicy": "_policy",
    "describe_exit": "_policy",
    "Credentials": "_privsep", "PrivilegeError": "_privsep", "VfioFds": "_privsep",
    "drop_privileges": "_privsep", "exec_driver": "_privsep", "open_vfio": "_privsep",
    "resolve_user": "_privsep", "spawn_driver": "_privsep",
    "run_as_device_user": "_run", "supervise": "_run", "systemd_exec": "_run",
    "systemd_pre": "_run", "systemd_stop_post": "_run",
    "Supervisor": "_supervisor", "SupervisorResult": "_supervisor",
    "install_unit": "_systemd",
    "render_rules": "_udev", "sync_udev_rules": "_udev", "write_rules": "_udev",
    "device_credentials": "_uids", "device_uid": "_uids",
}

__all__ = [
    "CrashTracker",
    "Credentials",
    "Decision",
    "PrivilegeError",
    "RestartPolicy",
    "Supervisor",
    "SupervisorResult",
    "VfioFds",
    "autobind",
    "describe_exit",
    "device_credentials",
    "device_uid",
    "drop_privileges",
    "exec_driver",
    "install_unit",
    "open_vfio",
    "render_rules",
    "resolve_user",
    "run_as_device_user",
    "spawn_driver",
    "supervise",
    "sync_udev_rules",
    "systemd_exec",
    "systemd_pre",
    "systemd_stop_post",
    "write_rules",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
