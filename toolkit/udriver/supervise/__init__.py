"""Running drivers: privilege separation, supervision, hotplug (udev) and systemd.

Modules (private; the names below are the public API):

    _policy      RestartPolicy, CrashTracker, Decision: the pure restart/give-up rule
    _privsep     open VFIO as root, drop to an unprivileged user with no capabilities,
    exec `udriver run --container-fd N --group-fd M`
    _uids        one uid per device (recorded, stable, unique): who each driver runs as
    _supervisor  Supervisor: the `udriver supervise` loop (backoff, give-up, SIGTERM)
    _kmsg        RemovalWatcher: vfio-pci's "give the device back" request on hot-unplug
    (a device's status record, claim and crash history: `udriver._devstate`)
    _run         `udriver supervise` stand-alone and the systemd unit's three steps
    _udev        render_rules/write_rules: udev rules for installed drivers' modaliases
    _autobind    `udriver autobind`: udev's add/remove hook (install, bind, start / stop)
    _systemd     the `udriver@.service` template unit
"""

from ._policy import CrashTracker, Decision, RestartPolicy, describe_exit
from ._privsep import (
    Credentials,
    PrivilegeError,
    VfioFds,
    drop_privileges,
    exec_driver,
    open_vfio,
    resolve_user,
    spawn_driver,
)
from ._supervisor import Supervisor, SupervisorResult
from ._udev import render_rules, write_rules
from ._uids import device_credentials, device_uid

__all__ = [
    "CrashTracker",
    "Credentials",
    "Decision",
    "PrivilegeError",
    "RestartPolicy",
    "Supervisor",
    "SupervisorResult",
    "VfioFds",
    "describe_exit",
    "device_credentials",
    "device_uid",
    "drop_privileges",
    "exec_driver",
    "open_vfio",
    "render_rules",
    "resolve_user",
    "spawn_driver",
    "write_rules",
]
