"""Publishers: their records, upload tokens and delegated roles.

A vendor is a row in REPO/state.db (`_state.State`: its name, PCI vendor IDs, class
grant and hashed tokens) and a delegated TUF role `vendor-<name>`, delegated by the
hash bins of its PCI vendor IDs (TUF spec 4.5, `_meta.vendor_paths`). Rules:

- `add_vendor` checks the name and IDs, writes the row and its token, then creates
  the role under the repository lock; if the role cannot be committed, the row is
  deleted again (no vendor without a role).
- `ensure_vendor_role` is idempotent: a publish calls it so the role exists with the
  vendor's current key and IDs (staged only; the publish commits it).
- `revoke_vendor` revokes the tokens, drops the delegations and forgets the key; the
  role stays listed in snapshot (rollback protection, client workflow 5.5.5).

Every operator action is written to the repository's audit log (`AuditLog.event`, the one log in `_audit`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tuf.api.metadata import Metadata, Targets

from udriver.errors import RepositoryError

from ._fsio import RepoLock
from ._meta import Keyring, Transaction, bin_of, delegated, vendor_paths, vendor_role
from ._parts import RepoParts
from ._state import NAME_RE
from ._types import Vendor

__all__ = ["add_vendor", "drop_unused_keys", "ensure_vendor_role", "revoke_vendor"]


def add_vendor(repo: RepoParts, name: str, pci_vendors: Sequence[int], class_grant: bool = False) -> str:
    """Create a publisher and its delegated role; return its upload token (shown once).

    Raises:
        RepositoryError: bad name or IDs, name taken, or a PCI vendor ID already owned.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RepositoryError(f"invalid vendor name {name!r}: use lower-case letters, "
                              "digits and `-` (at most 63), starting with a letter or digit")
    ids = sorted(set(pci_vendors))
    bad = [v for v in ids if not isinstance(v, int) or not 0 <= v < 0xFFFF]
    if bad:
        raise RepositoryError(f"invalid PCI vendor ID(s) {bad!r}: must be 0000..fffe")
    if not ids and not class_grant:
        raise RepositoryError("a vendor needs at least one `--pci-vendor` or a class grant")
    with RepoLock(repo.path):
        token = repo.state.add_vendor(name, ids, class_grant)
        try:
            txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
            vendor = repo.state.vendor(name)
            assert vendor is not None
            ensure_vendor_role(txn, repo.keys, vendor)
            txn.commit()
        except BaseException:
            repo.state.delete_vendor(name)
            raise
    repo.audit.event("admin", "vendor-add",
                     f"{name} pci={','.join(f'{v:04x}' for v in ids)} class={class_grant}")
    return token

def ensure_vendor_role(txn: Transaction, keys: Keyring, vendor: Vendor) -> None:
    """Make the vendor's role and its delegations exist with its current key (idempotent)."""
    role = vendor_role(vendor.name)
    key = (keys.get(role) if keys.have(role) else keys.generate(role)).public_key
    if not txn.has(role):
        txn.new_role(role)
    by_bin: dict[str, list[str]] = {}
    for v in vendor.pci_vendors:
        by_bin.setdefault(bin_of(f"{v:04x}"), []).append(f"{v:04x}")
    for b, vids in sorted(by_bin.items()):
        md = txn.load(b)
        dele = md.signed.delegations
        assert dele is not None and dele.roles is not None
        want = delegated(role, key.keyid, vendor_paths(vids))
        if dele.roles.get(role) == want and key.keyid in dele.keys:
            continue
        old = dele.roles.get(role)
        dele.roles[role] = want
        dele.keys[key.keyid] = key
        if old:
            drop_unused_keys(md)
        txn.stage(b, md)

def drop_unused_keys(md: Metadata[Targets]) -> None:
    """Remove the delegation keys no delegated role of `md` uses any more."""
    dele = md.signed.delegations
    assert dele is not None and dele.roles is not None
    used = {k for r in dele.roles.values() for k in r.keyids}
    for k in list(dele.keys):
        if k not in used:
            del dele.keys[k]


def revoke_vendor(repo: RepoParts, name: str) -> None:
    """Revoke a publisher: its tokens, its delegation, its role and its key.

    The bins stop delegating to `vendor-<name>` and drop its public key, so clients
    no longer trust anything that key signs (TUF spec 5.6.7: a target is only found
    through delegations); its drivers disappear from the TUF view. Its private key file
    is deleted. The apt view keeps its debs, and its PCI vendor IDs stay assigned to it (an operator decision to reassign).

    Raises:
        RepositoryError: unknown vendor.
    """
    v = repo.state.vendor(name)
    if v is None:
        raise RepositoryError(f"no such vendor: {name!r}")
    role = vendor_role(name)
    with RepoLock(repo.path):
        repo.state.revoke(name)
        txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
        for b in sorted({bin_of(f"{x:04x}") for x in v.pci_vendors}):
            md = txn.load(b)
            dele = md.signed.delegations
            assert dele is not None and dele.roles is not None
            if dele.roles.pop(role, None) is not None:
                drop_unused_keys(md)
                txn.stage(b, md)
        # The role stays listed in snapshot at its last version: a new snapshot may
        # not drop a file the previous one listed (TUF client workflow 5.5.5,
        # rollback protection), and without a delegation no client consults it.
        if txn.staged:
            txn.commit()
        repo.keys.forget(role)
    repo.audit.event("admin", "vendor-revoke", name)
