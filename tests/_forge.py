"""Forgeries a hostile vendor could sign, for the tests of what the client refuses.

`sign_vendor_index` needs the repository core's private transaction (`udriver_repo._meta`):
the public API refuses to publish an index that lies about its drivers, which is the point.
Test code only (tests/client/test_shards.py, tests/vm/test_hotplug_attacks.py).
"""

from __future__ import annotations

__all__ = ["sign_vendor_index"]


def sign_vendor_index(repo: object, vendor: str, pci_vendor: str, patterns: list[str]) -> None:
    """Sign, with `vendor`'s own key, a per-vendor `index/<pci_vendor>.json` in which every
    published driver of that PCI vendor claims `patterns` (a lying index: only the
    client's check of the package's own ID table after download can catch it)."""
    from tuf.api.metadata import TargetFile
    from udriver_repo._meta import Transaction, vendor_role

    from udriver.repoformat import encode_index, entry_from_json

    entries = repo.index(pci_vendor)  # type: ignore[attr-defined]
    for e in entries:
        e["modaliases"] = list(patterns)
    data = encode_index(pci_vendor, [entry_from_json(e, i, pci_vendor)
                                     for i, e in enumerate(entries)])
    name = f"index/{pci_vendor}.json"
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)  # type: ignore[attr-defined]
    md = txn.load(vendor_role(vendor))
    tf = TargetFile.from_data(name, data, ["sha256"])
    md.signed.targets[name] = tf
    txn.stage(vendor_role(vendor), md)
    repo._target_path(name, tf).write_bytes(data)  # type: ignore[attr-defined]
    txn.commit()
