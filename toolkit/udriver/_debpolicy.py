"""What a driver .deb made by `udriver build` contains: names, versions, fields, rules.

One source of truth for two readers: `udriver.toolchain` writes a driver .deb from these
functions, and the acceptance gate (`udriver.gate`) accepts a .deb only when it holds
exactly what they produce. Debian policy references in brackets.

- package name `udriver-driver-<driver>` [5.6.1]; version: the PEP 440 version mapped
  to a Debian version that sorts the same way, with Debian revision `-1` [5.6.12];
- control fields, in this order: `CONTROL_FIELDS` [5.3], and nothing else;
- `Depends:` python3, the udriver runtime range that provides the driver's ABI, and for
  native code libc6 and python3-cffi-backend [7.1];
- `/usr/lib/udev/rules.d/60-udriver-<driver>.rules`: one `add` rule per modalias
  pattern, and nothing else (a udev rule's `RUN+=` runs as root).

This module is pure: it computes strings and bytes and never touches files.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from .abi import ABI_VERSION
from .errors import BuildError
from .manifest import DriverManifest

__all__ = [
    "CONTROL_FIELDS",
    "DEB_MANIFEST_DIR",
    "DRIVER_ROOT",
    "PRIORITY",
    "PYTHON_DEPENDS",
    "SECTION",
    "UDEV_RULES_DIR",
    "control_depends",
    "deb_package_name",
    "deb_version",
    "modaliases_field",
    "runtime_depends",
    "udev_rule_lines",
    "udev_rules_path",
    "udev_rules_text",
]

#: Where a driver .deb puts the wheel's files (the runtime adds `<DRIVER_ROOT>/<driver>`
#: to sys.path, udriver.paths).
DRIVER_ROOT = "usr/lib/udriver/drivers"
#: Where a driver .deb carries its manifest: `<DEB_MANIFEST_DIR>/<driver>.json`.
DEB_MANIFEST_DIR = "usr/share/udriver/drivers"
#: Where a driver .deb carries its udev rule.
UDEV_RULES_DIR = "usr/lib/udev/rules.d"
#: Every control field `udriver build` writes, in its order (policy 5.3).
CONTROL_FIELDS = ("Package", "Version", "Architecture", "Maintainer", "Installed-Size",
                  "Depends", "Section", "Priority", "Modaliases", "Description")
SECTION = "misc"
PRIORITY = "optional"
PYTHON_DEPENDS = "python3 (>= 3.11)"
#: Native drivers also need the cffi backend module their abi3 extension imports.
CFFI_DEPENDS = "python3-cffi-backend"

_RUNTIME_PACKAGE = "udriver"
_DEB_REVISION = "1"
#: ABI major -> (first runtime version of that major's 1.0, first runtime version that no
#: longer provides it). udriver 0.1 shipped ABI 1.0; a new ABI major means udriver 2.
_ABI_RUNTIMES: dict[int, tuple[str, str]] = {1: ("0.1", "2")}
#: ABI (major, minor) -> first runtime version providing it (append when a minor is added).
# 1.1 (the kernel-bridge API) lands before any 0.1 runtime was released, so 0.1 provides
# it; once a runtime is released, a new minor ABI maps to the next runtime version.
_ABI_FIRST_RUNTIME: dict[tuple[int, int], str] = {(1, 0): "0.1", (1, 1): "0.1"}


def deb_package_name(driver: str) -> str:
    """`udriver-driver-<driver>`, with `_` turned into `-` (policy 5.6.1: [a-z0-9+.-])."""
    return "udriver-driver-" + driver.replace("_", "-")


def deb_version(version: str) -> str:
    """A PEP 440 version as a Debian version that sorts the same way (policy 5.6.12).

    Raises:
        BuildError: not a PEP 440 version.
    """
    try:
        v = Version(version)
    except InvalidVersion as e:
        raise BuildError(f"`[project] version` is not a PEP 440 version: {version!r}") from e
    out = ".".join(str(p) for p in v.release)
    if v.epoch:
        out = f"{v.epoch}:{out}"
    if v.pre:
        out += f"~{v.pre[0]}{v.pre[1]}"
    if v.post is not None:
        out += f"+post{v.post}"
    if v.dev is not None:
        out += f"~~dev{v.dev}"
    if v.local:
        out += f"+{v.local}"
    # A Debian revision makes it a non-native package, whose changelog is
    # changelog.Debian.gz (policy 12.7); the upstream is the Python distribution.
    return f"{out}-{_DEB_REVISION}"


def runtime_depends(abi: tuple[int, int]) -> str:
    """The `Depends:` clause on the runtime range that provides `abi`.

    Raises:
        BuildError: no known runtime provides `abi`.
    """
    if abi[0] not in _ABI_RUNTIMES or abi not in _ABI_FIRST_RUNTIME:
        if abi == ABI_VERSION:
            raise BuildError(f"internal: no runtime version recorded for ABI {abi[0]}.{abi[1]}")
        raise BuildError(f"no udriver runtime is known to provide ABI {abi[0]}.{abi[1]}")
    low, high = _ABI_FIRST_RUNTIME[abi], _ABI_RUNTIMES[abi[0]][1]
    return f"{_RUNTIME_PACKAGE} (>= {low}), {_RUNTIME_PACKAGE} (<< {high})"


def control_depends(abi: tuple[int, int], native_glibc: tuple[int, int] | None) -> str:
    """The whole `Depends:` value `udriver build` writes (policy 7.1).

    Raises:
        BuildError: no known runtime provides `abi`.
    """
    extra = [] if native_glibc is None else [
        f"libc6 (>= {native_glibc[0]}.{native_glibc[1]})", CFFI_DEPENDS]
    return ", ".join([*extra, PYTHON_DEPENDS, runtime_depends(abi)])


def modaliases_field(manifest: DriverManifest) -> str:
    """`Modaliases: udriver(<pattern>, ...)`, the ubuntu-drivers convention."""
    return f"udriver({', '.join(manifest.modaliases)})"


def udev_rule_lines(manifest: DriverManifest) -> list[str]:
    """The rule lines (no comments) for exactly the manifest's patterns."""
    return [f'ACTION=="add", SUBSYSTEM=="pci", ENV{{MODALIAS}}=="{p}", '
            f'RUN+="/usr/bin/udriver autobind --driver {manifest.driver} $kernel"'
            for p in manifest.modaliases]


def udev_rules_path(driver: str) -> str:
    """`usr/lib/udev/rules.d/60-udriver-<driver>.rules` (relative, no leading `/`)."""
    return f"{UDEV_RULES_DIR}/60-udriver-{driver}.rules"


def udev_rules_text(manifest: DriverManifest) -> bytes:
    """The exact bytes of the driver's udev rules file."""
    pkg = deb_package_name(manifest.driver)
    return (f"# udev rules for the udriver driver `{manifest.driver}` ({pkg}).\n"
            "# On hot-plug of a matching device, hand it to the udriver runtime.\n"
            + "".join(line + "\n" for line in udev_rule_lines(manifest))).encode()
