"""Which installed driver claims a device: one inventory over one matcher.

Every question "which installed driver takes this device" (`udriver install --auto`,
`udriver devices`, `udriver autobind`, `udriver supervise` without `--driver`, and the
udev rules) is answered here, from the same inventory and by the same rule, so they
cannot disagree:

1. the inventory (`installed_manifests`): the ID table of every driver installed by
   `udriver install` (the store's `current` version) or from a .deb (its
   `<deb manifests>/<driver>.json`, `udriver.paths.deb_manifest_dir`); when both hold
   a driver of one name, the store's wins (it is what the runner loads first,
   `udriver.paths.driver_search_path`). An unreadable manifest is logged and skipped:
   one broken driver must not stop hotplug for the others;
2. the matcher (`find_installed`, pure): a named driver must claim the device; without
   a name, the most specific matching pattern wins (`Pattern.specificity`, the rule
   `resolve.choose` applies to a repository's candidates), the first driver by name
   on a tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._log import getLogger
from ..errors import InstallError, PackageError
from ..manifest import DriverManifest
from ..modalias import Modalias
from ..paths import deb_manifest_dir

if TYPE_CHECKING:
    from ._store import DriverStore

__all__ = ["find_installed", "installed_for", "installed_manifests"]

log = getLogger(__name__)


def installed_manifests(store: DriverStore | None = None, deb_dir: Path | None = None
                        ) -> list[DriverManifest]:
    """The ID table of every installed driver, sorted by driver name (module rule 1).

    `store` (default: the machine's) and `deb_dir` (default
    `udriver.paths.deb_manifest_dir()`) are injectable for tests.
    """
    from ._store import DriverStore  # pypa's installer &c. stay unloaded until needed
    deb_dir = deb_manifest_dir() if deb_dir is None else deb_dir
    out: dict[str, DriverManifest] = {}
    if deb_dir.is_dir():
        for f in sorted(deb_dir.glob("*.json")):
            try:
                m = DriverManifest.from_json(f.read_bytes(), str(f))
            except (OSError, PackageError) as e:
                log.warning("skipping %s: %s", f, e)
                continue
            out[m.driver] = m
    for inst in (store or DriverStore()).installed():  # `udriver install` wins over a .deb
        im = inst.manifest()
        if im is not None:
            out[im.driver] = im
    return [out[k] for k in sorted(out)]


def find_installed(alias: Modalias, driver: str | None,
                   manifests: Sequence[DriverManifest]) -> DriverManifest | None:
    """The installed driver for a device: `driver` if named, else the most specific match
    (module rule 2). None when nothing installed claims it (or `driver` is not installed).

    Raises:
        InstallError: `driver` is installed but its ID table does not claim the device.
    """
    if driver is not None:
        for m in manifests:
            if m.driver == driver:
                if not any(p.matches(alias) for p in m.patterns):
                    raise InstallError(f"installed driver `{driver}` ({m.package} {m.version}) "
                                       f"does not claim device {alias}: its ID table is "
                                       f"{', '.join(m.modaliases)}")
                return m
        return None
    best: tuple[tuple[int, int], DriverManifest] | None = None
    for m in manifests:
        for p in m.patterns:
            if p.matches(alias) and (best is None or p.specificity > best[0]):
                best = (p.specificity, m)
    return best[1] if best else None


def installed_for(devices: Mapping[str, Modalias], manifests: Sequence[DriverManifest]
                  ) -> dict[str, DriverManifest | None]:
    """The installed driver claiming each device (None: none), by `find_installed`."""
    return {bdf: find_installed(alias, None, manifests) for bdf, alias in devices.items()}
