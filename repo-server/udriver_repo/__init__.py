"""udriver_repo: the signed udriver driver repository (TUF + apt view).

Public API (used by `udriver_repo.server` and `udriver_repo.cli`)::

    repo = Repository.init(path, root_threshold=1)      # or Repository.open(path)
    token = repo.add_vendor("acme", [0x1234])           # shown once, stored hashed
    vendor = repo.authenticate(token)                   # Vendor | None
    result = repo.publish([wheel, deb], vendor="acme")  # atomic, crash-safe, locked
    repo.refresh(); repo.rotate_key("targets"); report = repo.verify()
"""

from __future__ import annotations

from ._errors import AuthError, ConflictError, ScopeError
from ._repository import Repository
from ._types import PublishedDriver, PublishResult, Vendor, VerifyReport

__all__ = [
    "AuthError",
    "ConflictError",
    "PublishResult",
    "PublishedDriver",
    "Repository",
    "ScopeError",
    "Vendor",
    "VerifyReport",
]
