"""The closed set of exceptions udriver raises.

Rules:
- `UdriverError` is the base and is never raised itself.
- Every boundary (OS, C, network, archive) wraps what it catches with `raise X(...) from e`.
- Messages say what failed, why, and the offending value; field names go in backticks.
"""

from __future__ import annotations

__all__ = [
    "AbiError",
    "BridgeError",
    "BuildError",
    "ConfigError",
    "DeviceError",
    "DownloadError",
    "GateError",
    "GateIdTableError",
    "InstallError",
    "ManifestError",
    "NativeError",
    "PackageError",
    "RepositoryError",
    "UdriverError",
]


class UdriverError(Exception):
    """Base of every udriver error. Never raised itself."""

    hint: str | None = None


class NativeError(UdriverError, OSError):
    """A call into the native VFIO layer returned -errno.

    `errno` and `strerror` are set as for OSError; `what` names the operation.
    """

    def __init__(self, errno: int, strerror: str, what: str) -> None:
        OSError.__init__(self, errno, strerror)
        self.what = what

    def __str__(self) -> str:
        return f"{self.what}: {self.strerror} (errno {self.errno})"


class DeviceError(UdriverError):
    """A PCI device is missing, in the wrong state, or was used wrongly."""


class AbiError(UdriverError):
    """A driver needs a udriver ABI the runtime does not provide."""


class BridgeError(UdriverError):
    """A kernel bridge (block device, network interface) cannot be set up or was misused."""


class PackageError(UdriverError, ValueError):
    """A wheel, deb or source tree is malformed or inconsistent."""


class ManifestError(PackageError):
    """A driver's ID table / `[tool.udriver]` declaration is invalid."""


class GateError(PackageError):
    """An artifact failed the acceptance gate (`udriver.gate.admit`).

    `problems` holds every reason at once, each a `(rule, message)` pair; the exception's
    text is the file name followed by every message.
    """

    def __init__(self, filename: str, problems: list[tuple[str, str]]) -> None:
        self.filename = filename
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{filename}: refused ({n} problem{'s' if n != 1 else ''}): "
                         + "; ".join(m for _, m in self.problems))


class GateIdTableError(GateError, ManifestError):
    """A `GateError` one of whose problems is a missing or invalid ID table."""


class BuildError(UdriverError):
    """`udriver build` failed (compiler, auditwheel, dpkg-deb...)."""


class RepositoryError(UdriverError):
    """Repository metadata is missing, invalid or fails verification."""


class DownloadError(RepositoryError):
    """Fetching from a repository failed."""


class ConfigError(UdriverError):
    """Local configuration is missing or invalid."""


class InstallError(UdriverError):
    """Installing, switching or removing a driver failed."""
