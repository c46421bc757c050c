"""The check after download: does the package really drive this device? Pure.

TUF proves the file is the one the publisher signed; it does not prove that the
publisher's index told the truth about the package. So before anything is installed,
the ID table embedded in the wheel (`*.dist-info/udriver.json`, read by
`udriver.artifacts`) must:

1. name the same package, driver and version as the index entry that led to it;
2. carry the same modalias table as the index entry;
3. match every device it is being installed for (kernel modalias glob rules).

Every problem is collected before raising, so the message shows them all.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import PackageError
from ..manifest import DriverManifest
from ..modalias import Modalias
from ..repoformat import IndexEntry

__all__ = ["check_package"]


def check_package(manifest: DriverManifest, entry: IndexEntry,
                  devices: Mapping[str, Modalias] | None = None) -> None:
    """Refuse a downloaded package that is not what the index promised (rules 1-3).

    Raises:
        PackageError: with every mismatch, naming the package, the field and the device.
    """
    what = f"{entry.package} {entry.version}"
    problems: list[str] = []
    for field in ("package", "driver", "version"):
        got, want = getattr(manifest, field), getattr(entry, field)
        if got != want:
            problems.append(f"embedded `{field}` is {got!r}, the signed index says {want!r}")
    if set(manifest.modaliases) != set(entry.modaliases):
        problems.append(f"embedded ID table {sorted(manifest.modaliases)} differs from the "
                        f"signed index's {sorted(entry.modaliases)}")
    patterns = manifest.patterns
    for bdf, alias in sorted((devices or {}).items()):
        if not any(p.matches(alias) for p in patterns):
            problems.append(f"embedded ID table {sorted(manifest.modaliases)} does not match "
                            f"device {bdf} ({alias})")
    if problems:
        err = PackageError(f"refusing to install {what}: " + "; ".join(problems))
        err.hint = "nothing was installed; report this package to the repository's operator"
        raise err
