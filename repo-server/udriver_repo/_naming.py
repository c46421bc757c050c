"""Name ownership in the repository's metadata (a mixin of `Repository`).

The records and the rules are in `_owners`; this module reads and writes them through a
`_meta.Transaction`, so a name is assigned in the same commit (one timestamp rename)
as the publish that claims it, and a refused claim writes nothing.

- `ensure_names(txn, writes)`: a repository made before names were owned gets the
  `names` role, its key and its 256 bins, and every name its committed indexes list is
  assigned to the vendor role that signs that index (class-wide drivers: to the
  publisher named in the class index entry, else to the one vendor with a class grant).
  A name two vendors both list is recorded as `RESERVED` (nobody may publish it) and
  reported: an operator decides with `assign_name`. It runs inside the first publish after an upgrade, or
  explicitly as `udriver-repo names migrate`.
- `check_names(txn, role, claims, writes)`: refuse names owned by another role
  (`NameOwnedError`, HTTP 403), record the free ones for `role`.
- `assign_name` / `names`: the operator's view and override.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tuf.api.metadata import Metadata, TargetFile, Targets

from udriver.errors import RepositoryError
from udriver.repoformat import (
    CLASS_INDEX,
    NAMES_ROLE,
    RESERVED,
    IndexEntry,
    canonical_name,
    claimed_names,
    name_target,
)

from ._errors import NameOwnedError
from ._fsio import RepoLock, write_new
from ._meta import CLASS_ROLE, Keyring, Transaction, delegated, names_roles, vendor_role
from ._owners import owner_of, ownership_problems, record_target

if TYPE_CHECKING:
    from ._state import State

__all__ = ["MigrationReport", "NamingMixin"]

log = logging.getLogger(__name__)


@dataclass
class MigrationReport:
    """What `ensure_names` did to a repository without the `names` role."""

    created: bool = False
    """The `names` role and its bins were created."""
    assigned: dict[str, str] = field(default_factory=dict)
    """name -> owner role recorded from the committed indexes."""
    contested: dict[str, list[str]] = field(default_factory=dict)
    """name -> the roles listing it (left unassigned for the operator)."""
    unassigned: list[str] = field(default_factory=list)
    """Class-wide names whose publisher could not be told (reserved for the operator)."""


class NamingMixin:
    """ensure_names / check_names / assign_name / names for `Repository`."""

    path: Path
    metadata_dir: Path
    keys: Keyring
    expiry: dict[str, timedelta]
    state: State

    def _target_path(self, target: str, tf: TargetFile) -> Path:  # pragma: no cover
        raise NotImplementedError

    def _read_index(self, md: Metadata[Targets], path: str, name: str
                    ) -> list[IndexEntry]:  # pragma: no cover
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------
    @staticmethod
    def _name_bin(txn: Transaction, name: str) -> str:
        dele = txn.load(NAMES_ROLE).signed.delegations
        assert dele is not None and dele.succinct_roles is not None
        return dele.succinct_roles.get_role_for_target(name_target(name))

    @staticmethod
    def names_delegated(txn: Transaction) -> bool:
        """Whether top-level targets delegates `names/*` (TUF spec 4.5) in `txn`."""
        dele = txn.load("targets").signed.delegations
        return dele is not None and dele.roles is not None and NAMES_ROLE in dele.roles

    def name_owner(self, txn: Transaction, name: str) -> str | None:
        """The role owning `name` in the metadata `txn` will commit (None: free)."""
        if not self.names_delegated(txn):
            return None
        md = txn.load(self._name_bin(txn, name))
        return owner_of(md.signed.targets.get(name_target(name)))

    def names(self) -> dict[str, str]:
        """Every recorded name and its owner role (reads all 256 bins: operator view)."""
        txn = Transaction(self.metadata_dir, self.keys, self.expiry)
        if not self.names_delegated(txn):
            return {}
        dele = txn.load(NAMES_ROLE).signed.delegations
        assert dele is not None and dele.succinct_roles is not None
        out: dict[str, str] = {}
        for b in dele.succinct_roles.get_roles():
            for path, tf in txn.load(b).signed.targets.items():
                owner = owner_of(tf)
                if owner is not None:
                    out[path.split("/", 1)[1]] = owner
        return dict(sorted(out.items()))

    # -- writing -------------------------------------------------------------------
    def _record(self, txn: Transaction, name: str, owner: str,
                writes: dict[Path, bytes]) -> None:
        tf, data = record_target(name, owner)
        b = self._name_bin(txn, name)
        md = txn.load(b)
        md.signed.targets[tf.path] = tf
        txn.stage(b, md)
        writes[self._target_path(tf.path, tf)] = data

    def check_names(self, txn: Transaction, role: str, claims: Iterable[tuple[str, str]],
                    writes: dict[Path, bytes], what: str) -> None:
        """Refuse names another role owns; record free ones for `role` (staged in `txn`).

        Args:
            claims: (driver, package) of each driver being published.
            what: the files, for the message.

        Raises:
            NameOwnedError: a claimed name belongs to another role (nothing is staged).
        """
        owners: dict[str, str | None] = {}
        for driver, package in claims:
            for n in claimed_names(driver, package):
                owners[n] = self.name_owner(txn, n)
        problems = ownership_problems(role, owners)
        if problems:
            err = NameOwnedError(f"{what}: " + "; ".join(problems)
                                 + " (a driver name and its distribution name belong to "
                                 "the vendor that first published them)")
            err.hint = "rename the driver, or ask the repository's operator"
            raise err
        for n, o in sorted(owners.items()):
            if o is None:
                self._record(txn, n, role, writes)

    def ensure_names(self, txn: Transaction, writes: dict[Path, bytes]) -> MigrationReport:
        """Create the `names` role and assign existing names (see the module docstring).

        Raises:
            RepositoryError: the `targets` key is not available, or an index is corrupt.
        """
        report = MigrationReport()
        if self.names_delegated(txn):
            return report
        if not self.keys.have("targets"):
            raise RepositoryError("cannot add the `names` role: the `targets` key "
                                  f"({self.keys.dir / 'targets.key'}) is not available")
        signer = self.keys.get(NAMES_ROLE) if self.keys.have(NAMES_ROLE) \
            else self.keys.generate(NAMES_ROLE)
        key = signer.public_key
        # TUF spec 4.5: top-level targets delegates `names/*` to `names`.
        top = txn.load("targets")
        dele = top.signed.delegations
        assert dele is not None and dele.roles is not None
        dele.keys[key.keyid] = key
        dele.roles[NAMES_ROLE] = delegated(NAMES_ROLE, key.keyid, [f"{NAMES_ROLE}/*"])
        txn.stage("targets", top)
        for role, md in names_roles(key).items():
            txn.stage(role, md)
        report.created = True
        claims: dict[str, set[str]] = {}
        class_only: set[str] = set()
        grants = []
        for v in self.state.vendors():
            role = vendor_role(v.name)
            if v.class_grant and not v.revoked:
                grants.append(role)
            if v.revoked or not txn.has(role):
                continue
            md = txn.load(role)
            for path in sorted(md.signed.targets):
                if path.startswith("index/"):
                    for e in self._read_index(md, path, path[len("index/"):-len(".json")]):
                        for n in claimed_names(e.driver, e.package):
                            claims.setdefault(n, set()).add(role)
        if txn.has(CLASS_ROLE):
            md = txn.load(CLASS_ROLE)
            for e in self._read_index(md, f"index/{CLASS_INDEX}.json", CLASS_INDEX):
                for n in claimed_names(e.driver, e.package):
                    if e.vendor:
                        claims.setdefault(n, set()).add(e.vendor)
                    elif n not in claims:
                        class_only.add(n)
        if len(grants) == 1:
            for n in class_only:
                claims.setdefault(n, set()).add(grants[0])
        else:
            report.unassigned = sorted(n for n in class_only if n not in claims)
            for n in report.unassigned:
                self._record(txn, n, RESERVED, writes)
        for n, roles in sorted(claims.items()):
            if len(roles) == 1:
                owner = next(iter(roles))
                self._record(txn, n, owner, writes)
                report.assigned[n] = owner
            else:
                self._record(txn, n, RESERVED, writes)
                report.contested[n] = sorted(roles)
        if report.contested or report.unassigned:
            log.warning("names left for the operator (`udriver-repo names assign`): "
                        "contested %s, unassigned %s", report.contested, report.unassigned)
        return report

    def migrate_names(self) -> MigrationReport:
        """`udriver-repo names migrate`: `ensure_names` as its own commit.

        Raises:
            RepositoryError: as for `ensure_names`, or a write failed.
        """
        with RepoLock(self.path):
            txn = Transaction(self.metadata_dir, self.keys, self.expiry)
            writes: dict[Path, bytes] = {}
            report = self.ensure_names(txn, writes)
            if txn.staged:
                for p, data in writes.items():
                    write_new(p, data)
                txn.commit()
        if report.created:
            self.state.audit("admin", "names-migrate",
                             f"assigned={len(report.assigned)} "
                             f"contested={sorted(report.contested)} "
                             f"unassigned={report.unassigned}")
        return report

    def assign_name(self, name: str, vendor: str) -> str | None:
        """The operator's decision: `name` (canonicalised) now belongs to `vendor`.

        Returns the previous owner role (None: it was free). Clients holding the old
        owner's driver refuse its updates from then on (the owner changed).

        Raises:
            RepositoryError: unknown or revoked vendor, or an invalid name.
        """
        v = self.state.vendor(vendor.removeprefix("vendor-"))
        if v is None or v.revoked:
            raise RepositoryError(f"no active vendor {vendor!r}")
        canon = canonical_name(name)
        if not canon or not all(c.isalnum() or c == "-" for c in canon) or len(canon) > 200:
            raise RepositoryError(f"invalid name {name!r}: use letters, digits, `-`, `_`, `.`")
        role = vendor_role(v.name)
        with RepoLock(self.path):
            txn = Transaction(self.metadata_dir, self.keys, self.expiry)
            writes: dict[Path, bytes] = {}
            self.ensure_names(txn, writes)
            before = self.name_owner(txn, canon)
            if before != role:
                self._record(txn, canon, role, writes)
            if txn.staged:
                for p, data in writes.items():
                    write_new(p, data)
                txn.commit()
        self.state.audit("admin", "name-assign", f"{canon} {before} -> {role}")
        return before

