"""One user ID per device: the identity each driver process runs as.

Two drivers that share a uid can signal, ptrace and read each other (kill(2), "For a
process to have permission to send a signal, ... the real or effective user ID of the
sending process must equal the real or saved set-user-ID of the target process"), so
every PCI device gets a uid of its own, and its driver never shares it with another one.

Why udriver allocates the uid itself, also under systemd: `DynamicUser=` takes its name
from `User=` or, without it, from the unit name's *prefix* (systemd.exec(5),
"DynamicUser="; for a template that is `udriver` for every instance), and no unit
specifier turns a PCI address into a valid user name (a BDF holds ":", the passwd field
separator, refused by systemd's "User/Group Name Syntax"). So `udriver@.service` runs
its `ExecStart=!` step as root and drops to the uid allocated here, as
`udriver supervise` does without systemd.

Rules:

1. The range is `DEFAULT_RANGE`, 90000-99999, or `UDRIVER_DRIVER_UIDS=FIRST-LAST`.
   The default is above 16-bit `uid_t`, inside Debian Policy 9.2.2's
   "65536-4294967293: dynamically allocated user accounts" that adduser never hands
   out, below shadow's subordinate ids (login.defs(5) `SUB_UID_MIN` 100000) and
   systemd-nspawn's container ranges (524288 on), and outside systemd's `DynamicUser`
   range 61184-65519.
2. A uid (and the gid of the same number) that exists in the user or group database
   (NSS: files, LDAP...) is never allocated.
3. The allocation is recorded in `<state>/driver-uids.json` (`{"<bdf>": uid}`), under an
   exclusive lock (`<state>/driver-uids.lock`), written atomically (temporary file +
   rename): a device keeps its uid across restarts, replugs and reboots, and no two
   devices ever get the same one. Records are never reused for another device. A
   recorded uid is read without the lock (the file is only ever replaced whole), so the
   sandboxed `ExecStart=!` step, whose /var is read-only, finds what `ExecStartPre=+`
   recorded.
4. The pure part, `pick_uid`, decides; `device_uid` does the locking and I/O.
"""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
from collections.abc import Callable, Mapping
from pathlib import Path

from .. import paths
from ..errors import ConfigError
from ..fsio import write_atomic
from ..pci import normalise_bdf
from ._caps import Credentials, PrivilegeError

__all__ = ["DEFAULT_RANGE", "device_credentials", "device_uid", "pick_uid", "uid_range"]

DEFAULT_RANGE = (90000, 99999)
"""Inclusive uid range for drivers (rule 1)."""

_RECORD = "driver-uids.json"
_LOCK = "driver-uids.lock"


