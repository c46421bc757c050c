"""Creating a repository directory: keys, the first TUF metadata, the apt key.

Order of operations (a half-made directory is never mistaken for a repository, because
`config.json`, which `Repository.open` requires, is written after all metadata and just
before the first `timestamp.json`):

1. directories (`keys/` 0700) and `state.db`;
2. ed25519 keys: root (threshold configurable, optionally outside REPO for offline
   use), targets, snapshot, timestamp, bins, class, names;
3. `1.root.json` signed by every root key (TUF spec 4.3; consistent snapshots on) and
   its copy `keys/root.json` for bootstrapping clients;
4. `1.targets.json` delegating to `class`, the 16 middle bins and `names` (which
   delegates to 256 succinct name bins, TAP 15), those roles (empty), the first snapshot, `config.json`, then `timestamp.json`;
5. the GnuPG key of the apt view and its public halves `keys/apt.asc`, `keys/apt.gpg`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuf.api.metadata import Delegations, Metadata, MetaFile, Root, Snapshot, Targets, Timestamp

from udriver.errors import RepositoryError
from udriver.repoformat import CLASS_INDEX, NAMES_ROLE

from ._fsio import write_atomic
from ._gpg import Gpg
from ._meta import (
    BINS,
    CLASS_ROLE,
    EXPIRY_DEFAULTS,
    MID_BINS,
    SERIALIZER,
    Keyring,
    bin_paths,
    delegated,
    make_bin,
    mid_of,
    names_roles,
)
from ._state import State

__all__ = ["create_repository"]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def create_repository(repo: Path, root_threshold: int, expiry: dict[str, timedelta],
                      root_key_dir: Path | str | None, root_keys: int | None) -> None:
    """Create everything under `repo` (see the module docstring for the order).

    Raises:
        RepositoryError: bad threshold or lifetimes, `repo` is already a repository, or
            a file, key or gpg operation failed.
    """
    n_root = root_keys or root_threshold
    if root_threshold < 1 or n_root < root_threshold:
        raise RepositoryError(f"root threshold must be 1..{n_root} (the number of root "
                              f"keys), got {root_threshold}")
    if (repo / "config.json").exists():
        raise RepositoryError(f"already a repository: {repo}")
    bad = set(expiry or {}) - set(EXPIRY_DEFAULTS)
    if bad:
        raise RepositoryError(f"unknown role(s) in expiry: {sorted(bad)}; "
                              f"known: {sorted(EXPIRY_DEFAULTS)}")
    try:
        repo.mkdir(parents=True, exist_ok=True)
        (repo / "keys").mkdir(mode=0o700, exist_ok=True)
        (repo / "staging").mkdir(mode=0o700, exist_ok=True)  # uploads: private
        for d in ("metadata", "targets", "pool", "dists", "keys"):
            (repo / "public" / d).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RepositoryError(f"cannot create repository at {repo}: {e.strerror}") from e
    lifetimes = dict(EXPIRY_DEFAULTS, **(expiry or {}))
    State(repo / "state.db").create()
    keys = Keyring(repo / "keys")
    rdir = Path(root_key_dir) if root_key_dir else repo / "keys"
    root_signers = [Keyring(rdir).generate(f"root-{i}") for i in range(n_root)]
    online = {r: keys.generate(r) for r in ("targets", "snapshot", "timestamp", "bins",
                                             CLASS_ROLE, NAMES_ROLE)}
    now = _now()
    md_dir = repo / "public" / "metadata"
    # TUF spec 4.3: root lists the top-level keys and thresholds; consistent snapshots on.
    root = Metadata(Root(expires=now + lifetimes["root"], consistent_snapshot=True))
    for s in root_signers:
        root.signed.add_key(s.public_key, "root")
    root.signed.roles["root"].threshold = root_threshold
    for r in ("targets", "snapshot", "timestamp"):
        root.signed.add_key(online[r].public_key, r)
    for s in root_signers:
        root.sign(s, append=True)
    root_bytes = root.to_bytes(SERIALIZER)
    write_atomic(md_dir / "1.root.json", root_bytes)
    write_atomic(repo / "public" / "keys" / "root.json", root_bytes)
    targets = Metadata(Targets(expires=now + lifetimes["targets"]))
    bins_key, class_key = online["bins"].public_key, online[CLASS_ROLE].public_key
    roles = {CLASS_ROLE: delegated(CLASS_ROLE, class_key.keyid,
                                   ["drivers/class/*", f"index/{CLASS_INDEX}.json"])}
    roles.update({b: delegated(b, bins_key.keyid, bin_paths(b)) for b in MID_BINS})
    names_key = online[NAMES_ROLE].public_key
    roles[NAMES_ROLE] = delegated(NAMES_ROLE, names_key.keyid, [f"{NAMES_ROLE}/*"])
    targets.signed.delegations = Delegations(
        keys={bins_key.keyid: bins_key, class_key.keyid: class_key,
              names_key.keyid: names_key}, roles=roles)
    mids = {m: make_bin() for m in MID_BINS}
    for leaf in BINS:
        dele = mids[mid_of(leaf)].signed.delegations
        assert dele is not None and dele.roles is not None
        dele.keys[bins_key.keyid] = bins_key
        dele.roles[leaf] = delegated(leaf, bins_key.keyid, bin_paths(leaf))
    snapshot = Metadata(Snapshot(expires=now + lifetimes["snapshot"]))
    snapshot.signed.meta = {"targets.json": MetaFile(1)}
    for role, md, signer in ([("targets", targets, online["targets"]),
                              (CLASS_ROLE, Metadata(Targets(expires=now + lifetimes["class"])),
                               online[CLASS_ROLE])]
                             + [(m, mids[m], online["bins"]) for m in MID_BINS]
                             + [(b, make_bin(), online["bins"]) for b in BINS]
                             + [(n, md, online[NAMES_ROLE])
                                for n, md in names_roles(names_key).items()]):
        if role.startswith("bin-"):
            md.signed.expires = now + lifetimes["bins"]
        elif role != CLASS_ROLE and role != "targets":
            md.signed.expires = now + lifetimes["names"]
        md.sign(signer)
        write_atomic(md_dir / f"1.{role}.json", md.to_bytes(SERIALIZER))
        snapshot.signed.meta[f"{role}.json"] = MetaFile(1)
    snapshot.sign(online["snapshot"])
    snap_bytes = snapshot.to_bytes(SERIALIZER)
    write_atomic(md_dir / "1.snapshot.json", snap_bytes)
    ts = Metadata(Timestamp(expires=now + lifetimes["timestamp"],
                            snapshot_meta=MetaFile.from_data(1, snap_bytes, ["sha256"])))
    ts.sign(online["timestamp"])
    config = {"format": 1, "root_threshold": root_threshold,
              "root_key_dir": str(rdir.resolve()) if root_key_dir else None,
              "expiry_seconds": {k: int(v.total_seconds()) for k, v in lifetimes.items()}}
    write_atomic(repo / "config.json", json.dumps(config, indent=2).encode() + b"\n", 0o600)
    write_atomic(md_dir / "timestamp.json", ts.to_bytes(SERIALIZER))
    gpg = Gpg(repo / "gnupg")
    gpg.create()
    write_atomic(repo / "public" / "keys" / "apt.asc", gpg.export(armor=True))
    write_atomic(repo / "public" / "keys" / "apt.gpg", gpg.export(armor=False))
