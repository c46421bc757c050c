"""The repository: one directory, a static public tree, and the operations on it.

SKELETON: signatures are final; bodies land in the following commits.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from udriver.errors import RepositoryError

from ._types import PublishResult, Vendor, VerifyReport

__all__ = ["Repository"]


class Repository:
    """A udriver repository directory (see repo-contract for the layout)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.public = self.path / "public"

    @classmethod
    def init(cls, path: Path | str, root_threshold: int = 1,
             expiry: dict[str, timedelta] | None = None,
             root_key_dir: Path | str | None = None) -> "Repository":
        """Create keys, top-level roles, bins and the apt key in a new directory.

        Raises:
            RepositoryError: `path` already holds a repository or cannot be created.
        """
        raise RepositoryError("not implemented yet")

    @classmethod
    def open(cls, path: Path | str) -> "Repository":
        """Open an existing repository.

        Raises:
            RepositoryError: `path` is not a repository.
        """
        raise RepositoryError("not implemented yet")

    def add_vendor(self, name: str, pci_vendors: list[int], class_grant: bool = False) -> str:
        """Create a publisher and its delegated role; return its upload token (shown once).

        Raises:
            RepositoryError: bad name, name taken, or a PCI vendor ID already owned.
        """
        raise RepositoryError("not implemented yet")

    def list_vendors(self) -> list[Vendor]:
        """Every publisher, revoked ones included, sorted by name."""
        raise RepositoryError("not implemented yet")

    def revoke_vendor(self, name: str) -> None:
        """Revoke a publisher's tokens; its published drivers stay.

        Raises:
            RepositoryError: unknown vendor.
        """
        raise RepositoryError("not implemented yet")

    def authenticate(self, token: str) -> Vendor | None:
        """The active vendor owning `token`, or None. Hashed, constant-time compare."""
        raise RepositoryError("not implemented yet")

    def publish(self, files: list[Path], vendor: str) -> PublishResult:
        """Validate, scope-check, and atomically publish wheels and/or debs.

        Raises:
            PackageError: an invalid artifact.
            ScopeError: IDs outside the vendor's scope.
            ConflictError: same name and version already published with other bytes.
            RepositoryError: unknown/revoked vendor or a repository failure.
        """
        raise RepositoryError("not implemented yet")

    def refresh(self) -> None:
        """Re-sign snapshot and timestamp (and any role close to expiry)."""
        raise RepositoryError("not implemented yet")

    def rotate_key(self, role: str) -> None:
        """Replace the key of `role` (root, targets, snapshot, timestamp, bins, or a vendor).

        Raises:
            RepositoryError: unknown role, or the root keys needed are offline.
        """
        raise RepositoryError("not implemented yet")

    def verify(self, url: str | None = None) -> VerifyReport:
        """Run a fresh python-tuf client (and an apt checker) against the tree."""
        raise RepositoryError("not implemented yet")