def uid_range(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The uid range: `UDRIVER_DRIVER_UIDS=FIRST-LAST`, else `DEFAULT_RANGE`.

    Raises:
        ConfigError: the variable is not FIRST-LAST with 1000 <= FIRST <= LAST < 2**32-1,
            or overlaps 65534 (nobody) / 65535 (16-bit -1).
    """
    env = os.environ if env is None else env
    text = env.get("UDRIVER_DRIVER_UIDS", "")
    if not text:
        return DEFAULT_RANGE
    first_s, sep, last_s = text.partition("-")
    try:
        first, last = int(first_s), int(last_s)
    except ValueError:
        first = last = -1
    if not sep or not 1000 <= first <= last < 2**32 - 1 or first <= 65535 <= last \
            or first <= 65534 <= last:
        raise ConfigError(f"invalid UDRIVER_DRIVER_UIDS {text!r}: want FIRST-LAST, "
                          f"1000 <= FIRST <= LAST, not covering 65534-65535")
    return first, last


def _taken_in_nss(uid: int) -> bool:
    """Rule 2: the number names a user or a group already."""
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return True
    except KeyError:
        return False


def pick_uid(bdf: str, records: Mapping[str, int], first: int, last: int,
             taken: Callable[[int], bool] = _taken_in_nss) -> int:
    """The uid of `bdf`: its recorded one, else the lowest free one in the range.

    Pure apart from `taken` (the NSS lookup, injectable for tests).

    Raises:
        PrivilegeError: the range is exhausted.
    """
    if bdf in records:
        return records[bdf]
    used = set(records.values())
    for uid in range(first, last + 1):
        if uid not in used and not taken(uid):
            return uid
    raise PrivilegeError(f"{bdf}: no free driver uid left in {first}-{last} "
                         f"({len(used)} recorded devices); widen UDRIVER_DRIVER_UIDS")


def _read_records(path: Path) -> dict[str, int]:
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise PrivilegeError(f"cannot read the driver uid records {path}: {e}; "
                             f"fix or remove the file") from e
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in obj.items()):
        raise PrivilegeError(f"invalid driver uid records {path}: want {{\"<bdf>\": uid}}")
    if len(set(obj.values())) != len(obj):
        shared = sorted(b for b, u in obj.items() if list(obj.values()).count(u) > 1)
        raise PrivilegeError(f"invalid driver uid records {path}: devices {shared} share "
                             f"a uid; each device needs its own")
    return obj


def _write_records(path: Path, records: Mapping[str, int]) -> None:
    write_atomic(path, (json.dumps(dict(records), sort_keys=True, indent=2) + "\n").encode())


def _allocate(bdf: str, base: Path, path: Path, first: int, last: int) -> int:
    """Under the lock: re-read, pick, record.

    Raises:
        PrivilegeError: the records cannot be locked, read or written; range exhausted.
    """
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = open(base / _LOCK, "a")  # noqa: SIM115 - held across the read-modify-write
    except OSError as e:
        raise PrivilegeError(f"{bdf}: cannot lock the driver uid records in {base}: "
                             f"{e.strerror}") from e
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = _read_records(path)
        uid = pick_uid(bdf, records, first, last)
        if bdf not in records:
            try:
                _write_records(path, {**records, bdf: uid})
            except OSError as e:
                raise PrivilegeError(f"{bdf}: cannot record driver uid {uid} in {path}: "
                                     f"{e.strerror}") from e
    return uid


def device_uid(bdf: str, *, allocate: bool = True, state: Path | None = None,
               env: Mapping[str, str] | None = None) -> int:
    """The uid of device `bdf`'s driver (rule 3); allocates and records one if needed.

    Args:
        bdf: PCI address (validated, made canonical).
        allocate: when False, only read the record.
        state: the state directory (default `udriver.paths.state_dir()`).
        env: environment for `UDRIVER_DRIVER_UIDS` (default os.environ).

    Raises:
        DeviceError: `bdf` is not a PCI address.
        ConfigError: `UDRIVER_DRIVER_UIDS` is invalid.
        PrivilegeError: no record and `allocate` is False; the records cannot be read or
            written; the range is exhausted; the recorded uid is outside the range.
    """
    bdf = normalise_bdf(bdf)
    first, last = uid_range(env)
    base = state or paths.state_dir()
    path = base / _RECORD
    uid = _read_records(path).get(bdf)
    if uid is None:
        if not allocate:
            raise PrivilegeError(f"{bdf}: no driver uid recorded in {path}")
        uid = _allocate(bdf, base, path, first, last)
    if not first <= uid <= last:
        raise PrivilegeError(f"{bdf}: recorded driver uid {uid} is outside "
                             f"{first}-{last} (UDRIVER_DRIVER_UIDS)")
    return uid


def device_credentials(bdf: str, *, allocate: bool = True, state: Path | None = None,
                       env: Mapping[str, str] | None = None) -> Credentials:
    """`Credentials` for `bdf`'s driver: its own uid, and the gid of the same number.

    Raises:
        DeviceError, ConfigError, PrivilegeError: as `device_uid`.
    """
    uid = device_uid(bdf, allocate=allocate, state=state, env=env)
    return Credentials(uid, uid, f"udriver uid {uid} of {normalise_bdf(bdf)}")
