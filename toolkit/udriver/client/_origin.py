"""Where an installed driver came from, and whether an index entry may replace it.

Name ownership (`udriver.repoformat`, the `names/<name>` records) decides which
vendor's driver a name denotes. On this machine, the store records for each installed
driver the repository and owner role it came from (`DriverStore.origin`), and:

1. an install never replaces, nor counts as "unchanged", a driver of another owner
   (`check_origin`); a driver installed without an origin must at least be the same
   distribution and, at the same version, have the same ID table;
2. an update refuses a driver whose name now belongs to another owner
   (`check_still_owned`, asking the repository's signed `names` metadata).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InstallError
from ..repoformat import IndexEntry, canonical_name
from ._store import DriverStore, InstalledDriver

if TYPE_CHECKING:
    from ._remote import RemoteRepo

__all__ = ["check_origin", "check_still_owned"]


def check_origin(store: DriverStore, entry: IndexEntry, before: InstalledDriver) -> None:
    """Refuse to replace, or to keep as "unchanged", an installed driver that came
    from another owner than the one `entry` comes from (name ownership, `udriver.repoformat`).

    With a recorded origin, the repository and the owner role must be the same. A
    driver installed without one (a local wheel, or before origins were recorded)
    must at least be the same distribution, and at the same version the same ID
    table, as `entry`.

    Raises:
        InstallError: naming both owners (or both packages).
    """
    origin = store.origin(entry.driver)
    if origin is not None and entry.publisher and origin != (entry.repo, entry.publisher):
        err = InstallError(
            f"driver {entry.driver!r} is installed from {origin[1]!r} (repository "
            f"{origin[0]!r}), but repository {entry.repo!r} lists {entry.driver} "
            f"{entry.version} from {entry.publisher!r}: refusing to replace or keep "
            "another vendor's driver under this name")
        err.hint = (f"if the owner really changed, `udriver remove {entry.driver}` "
                    "and install it again")
        raise err
    m = before.manifest() if origin is None else None
    if m is not None and (m.package != entry.package or (
            before.current == entry.version and set(m.modaliases) != set(entry.modaliases))):
        err = InstallError(
            f"the installed {entry.driver} {before.current} ({m.package}) is not the "
            f"driver repository {entry.repo!r} lists ({entry.package} {entry.version}, "
            f"from {entry.publisher or 'an unknown publisher'!r}): refusing to replace or "
            "keep it")
        err.hint = (f"`udriver remove {entry.driver}` and install it again if the "
                    "repository's driver is the one you want")
        raise err

def check_still_owned(store: DriverStore, remotes: Sequence[RemoteRepo], driver: str) -> None:
    """Refuse to update `driver` if its name now belongs to another owner than the
    one it was installed from (the operator reassigned it, or the metadata says so).

    Raises:
        InstallError: naming both owners.
    """
    origin = store.origin(driver)
    remote = next((r for r in remotes if r.name == origin[0]), None) if origin else None
    if origin is None or remote is None:
        return
    if not remote.names_enforced():
        return
    now = remote.name_owner(canonical_name(driver))
    if now != origin[1]:
        err = InstallError(
            f"driver {driver!r} was installed from {origin[1]!r} (repository "
            f"{origin[0]!r}), but the name now belongs to {now!r}: refusing to update it "
            "from another vendor")
        err.hint = (f"if the owner really changed, `udriver remove {driver}` and install "
                    "it again")
        raise err
