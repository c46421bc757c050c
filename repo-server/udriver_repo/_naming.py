"""Name ownership in the repository's metadata: functions over a repository.

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
- `name_owner(txn, name)`: the recorded owner of a name, for the publish planner
  (`_plan`, which refuses names owned by another role with `NameOwnedError`), and
  `record_name` to stage the free ones it claims.
- `assign_name` / `list_names`: the operator's view and override.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from udriver.errors import RepositoryError
from udriver.repoformat import (
    CLASS_INDEX,
    NAMES_ROLE,
    RESERVED,
    canonical_name,
    claimed_names,
    name_target,
)

from ._fsio import RepoLock, write_new
from ._meta import (
    CLASS_ROLE,
    Transaction,
    delegated,
    names_roles,
    read_index,
    target_path,
    vendor_role,
)
from ._owners import owner_of, record_target
from ._parts import RepoParts

__all__ = ["MigrationReport", "assign_name", "ensure_names", "list_names",
           "migrate_names", "name_bin", "name_owner", "names_delegated", "record_name"]

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


def name_bin(txn: Transaction, name: str) -> str:
    """The TAP 15 bin whose metadata records `name`."""
    dele = txn.load(NAMES_ROLE).signed.delegations
    assert dele is not None and dele.succinct_roles is not None
    return dele.succinct_roles.get_role_for_target(name_target(name))

def names_delegated(txn: Transaction) -> bool:
    """Whether top-level targets delegates `names/*` (TUF spec 4.5) in `txn`."""
    dele = txn.load("targets").signed.delegations
    return dele is not None and dele.roles is not None and NAMES_ROLE in dele.roles

def name_owner(txn: Transaction, name: str) -> str | None:
    """The role owning `name` in the metadata `txn` will commit (None: free)."""
    if not names_delegated(txn):
        return None
    md = txn.load(name_bin(txn, name))
    return owner_of(md.signed.targets.get(name_target(name)))

def list_names(repo: RepoParts) -> dict[str, str]:
    """Every recorded name and its owner role (reads all 256 bins: operator view)."""
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    if not names_delegated(txn):
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

def record_name(txn: Transaction, public: Path, name: str, owner: str,
                writes: dict[Path, bytes]) -> None:
    """Stage the record `name` -> `owner` in its bin; its file goes into `writes`."""
    tf, data = record_target(name, owner)
    b = name_bin(txn, name)
    md = txn.load(b)
    md.signed.targets[tf.path] = tf
    txn.stage(b, md)
    writes[target_path(public, tf.path, tf)] = data

def ensure_names(repo: RepoParts, txn: Transaction, writes: dict[Path, bytes]
                 ) -> MigrationReport:
    """Create the `names` role and assign existing names (see the module docstring).

    Raises:
        RepositoryError: the `targets` key is not available, or an index is corrupt.
    """
    report = MigrationReport()
    if names_delegated(txn):
        return report
    if not repo.keys.have("targets"):
        raise RepositoryError("cannot add the `names` role: the `targets` key "
                              f"({repo.keys.dir / 'targets.key'}) is not available")
    signer = repo.keys.get(NAMES_ROLE) if repo.keys.have(NAMES_ROLE) \
        else repo.keys.generate(NAMES_ROLE)
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
    for v in repo.state.vendors():
        role = vendor_role(v.name)
        if v.class_grant and not v.revoked:
            grants.append(role)
        if v.revoked or not txn.has(role):
            continue
        md = txn.load(role)
        for path in sorted(md.signed.targets):
            if path.startswith("index/"):
                for e in read_index(repo.public, md, path, path[len("index/"):-len(".json")]):
                    for n in claimed_names(e.driver, e.package):
                        claims.setdefault(n, set()).add(role)
    if txn.has(CLASS_ROLE):
        md = txn.load(CLASS_ROLE)
        for e in read_index(repo.public, md, f"index/{CLASS_INDEX}.json", CLASS_INDEX):
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
            record_name(txn, repo.public, n, RESERVED, writes)
    for n, roles in sorted(claims.items()):
        if len(roles) == 1:
            owner = next(iter(roles))
            record_name(txn, repo.public, n, owner, writes)
            report.assigned[n] = owner
        else:
            record_name(txn, repo.public, n, RESERVED, writes)
            report.contested[n] = sorted(roles)
    if report.contested or report.unassigned:
        log.warning("names left for the operator (`udriver-repo names assign`): "
                    "contested %s, unassigned %s", report.contested, report.unassigned)
    return report

def migrate_names(repo: RepoParts) -> MigrationReport:
    """`udriver-repo names migrate`: `ensure_names` as its own commit.

    Raises:
        RepositoryError: as for `ensure_names`, or a write failed.
    """
    with RepoLock(repo.path):
        txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
        writes: dict[Path, bytes] = {}
        report = ensure_names(repo, txn, writes)
        if txn.staged:
            for p, data in writes.items():
                write_new(p, data)
            txn.commit()
    if report.created:
        repo.audit.event("admin", "names-migrate",
                         f"assigned={len(report.assigned)} "
                         f"contested={sorted(report.contested)} "
                         f"unassigned={report.unassigned}")
    return report

def assign_name(repo: RepoParts, name: str, vendor: str) -> str | None:
    """The operator's decision: `name` (canonicalised) now belongs to `vendor`.

    Returns the previous owner role (None: it was free). Clients holding the old
    owner's driver refuse its updates from then on (the owner changed).

    Raises:
        RepositoryError: unknown or revoked vendor, or an invalid name.
    """
    v = repo.state.vendor(vendor.removeprefix("vendor-"))
    if v is None or v.revoked:
        raise RepositoryError(f"no active vendor {vendor!r}")
    canon = canonical_name(name)
    if not canon or not all(c.isalnum() or c == "-" for c in canon) or len(canon) > 200:
        raise RepositoryError(f"invalid name {name!r}: use letters, digits, `-`, `_`, `.`")
    role = vendor_role(v.name)
    with RepoLock(repo.path):
        txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
        writes: dict[Path, bytes] = {}
        ensure_names(repo, txn, writes)
        before = name_owner(txn, canon)
        if before != role:
            record_name(txn, repo.public, canon, role, writes)
        if txn.staged:
            for p, data in writes.items():
                write_new(p, data)
            txn.commit()
    repo.audit.event("admin", "name-assign", f"{canon} {before} -> {role}")
    return before

