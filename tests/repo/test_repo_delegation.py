"""Acceptance 3 (client side): the TUF delegation itself enforces vendor scope.

An attacker holding vendor `qemu`'s key (and, worse, the online snapshot/timestamp keys)
writes metadata directly on disk. A plain ngclient must still refuse to attribute a
target for acme's PCI vendor 8086 to qemu: the bins delegate `drivers/8086/*` and
`index/8086/*` (and `index/8086.json`) only to acme's role (TUF spec 5.6.7.2.1,
delegated role paths), and
acme's role must carry acme's signature (5.6.5).
"""

from __future__ import annotations

import pytest
from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import TargetFile
from udriver_repo._meta import Transaction


def _forge(repo, role: str, target: str, data: bytes, signer_role: str) -> None:
    """Add `target` to `role`, sign it with `signer_role`'s key, and commit on disk."""
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    md = txn.load(role)
    tf = TargetFile.from_data(target, data, ["sha256"])
    md.signed.targets[target] = tf
    d, _, base = target.rpartition("/")
    p = repo.public / "targets" / d / f"{tf.hashes['sha256']}.{base}"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    txn.stage(role, md)
    repo.keys.put(role, repo.keys.get(signer_role))  # the wrong key signs
    txn.commit()


def test_other_vendors_target_in_own_role_is_not_found(repo, make_client):
    _forge(repo, "vendor-qemu", "drivers/8086/evil.whl", b"evil", "vendor-qemu")
    _forge(repo, "vendor-qemu", "index/8086.json", b'{"evil": 1}', "vendor-qemu")
    _forge(repo, "vendor-qemu", "index/8086/4.json", b'{"evil": 2}', "vendor-qemu")
    up = make_client()
    up.refresh()
    # The path is not delegated to qemu, so the client never even consults qemu's role.
    assert up.get_targetinfo("drivers/8086/evil.whl") is None
    assert up.get_targetinfo("index/8086.json") is None
    assert up.get_targetinfo("index/8086/4.json") is None


def test_other_vendors_role_signed_with_wrong_key_is_rejected(repo, make_client):
    _forge(repo, "vendor-acme", "drivers/8086/evil.whl", b"evil", "vendor-qemu")
    up = make_client()
    up.refresh()
    with pytest.raises(tuf_exc.UnsignedMetadataError):
        up.get_targetinfo("drivers/8086/evil.whl")


def test_own_role_still_serves_its_own_ids(repo, make_client, edu_files):
    repo.publish(edu_files, vendor="qemu")
    _forge(repo, "vendor-qemu", "drivers/8086/evil.whl", b"evil", "vendor-qemu")
    up = make_client()
    up.refresh()
    assert up.get_targetinfo("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl") is not None
    assert up.get_targetinfo("drivers/8086/evil.whl") is None
