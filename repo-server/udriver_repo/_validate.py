"""Validate an uploaded wheel or .deb the way `udriver check` does, without running it.

Order: read the archive with the bounded, path-safe readers of `udriver.artifacts`
(a truncated file, `../` names, a zip bomb or a missing ID table raise `PackageError`
here), then check that the file name agrees with the metadata, then the static checks:

- wheel: the file name is `<package>-<version>-...whl` per the manifest (PEP 427), the
  entry point in `entry_points.txt` equals the manifest's, the ABI is one this runtime
  line accepts, and a wheel without native code is tagged `py3-none-any`.
  The toolchain's `driver-ids` check is deliberately skipped: it imports the driver,
  i.e. runs uploaded code, which a repository server must never do. The ID table the
  client relies on is the embedded manifest, which is checked.
- deb: the toolchain's `check_deb` (control, Modaliases, udev rule, Depends, md5sums,
  layout, ABI) when `udriver.toolchain` is importable, plus the file name
  `<Package>_<Version without epoch>_<Architecture>.deb` (Debian policy 5.6.1/5.6.12).

Collects every problem of one artifact before raising.
"""

from __future__ import annotations

import configparser
import logging
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from udriver.abi import check_abi
from udriver.artifacts import DebInfo, read_deb, read_wheel
from udriver.errors import PackageError, UdriverError
from udriver.manifest import ENTRY_POINT_GROUP, DriverManifest

__all__ = ["Artifact", "validate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Artifact:
    """A validated artifact and its bytes."""

    path: Path
    """Where it was read from."""
    kind: str
    """"wheel" or "deb"."""
    manifest: DriverManifest
    """Its ID table and identity."""
    data: bytes
    """The file's bytes (hashed and copied into the tree)."""
    control: dict[str, str] | None = None
    """The deb's control fields (None for a wheel)."""


def validate(path: Path) -> Artifact:
    """Read and check one artifact.

    Raises:
        PackageError: not a .whl/.deb, unreadable, or any check failed (all listed).
    """
    if path.name.endswith(".whl"):
        return _wheel(path)
    if path.name.endswith(".deb"):
        return _deb(path)
    raise PackageError(f"{path.name}: not a driver artifact (expected a .whl or .deb file name)")


def _fail(path: Path, problems: list[str]) -> None:
    if problems:
        raise PackageError(f"{path.name}: " + "; ".join(problems))


def _wheel(path: Path) -> Artifact:
    info = read_wheel(path)
    m = info.manifest
    problems: list[str] = []
    try:
        name, ver, _, tags = parse_wheel_filename(path.name)
        if canonicalize_name(m.package) != name or ver != Version(m.version):
            problems.append(f"file name says {name} {ver} but the manifest says "
                            f"{m.package} {m.version}")
    except (InvalidWheelFilename, InvalidVersion) as e:
        tags = frozenset()
        problems.append(f"invalid wheel file name: {e}")
    cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        cp.read_string(info.entry_points)
        ep = cp.get(ENTRY_POINT_GROUP, m.driver, fallback=None)
    except configparser.Error:
        ep = None
    if ep is None or ep.strip() != m.entry_point:
        problems.append(f"`entry_points.txt` [{ENTRY_POINT_GROUP}] `{m.driver}` is {ep!r}, "
                        f"the manifest says {m.entry_point!r}")
    try:
        check_abi(m.abi)
    except UdriverError as e:
        problems.append(str(e))
    native = any(n.endswith(".so") or ".so." in n for n in info.members)
    if not native and tags and not all(
            t.interpreter.startswith("py") and t.abi == "none" and t.platform == "any"
            for t in tags):
        problems.append("no native code but not tagged py3-none-any")
    if native and tags and not all(t.abi == "abi3" and t.platform.startswith("manylinux")
                                   for t in tags):
        problems.append("native code must be tagged cp3xx-abi3-manylinux_*")
    _fail(path, problems)
    return Artifact(path, "wheel", m, path.read_bytes())


def _deb(path: Path) -> Artifact:
    info: DebInfo = read_deb(path)
    problems: list[str] = []
    m = info.manifest
    if m is None:
        raise PackageError(f"{path.name}: no ID table under /usr/share/udriver/drivers/; "
                           "build it with `udriver build`")
    upstream = info.version.split(":", 1)[-1]
    want = f"{info.package}_{upstream}_{info.architecture}.deb"
    if path.name != want:
        problems.append(f"file name disagrees with the control data (expected {want!r})")
    problems += _toolchain_deb_checks(path)
    try:
        check_abi(m.abi)
    except UdriverError as e:
        problems.append(str(e))
    _fail(path, sorted(set(problems), key=problems.index))
    return Artifact(path, "deb", m, path.read_bytes(), dict(info.control))


def _toolchain_deb_checks(path: Path) -> list[str]:
    try:
        from udriver.toolchain._checks import check_deb  # the toolchain's `udriver check`
    except ImportError:  # pragma: no cover - toolchain not installed
        log.debug("udriver.toolchain not importable; static deb checks only")
        return []
    return [f"{r.name}: {r.detail}" for r in check_deb(path) if not r.ok]
