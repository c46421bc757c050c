"""Upload file names: a strict grammar, and agreement with what the package says inside.

Rules:
- The name in the URL is never used as a path until it has matched one of two strict
  basename grammars: a wheel name (PEP 427 / the binary distribution format spec:
  `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`) or a Debian binary package
  name (Debian policy 4.x, `dpkg-name` convention: `{package}_{version}_{arch}.deb`, the
  epoch left out). Nothing else — no `/`, no `..`, no leading dot, no control characters,
  at most 200 characters — can ever reach the file system.
- After the artifact has been read (by `udriver.artifacts`), the name must agree with its
  metadata: the wheel's distribution name and version with the manifest's, the deb's
  package, version and architecture with its control file.

This module is pure: it checks strings and never touches files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from udriver.errors import PackageError

__all__ = ["UploadName", "check_deb_name", "check_wheel_name", "parse_upload_name"]

_MAX_LEN = 200
_WHEEL_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9_.]*[A-Za-z0-9])?"      # distribution (escaped: no '-')
    r"-[A-Za-z0-9_.!+]+"                              # version
    r"(?:-[0-9][A-Za-z0-9_.]*)?"                     # optional build tag
    r"-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+"  # python, abi, platform tags
    r"\.whl$"
)
# Debian policy 5.6.1 (Package: [a-z0-9][a-z0-9+.-]+), 5.6.12 (Version, epoch dropped in
# file names), 5.6.8 (Architecture).
_DEB_RE = re.compile(
    r"^(?P<package>[a-z0-9][a-z0-9+.-]+)"
    r"_(?P<version>[0-9][A-Za-z0-9.+~-]*)"
    r"_(?P<arch>[a-z0-9][a-z0-9-]*)"
    r"\.deb$"
)


@dataclass(frozen=True)
class UploadName:
    """A file name that passed the strict grammar."""

    filename: str
    """The basename, exactly as uploaded."""
    kind: Literal["wheel", "deb"]
    """Which grammar it matched."""


def parse_upload_name(filename: str) -> UploadName:
    """Check an uploaded file name against the wheel and deb grammars.

    Args:
        filename: the last path segment of the upload URL, already percent-decoded.

    Raises:
        PackageError: the name is not a plain wheel or deb basename.
    """
    if not filename or len(filename) > _MAX_LEN:
        raise PackageError(f"Invalid upload file name (empty or longer than {_MAX_LEN}): "
                           f"{filename[:_MAX_LEN]!r}")
    if _WHEEL_RE.match(filename):
        try:
            parse_wheel_filename(filename)
        except InvalidWheelFilename as e:
            raise PackageError(f"Invalid wheel file name ({e}): {filename!r}") from e
        return UploadName(filename, "wheel")
    if _DEB_RE.match(filename):
        return UploadName(filename, "deb")
    raise PackageError(
        "Invalid upload file name (expected `name-version-py-abi-platform.whl` or "
        f"`package_version_arch.deb`, a plain basename): {filename!r}")


def check_wheel_name(filename: str, package: str, version: str) -> None:
    """Check that a wheel's file name names the distribution and version inside it.

    Args:
        filename: the uploaded wheel's basename.
        package: `package` from the embedded udriver.json.
        version: `version` from the embedded udriver.json.

    Raises:
        PackageError: the name and the metadata disagree (the message names both).
    """
    try:
        name, ver, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as e:
        raise PackageError(f"Invalid wheel file name ({e}): {filename!r}") from e
    problems: list[str] = []
    if name != canonicalize_name(package):
        problems.append(f"distribution {str(name)!r} but udriver.json `package` is {package!r}")
    try:
        same = Version(version) == ver
    except InvalidVersion:
        same = False
    if not same:
        problems.append(f"version {str(ver)!r} but udriver.json `version` is {version!r}")
    if problems:
        raise PackageError(f"File name disagrees with the package metadata: {filename!r} has "
                           + "; ".join(problems))


def check_deb_name(filename: str, control: dict[str, str]) -> None:
    """Check that a deb's file name is `{Package}_{Version without epoch}_{Architecture}.deb`.

    Args:
        filename: the uploaded deb's basename.
        control: the fields of its DEBIAN/control file.

    Raises:
        PackageError: the name does not match the grammar or disagrees with the control file.
    """
    m = _DEB_RE.match(filename)
    if m is None:
        raise PackageError(f"Invalid deb file name (expected `package_version_arch.deb`): "
                           f"{filename!r}")
    # Debian policy 5.6.12: the epoch is not part of the file name.
    want_version = control.get("Version", "").split(":", 1)[-1]
    expected = {"package": control.get("Package", ""), "version": want_version,
                "arch": control.get("Architecture", "")}
    field_names = {"package": "Package", "version": "Version", "arch": "Architecture"}
    problems = [f"{key} {m.group(key)!r} but control `{field_names[key]}` is {want!r}"
                for key, want in expected.items() if m.group(key) != want]
    if problems:
        raise PackageError(f"File name disagrees with the package metadata: {filename!r} has "
                           + "; ".join(problems))
