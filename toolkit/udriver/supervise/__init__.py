"""Running drivers: privilege separation, supervision, hotplug (udev) and systemd.

Public API:
    RestartPolicy, CrashTracker, Decision   pure restart/give-up rule (_policy)
    Supervisor                              the `udriver supervise` loop (_supervisor)
    resolve_user, open_vfio, drop_privileges, spawn_driver, exec_driver   (_privsep)
    render_rules, write_rules               udev rules for installed drivers (_udev)
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
                       "drop_privileges",
                       "exec_driver",
                       "open_vfio",
                       "resolve_user",
                       "spawn_driver",
]
