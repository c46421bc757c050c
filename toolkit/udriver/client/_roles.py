"""Walks over a repository's verified delegations (TUF specification 1.0, 5.6.7).

python-tuf answers "what is target X's signed info" but not "which role listed it", and
has no query for "what may role R sign". Both walks here run over metadata python-tuf
loads and verifies itself (`Updater._load_targets`: signatures, versions against the
snapshot, expiry), so they read nothing unverified; they only choose the order.

- `signing_role`: python-tuf's own order (preorder depth first, a terminating
  delegation stops backtracking), so that the role found is the one whose entry
  `Updater.get_targetinfo` returned; the two answers must agree.
- `role_vendors`: breadth first over every delegation, for `udriver show NAME` on a
  machine without the device: the PCI vendors a vendor role's `paths` cover.
"""

from __future__ import annotations

import re

from tuf.api.metadata import Root, TargetFile, Targets  # type: ignore[attr-defined]
from tuf.ngclient.updater import Updater

from ..repoformat import NAMES_ROLE

__all__ = ["role_vendors", "signing_role"]

# A vendor role's delegated paths name its PCI vendors: index/<vvvv>/*, index/<vvvv>.json,
# drivers/<vvvv>/* (repository layout: udriver_repo._meta, docs/repoformat.md).
_VENDOR_PATH = re.compile(r"^(?:index|drivers)/([0-9a-f]{4})(?:/|\.json$)")
_MAX_ROLES = 1024  # delegations walked to find one role (the layout has 16 + 256 bins)


def signing_role(upd: Updater, name: str, info: TargetFile) -> str | None:
    """The role whose signed metadata lists target `name` with exactly `info`; None when
    the walk finds no such role or a different entry first (then the caller refuses).

    Raises:
        tuf.api.exceptions.RepositoryError, DownloadError: from python-tuf's loads.
    """
    stack: list[tuple[str, str]] = [(Targets.type, Root.type)]
    visited: set[str] = set()
    while stack and len(visited) <= upd.config.max_delegations:
        role, parent = stack.pop()
        if role in visited:
            continue
        md = upd._load_targets(role, parent)
        found = md.targets.get(name)
        if found is not None:
            return role if found == info else None
        visited.add(role)
        if md.delegations is not None:
            children = []
            for child, terminating in md.delegations.get_roles_for_target(name):
                children.append((child, role))
                if terminating:
                    stack = []
                    break
            stack.extend(reversed(children))
    return None


def role_vendors(upd: Updater, role: str) -> list[int] | None:
    """The PCI vendors whose indexes delegated role `role` may sign, from the `paths` of
    its signed delegations (TUF spec 4.5); None if no role delegates it.

    Vendor roles (`vendor-*`, leaves) and the `names` subtree are not descended into.
    The repository's layout delegates a vendor role from the hash bin of each of its
    vendor IDs, so every bin is read: 16 + 256 small files, fetched once, then from the
    metadata cache.

    Raises:
        tuf.api.exceptions.RepositoryError, DownloadError: from python-tuf's loads.
    """
    found: set[int] | None = None
    queue: list[tuple[str, str]] = [(Targets.type, Root.type)]
    seen: set[str] = set()
    while queue and len(seen) < _MAX_ROLES:
        name, parent = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        dele = upd._load_targets(name, parent).delegations
        if dele is None or dele.roles is None:  # none, or succinct (name bins)
            continue
        for child in dele.roles.values():
            # A vendor role is delegated once per hash bin of its vendor IDs, each time
            # with the paths of the IDs in that bin: collect them all.
            if child.name == role:
                found = (found or set()) | {int(m.group(1), 16) for p in child.paths or []
                                            if (m := _VENDOR_PATH.match(p))}
            elif child.name != NAMES_ROLE and not child.name.startswith("vendor-"):
                queue.append((child.name, name))
    return None if found is None else sorted(found)
