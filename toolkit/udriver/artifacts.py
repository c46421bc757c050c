"""Safe readers for built driver artifacts: wheels and .debs.

The repository server, the client and `udriver check` read packages that may come from
anyone, so this module trusts nothing an archive says about itself:

- every read is bounded: the archive file, the number of members, each member we read,
  and the total we decompress (a zip/tar bomb raises `PackageError`, it does not fill
  memory);
- member names are only compared, never joined to a filesystem path; a name that is
  absolute, contains `..`, a backslash or a NUL makes the archive invalid;
- sizes come from what we actually read, not from headers;
- nothing is extracted to disk.

Modules: the bounded primitives (`_bounded`), the wheel reader (here) and the .deb
reader (`_debfile`, its order of operations: deb(5)); this module is their public face.

Errors: `PackageError` for a malformed or oversized archive, `ManifestError` (a
subclass) for an invalid embedded `udriver.json`.
"""

from __future__ import annotations

import logging
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ._bounded import DEFAULT_LIMITS, Budget, Limits, check_size, read_member, safe_name
from ._debfile import (
    DEB_MANIFEST_DIR,
    UDEV_RULES_DIR,
    DebInfo,
    parse_control,
    parse_modaliases_field,
    read_deb,
)
from .errors import PackageError
from .manifest import MANIFEST_NAME, DriverManifest

__all__ = [
    "DEB_MANIFEST_DIR",
    "UDEV_RULES_DIR",
    "DebInfo",
    "Limits",
    "WheelInfo",
    "parse_control",
    "parse_modaliases_field",
    "read_deb",
    "read_wheel",
    "read_wheel_manifest",
]

log = logging.getLogger(__name__)

_WHEEL_MANIFEST_RE = re.compile(r"^[^/]+\.dist-info/" + re.escape(MANIFEST_NAME) + r"$")
_ENTRY_POINTS_RE = re.compile(r"^[^/]+\.dist-info/entry_points\.txt$")


@dataclass(frozen=True)
class WheelInfo:
    """What a driver wheel says about itself, read without extracting it."""

    path: Path
    """The wheel file."""
    manifest: DriverManifest
    """The embedded `*.dist-info/udriver.json`."""
    dist_info: str
    """Name of the `.dist-info` directory inside the wheel."""
    entry_points: str
    """Text of `entry_points.txt` ("" when missing)."""
    members: tuple[str, ...]
    """Every member name, in archive order."""


# ---------------------------------------------------------------------------- wheels


def read_wheel(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> WheelInfo:
    """Read a driver wheel's manifest and entry points without extracting it.

    Raises:
        PackageError: not a zip, unsafe/too many members, missing or duplicate
            `udriver.json`, or a bound exceeded.
        ManifestError: the embedded manifest is invalid.
    """
    src = Path(path)
    check_size(src, limits)
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackageError(f"{src}: not a valid wheel (zip) file: {e}") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.members:
            raise PackageError(f"{src}: too many members ({len(infos)}, limit {limits.members})")
        names = tuple(safe_name(i.filename, "wheel", src) for i in infos)
        if len(set(names)) != len(names):
            raise PackageError(f"{src}: duplicate member names in wheel")
        budget = Budget(src, limits.unpacked_bytes)
        found = [i for i in infos if _WHEEL_MANIFEST_RE.match(i.filename)]
        if not found:
            raise PackageError(
                f"{src}: no `*.dist-info/{MANIFEST_NAME}` in the wheel; "
                "build it with `udriver build` so the ID table is embedded")
        if len(found) > 1:
            raise PackageError(f"{src}: more than one `{MANIFEST_NAME}`: "
                               f"{', '.join(i.filename for i in found)}")
        info = found[0]
        dist_info = info.filename.split("/", 1)[0]
        manifest_bytes = _zip_read(zf, info, limits, budget, src)
        manifest = DriverManifest.from_json(manifest_bytes, f"{src.name}:{info.filename}")
        eps = ""
        for i in infos:
            if _ENTRY_POINTS_RE.match(i.filename) and i.filename.startswith(dist_info + "/"):
                eps = _zip_read(zf, i, limits, budget, src).decode("utf-8", "replace")
    return WheelInfo(src, manifest, dist_info, eps, names)


def _zip_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, budget: Budget,
              src: Path) -> bytes:
    try:
        with zf.open(info) as f:
            data = read_member(f, limits.small_file_bytes, info.filename, src)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise PackageError(f"{src}: cannot read {info.filename}: {e}") from e
    budget.take(len(data))
    return data


def read_wheel_manifest(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> DriverManifest:
    """The `udriver.json` embedded in a wheel's dist-info.

    Raises:
        PackageError: see `read_wheel`.
        ManifestError: the manifest is invalid.
    """
    return read_wheel(path, limits).manifest
