"""Expiry refresh, key rotation and offline root signing: functions over a repository.

- `refresh` re-signs snapshot and timestamp, plus any delegated role past half of its
  lifetime (TUF spec 5.4.4/5.5.6/5.6.6: clients refuse expired metadata).
- Rotating a top-level key (targets, snapshot, timestamp, root) needs a new root
  version: it must carry a threshold of signatures from the previous root's keys and
  from its own keys (client workflow 5.3.4/5.3.5), which is how existing clients walk
  the root chain to the new key. When the root keys are offline the new root waits in
  REPO/pending/ until `sign-root --key FILE` has added enough signatures.
- Rotating `bins`, `class`, `names` or a vendor key only changes the delegating role(s), signed
  with online keys: targets for bins/class, the vendor's bins for a vendor.
- A new private key is written as `<name>.key.next` and renamed over `<name>.key` once
  the metadata that trusts it is committed.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from tuf.api.metadata import Metadata, Root

from udriver.errors import RepositoryError
from udriver.repoformat import NAMES_ROLE

from ._fsio import RepoLock, write_atomic
from ._keys import NaclSigner, generate_key, load_key
from ._meta import (
    BINS,
    CLASS_ROLE,
    MID_BINS,
    SERIALIZER,
    Transaction,
    bin_of,
    expiry_kind,
    load_root,
    vendor_role,
)
from ._parts import RepoParts

__all__ = ["TOP_LEVEL", "refresh", "rotate_key", "sign_root"]

log = logging.getLogger(__name__)

TOP_LEVEL = ("root", "targets", "snapshot", "timestamp")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def refresh(repo: RepoParts) -> int:
    """Re-sign snapshot and timestamp, and any role past half its lifetime.

    Returns the new timestamp version.

    Raises:
        RepositoryError: a key is missing or a write failed.
    """
    with RepoLock(repo.path):
        txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
        now = _now()
        for fname in sorted(txn.snapshot.signed.meta):
            role = fname[: -len(".json")]
            md = txn.load(role)
            if md.signed.expires - now < repo.expiry[expiry_kind(role)] / 2:
                txn.stage(role, md)
        root = load_root(repo.metadata_dir)
        if root.signed.expires - now < repo.expiry["root"] / 2:
            log.warning("root expires %s; sign a new root (`udriver-repo rotate-key root` "
                        "or re-sign with the offline keys)", root.signed.expires)
        version = txn.commit()
    repo.audit.event("admin", "refresh", f"timestamp {version}")
    return version


def _root_key_dir(repo: RepoParts) -> Path:
    d = repo.config.get("root_key_dir")
    return Path(str(d)) if d else repo.path / "keys"

def _next_key(repo: RepoParts, name: str, directory: Path | None = None) -> NaclSigner:
    p = (directory or repo.keys.dir) / f"{name}.key.next"
    p.unlink(missing_ok=True)
    return generate_key(p)

def _install_key(repo: RepoParts, name: str, signer: NaclSigner, directory: Path | None = None) -> None:
    d = directory or repo.keys.dir
    os.replace(d / f"{name}.key.next", d / f"{name}.key")
    if directory is None:
        repo.keys.put(name, signer)

def rotate_key(repo: RepoParts, role: str) -> None:
    """Replace the key of `role`: root, targets, snapshot, timestamp, bins, class, or a
    vendor name (`acme` or `vendor-acme`).

    Raises:
        RepositoryError: unknown role, or root signatures are needed from offline
            keys (the new root then waits for `sign-root`).
    """
    with RepoLock(repo.path):
        if role in TOP_LEVEL:
            _rotate_top(repo, role)
        elif role in ("bins", CLASS_ROLE, NAMES_ROLE):
            _rotate_delegating(repo, role)
        else:
            name = role.removeprefix("vendor-")
            vendor = repo.state.vendor(name)
            if vendor is None:
                raise RepositoryError(
                    f"unknown role {role!r}: expected one of {', '.join(TOP_LEVEL)}, "
                    "bins, class, names, or a vendor name")
            if vendor.revoked:
                raise RepositoryError(f"vendor {name!r} is revoked: it has no key to "
                                      "rotate (no delegation trusts one)")
            _rotate_vendor(repo, name)
    repo.audit.event("admin", "rotate-key", role)

def _rotate_top(repo: RepoParts, name: str) -> None:
    root = load_root(repo.metadata_dir)
    new = copy.deepcopy(root)
    new.signed.version += 1
    new.signed.expires = _now() + repo.expiry["root"]
    new.signatures.clear()
    if name == "root":
        rdir = _root_key_dir(repo)
        if not (rdir / "root-0.key").exists():
            raise RepositoryError(f"root key {rdir / 'root-0.key'} is not available; "
                                  "mount the offline root key directory first")
        old = load_key(rdir / "root-0.key")
        nxt = _next_key(repo, "root-0", rdir)
        new.signed.revoke_key(old.keyid, "root")
        new.signed.add_key(nxt.public_key, "root")
    else:
        for keyid in list(new.signed.roles[name].keyids):
            new.signed.revoke_key(keyid, name)
        nxt = _next_key(repo, name)
        new.signed.add_key(nxt.public_key, name)
    _save_pending(repo, new, name)
    _finish_root(repo, [])

def sign_root(repo: RepoParts, key_file: Path | str) -> bool:
    """Add a signature with an offline root key to the pending root; commit it (and
    the rotation it belongs to) once it has enough signatures. Returns True if committed.

    Raises:
        RepositoryError: no pending root, bad key file, or still short of signatures
            (the signature is kept; the message says how many are missing).
    """
    with RepoLock(repo.path):
        return _finish_root(repo, [load_key(Path(key_file))])

def _pending(repo: RepoParts) -> Path:
    return repo.path / "pending"

def _save_pending(repo: RepoParts, md: Metadata[Root], role: str) -> None:
    d = _pending(repo)
    d.mkdir(mode=0o700, exist_ok=True)
    write_atomic(d / "root.json", md.to_bytes(SERIALIZER))
    write_atomic(d / "action.json", json.dumps({"role": role}).encode())

def _finish_root(repo: RepoParts, extra: list[NaclSigner]) -> bool:
    d = _pending(repo)
    try:
        new = Metadata[Root].from_file(str(d / "root.json"))
        role = json.loads((d / "action.json").read_bytes())["role"]
    except (OSError, ValueError, KeyError) as e:
        raise RepositoryError(f"no pending root to sign in {d}") from e
    trusted = load_root(repo.metadata_dir)
    wanted = set(trusted.signed.roles["root"].keyids) | set(new.signed.roles["root"].keyids)
    signers = list(extra)
    rdir = _root_key_dir(repo)
    if rdir.is_dir():
        for p in sorted(rdir.glob("root-*.key*")):
            signers.append(load_key(p))
    for s in signers:
        if s.keyid in wanted:
            new.sign(s, append=True)
    # Client workflow 5.3.4 (old threshold) and 5.3.5 (new threshold).
    missing = []
    for label, by in (("previous", trusted), ("new", new)):
        try:
            by.verify_delegate("root", new)
        except Exception:  # noqa: BLE001 - UnsignedMetadataError
            r = by.signed.roles["root"]
            have = len(set(new.signatures) & set(r.keyids))
            missing.append(f"{r.threshold - have} more from the {label} root's keys")
    if missing:
        write_atomic(d / "root.json", new.to_bytes(SERIALIZER))
        err = RepositoryError(f"root version {new.signed.version} (rotating `{role}`) needs "
                              + " and ".join(missing))
        err.hint = "sign it with `udriver-repo sign-root --key ROOT_KEY_FILE`"
        raise err
    data = new.to_bytes(SERIALIZER)
    write_atomic(repo.metadata_dir / f"{new.signed.version}.root.json", data)
    write_atomic(repo.public / "keys" / "root.json", data)
    (d / "root.json").unlink()
    (d / "action.json").unlink()
    _after_root(repo, role)
    return True

def _after_root(repo: RepoParts, role: str) -> None:
    if role == "root":
        rdir = _root_key_dir(repo)
        _install_key(repo, "root-0", load_key(rdir / "root-0.key.next"), rdir)
        return
    _install_key(repo, role, load_key(repo.keys.dir / f"{role}.key.next"))
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    if role == "targets":
        txn.stage("targets", txn.load("targets"))
    txn.commit()  # new snapshot and timestamp, signed with the current keys

def _rotate_delegating(repo: RepoParts, name: str) -> None:
    nxt = _next_key(repo, name)
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    targets = txn.load("targets")
    dele = targets.signed.delegations
    assert dele is not None and dele.roles is not None
    members = MID_BINS if name == "bins" else [name]
    for r in members:
        dele.roles[r].keyids = [nxt.keyid]
    dele.keys[nxt.keyid] = nxt.public_key
    used = {k for r in dele.roles.values() for k in r.keyids}
    for k in [k for k in dele.keys if k not in used]:
        del dele.keys[k]
    txn.stage("targets", targets)
    for r in members:
        md = txn.load(r)
        mid = md.signed.delegations
        if name == "bins" and mid is not None and mid.roles is not None:
            # The middle bins delegate the leaves with the same `bins` key.
            mid.keys = {nxt.keyid: nxt.public_key}
            for leaf in mid.roles.values():
                leaf.keyids = [nxt.keyid]
        if name == NAMES_ROLE and mid is not None and mid.succinct_roles is not None:
            # TAP 15: the succinct bins are signed with the same `names` key.
            mid.keys = {nxt.keyid: nxt.public_key}
            mid.succinct_roles.keyids = [nxt.keyid]
            for b in mid.succinct_roles.get_roles():
                txn.stage(b, txn.load(b))
        txn.stage(r, md)
    if name == "bins":
        for r in BINS:
            txn.stage(r, txn.load(r))
    repo.keys.put(name, nxt)
    txn.commit()
    _install_key(repo, name, nxt)

def _rotate_vendor(repo: RepoParts, name: str) -> None:
    vendor = repo.state.vendor(name)
    assert vendor is not None
    role = vendor_role(name)
    nxt = _next_key(repo, role)
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    for b in sorted({bin_of(f"{v:04x}") for v in vendor.pci_vendors}):
        md = txn.load(b)
        dele = md.signed.delegations
        assert dele is not None and dele.roles is not None
        if role in dele.roles:
            old = dele.roles[role].keyids
            dele.roles[role].keyids = [nxt.keyid]
            dele.keys[nxt.keyid] = nxt.public_key
            for k in old:
                if not any(k in r.keyids for r in dele.roles.values()):
                    dele.keys.pop(k, None)
            txn.stage(b, md)
    txn.stage(role, txn.load(role))
    repo.keys.put(role, nxt)
    txn.commit()
    _install_key(repo, role, nxt)
