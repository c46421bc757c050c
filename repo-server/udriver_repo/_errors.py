"""Errors specific to the repository, all below `udriver.errors.RepositoryError`."""

from __future__ import annotations

from udriver.errors import RepositoryError

__all__ = ["AuthError", "ConflictError", "NameOwnedError", "ScopeError"]


class ScopeError(RepositoryError):
    """A package claims PCI IDs outside the publishing vendor's scope (HTTP 403)."""


class NameOwnedError(ScopeError):
    """A package claims a driver or distribution name another vendor owns (HTTP 403)."""


class ConflictError(RepositoryError):
    """A package of the same name and version with different bytes exists (HTTP 409)."""


class AuthError(RepositoryError):
    """A vendor name is unknown or revoked."""
