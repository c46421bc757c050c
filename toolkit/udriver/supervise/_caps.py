"""Become an unprivileged user with no capabilities, irreversibly (step 3 of `_privsep`).

The primitives of privilege separation, apart from what is opened before the drop:
`drop_privileges` in the child between fork and exec (prctl(2) PR_SET_NO_NEW_PRIVS and
PR_CAPBSET_DROP, setresuid(2), capset(2); capabilities(7) "Effect of user ID changes on
capabilities"), the memlock limit type1 accounts DMA against, and who the driver runs as.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
from dataclasses import dataclass
from pathlib import Path

from ..errors import UdriverError

__all__ = [
    "DEFAULT_MEMLOCK",
    "Credentials",
    "PrivilegeError",
    "drop_privileges",
    "resolve_user",
]

DEFAULT_MEMLOCK = 256 * 1024 * 1024
"""RLIMIT_MEMLOCK for the driver: enough for edu's 28-bit DMA window."""

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class PrivilegeError(UdriverError):
    """Dropping privileges failed; the driver must not run."""


@dataclass(frozen=True)
class Credentials:
    """Who the driver runs as."""

    uid: int
    """User ID; never 0."""
    gid: int
    """Primary group ID; never 0."""
    name: str
    """User name, for messages."""


def resolve_user(name: str) -> Credentials:
    """The administrator's explicit driver user `name` (`udriver supervise --user`).

    Without one, a driver runs as its device's own uid (`udriver.supervise._uids`), never
    as a user it shares with other drivers.

    Raises:
        PrivilegeError: `name` does not exist, or resolves to root.
    """
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"driver user {name!r} does not exist") from None
    if pw.pw_uid == 0 or pw.pw_gid == 0:
        raise PrivilegeError(f"refusing to run a driver as user {name!r}: "
                             f"uid {pw.pw_uid}, gid {pw.pw_gid} is root")
    return Credentials(pw.pw_uid, pw.pw_gid, name)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"{what} failed: {os.strerror(err)} (errno {err})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63


def _raise_memlock(want: int) -> None:
    """Set RLIMIT_MEMLOCK to `want`; without CAP_SYS_RESOURCE, as close as the hard limit allows.

    Raises:
        PrivilegeError: the limit cannot be set at all.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or (soft >= want and hard >= want):
        return
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (want, max(want, hard)
                                                     if hard != resource.RLIM_INFINITY
                                                     else hard))
        return
    except (OSError, ValueError):
        pass
    # No CAP_SYS_RESOURCE (e.g. a container): the soft limit can still rise to the hard one.
    # The DMA mappings then fail later with ENOMEM, which the runtime reports.
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
    except (OSError, ValueError) as e:
        raise PrivilegeError(f"setrlimit(RLIMIT_MEMLOCK, {want}) failed: {e}") from e


def drop_privileges(creds: Credentials, memlock: int | None = DEFAULT_MEMLOCK) -> None:
    """Irreversibly become `creds` with no capabilities (step 3 of the module rules).

    Call it in the child between fork and exec, or just before `os.execv`.

    Raises:
        PrivilegeError: any step failed, or a capability survived.
    """
    if creds.uid == 0 or creds.gid == 0:
        raise PrivilegeError("refusing to drop privileges to root")
    libc = _libc()
    if memlock is not None:
        _raise_memlock(memlock)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    for cap in range(_last_cap() + 1):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            # EINVAL: cap unknown to this kernel; EPERM: we are already without CAP_SETPCAP,
            # in which case the final check below decides.
            continue
    # The ambient set may not exist on old kernels (EINVAL): nothing to clear then.
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    try:
        os.setgroups([])
        os.setresgid(creds.gid, creds.gid, creds.gid)
        os.setresuid(creds.uid, creds.uid, creds.uid)
    except OSError as e:
        raise PrivilegeError(f"cannot switch to user {creds.name!r} "
                             f"({creds.uid}:{creds.gid}): {e.strerror}") from e
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(hdr), data), "capset(0)")
    if os.getuid() == 0 or os.geteuid() == 0 or os.getgid() == 0:
        raise PrivilegeError("still root after setresuid")
    _check(libc.capget(ctypes.byref(hdr), data), "capget")
    if any(d.effective or d.permitted or d.inheritable for d in data):
        raise PrivilegeError("capabilities survived the drop")
