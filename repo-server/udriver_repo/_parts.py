"""`RepoParts`: what the repository's operations need of a repository.

Vendor management (`_vendors`), name ownership (`_naming`) and key rotation
(`_rotation`) are functions over a repository rather than mixins of `Repository`; they
see it through this protocol, which `Repository` satisfies (mypy checks each call).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Protocol

from ._audit import AuditLog
from ._meta import Keyring
from ._state import State

__all__ = ["RepoParts"]


class RepoParts(Protocol):
    """The directories, keys, lifetimes and state of one repository."""

    path: Path
    """The repository directory REPO (its lock is REPO/lock)."""
    public: Path
    """REPO/public, the static tree clients read."""
    metadata_dir: Path
    """REPO/public/metadata, the committed TUF metadata."""
    keys: Keyring
    """The online signing keys."""
    expiry: dict[str, timedelta]
    """Lifetime of each kind of role."""
    state: State
    """REPO/state.db: publishers and tokens."""
    audit: AuditLog
    """The one audit log (a table of REPO/state.db, owned by `_audit`)."""
    config: dict[str, object]
    """REPO/config.json."""
