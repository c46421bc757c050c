#!/usr/bin/env python3
"""A synthetic udriver repository of N drivers over V vendors, written directly.

Used by bench/repo_scale.py (issue 4, acceptance 10). Building 100,000 real wheels
would take hours, so the generator writes what the repository core would have written
for them, through the core's own pieces:

- vendors go into state.db in one transaction and get real ed25519 keys;
- each vendor's delegated role lists its drivers' wheel targets (length and sha256 of a
  synthetic wheel; the wheel files themselves are not materialised) and its index
  shards (`index/<vvvv>/<x>.json`), which *are* written (content-addressed) because
  clients download them;
- the bins gain the vendors' delegations; everything is signed and committed with one
  `Transaction` (new snapshot, timestamp switched last), exactly as a publish does;
- with debs, the apt view gets one `Packages` stanza per synthetic deb (the fields a
  `udriver build` deb has; the pool files are not materialised), committed through the
  apt view's own chunked writer, so a measured publish updates a view of N packages.

Vendor i owns PCI vendor ID 0x1000 + i; driver j belongs to vendor j % V and matches
device j // V + 1. The result is a valid repository: `udriver-repo publish` works on it.

    python3 bench/repo_synthetic.py DIR N [--vendors 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tuf.api.metadata import TargetFile
from udriver_repo import Repository
from udriver_repo._fsio import RepoLock, write_new
from udriver_repo._meta import Transaction, bin_of, delegated, vendor_paths, vendor_role
from udriver_repo._naming import name_bin
from udriver_repo._owners import record_target
from udriver_repo._packages import deb_stanza

from udriver.repoformat import claimed_names, encode_index, entry_from_json, index_names

__all__ = ["flat_targets_size", "generate", "vendor_id"]

WHEEL_SIZE = 24_000  # a typical pure-Python driver wheel
DEB_SIZE = 20_000


def vendor_id(i: int) -> int:
    return 0x1000 + i


def _stanza(j: int, vendors: int) -> tuple[str, str]:
    """(pool path, Packages stanza) of synthetic driver j's deb, as `udriver build` makes it."""
    vid = vendor_id(j % vendors)
    pkg = f"udriver-driver-s{j}"
    pool = f"pool/main/u/{pkg}/{pkg}_1.0.0-1_all.deb"
    pattern = f"pci:v0000{vid:04X}d{j // vendors + 1:08X}sv*sd*bc*sc*i*"
    control = {
        "Package": pkg, "Version": "1.0.0-1", "Installed-Size": "96",
        "Maintainer": f"Vendor {j % vendors} <drivers@v{j % vendors}.example>",
        "Architecture": "all",
        "Depends": "python3 (>= 3.11), udriver (>= 0.1), udriver (<< 2)",
        "Section": "misc", "Priority": "optional",
        "Description": f"synthetic driver s{j}\nUser-mode PCI driver `s{j}` (udriver-s{j} "
                       "1.0.0),\nrun by the udriver runtime as an unprivileged process over "
                       "VFIO. It\nneeds udriver ABI 1.0 and drives devices matching:\n"
                       + pattern,
        "Modaliases": f"udriver({pattern})",
    }
    # Stand-in bytes for the hashes: hashing 20 kB per deb would only slow generation.
    return pool, deb_stanza(control, pool, pkg.encode()).replace(
        f"Size: {len(pkg)}", f"Size: {DEB_SIZE}")


def _driver(j: int, vendors: int, deb: bool) -> tuple[dict[str, object], list[TargetFile]]:
    vid = vendor_id(j % vendors)
    name = f"udriver-s{j}"
    paths = {"wheel": (f"drivers/{vid:04x}/udriver_s{j}-1.0.0-py3-none-any.whl", WHEEL_SIZE)}
    if deb:
        paths["deb"] = (f"drivers/{vid:04x}/udriver-driver-s{j}_1.0.0-1_all.deb", DEB_SIZE)
    tfs = [TargetFile(size, {"sha256": hashlib.sha256(t.encode()).hexdigest()}, t)
           for t, size in paths.values()]
    entry = {"package": name, "driver": f"s{j}", "version": "1.0.0", "abi": "1.0",
             "modaliases": [f"pci:v0000{vid:04X}d{j // vendors + 1:08X}sv*sd*bc*sc*i*"],
             "files": {k: t for k, (t, _) in paths.items()}}
    return entry, tfs


@contextlib.contextmanager
def _no_fsync() -> Iterator[None]:
    """Generation only: thousands of fsyncs would measure the disk, not the repository.
    (The measured publishes in repo_scale.py run with fsync as usual.)"""
    real = os.fsync
    os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync = real


def generate(path: Path, n: int, vendors: int = 2000, debs: bool = False
             ) -> tuple[Repository, list[TargetFile]]:
    """Create the repository at `path`; return it and every target (for the flat baseline).

    With `debs`, every driver has a wheel and a deb target (as `udriver build` makes),
    and a stanza in the apt view.
    """
    with _no_fsync():
        return _generate(path, n, vendors, debs)


def _generate(path: Path, n: int, vendors: int, debs: bool
              ) -> tuple[Repository, list[TargetFile]]:
    repo = Repository.init(path)
    names = [f"v{i:04d}" for i in range(vendors)]
    repo.state.bulk_add_vendors([(names[i], [vendor_id(i)], False) for i in range(vendors)])
    entries: list[list[dict[str, object]]] = [[] for _ in range(vendors)]
    files: list[list[TargetFile]] = [[] for _ in range(vendors)]
    for j in range(n):
        e, tfs = _driver(j, vendors, debs)
        entries[j % vendors].append(e)
        files[j % vendors].extend(tfs)
    all_targets: list[TargetFile] = []
    with RepoLock(repo.path):
        txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
        for i, name in enumerate(names):
            role = vendor_role(name)
            key = repo.keys.generate(role).public_key
            vid = f"{vendor_id(i):04x}"
            b = txn.load(bin_of(vid))
            assert b.signed.delegations is not None and b.signed.delegations.roles is not None
            b.signed.delegations.keys[key.keyid] = key
            b.signed.delegations.roles[role] = delegated(role, key.keyid, vendor_paths([vid]))
            txn.stage(bin_of(vid), b)
            md = txn.new_role(role)
            for tf in files[i]:
                md.signed.targets[tf.path] = tf
            shards: dict[str, list[dict[str, object]]] = {}
            for e in entries[i]:
                for shard in index_names(e["modaliases"]):  # type: ignore[arg-type]
                    shards.setdefault(shard, []).append(e)
            for shard, listed in sorted(shards.items()):
                data = encode_index(shard, [entry_from_json(e, k, shard)
                                            for k, e in enumerate(listed)])
                d, _, base = shard.rpartition("/")
                itf = TargetFile.from_data(f"index/{shard}.json", data, ["sha256"])
                write_new(repo.public / "targets/index" / d / f"{itf.hashes['sha256']}.{base}.json",
                          data)
                md.signed.targets[itf.path] = itf
            all_targets.extend(md.signed.targets.values())
            # Each driver's names, owned by its vendor, as a publish records them.
            for e in entries[i]:
                for claim in claimed_names(str(e["driver"]), str(e["package"])):
                    tf, data = record_target(claim, role)
                    b = name_bin(txn, claim)
                    txn.load(b).signed.targets[tf.path] = tf
                    txn.stage(b, txn.load(b))
                    write_new(repo._target_path(tf.path, tf), data)
        txn.commit()
        if debs:
            repo.apt.commit(dict(_stanza(j, vendors) for j in range(n)))
    return repo, all_targets


def flat_targets_size(targets: list[TargetFile]) -> tuple[int, int]:
    """Bytes of one flat, signed targets.json listing every target (the baseline), and
    its gzip (level 6) size."""
    from tuf.api.metadata import Metadata, Targets
    from udriver_repo._keys import NaclSigner
    from udriver_repo._meta import SERIALIZER
    md = Metadata(Targets(targets={t.path: t for t in targets}))
    md.sign(NaclSigner(b"\0" * 32))
    data = md.to_bytes(SERIALIZER)
    return len(data), len(gzip.compress(data, 6))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("--vendors", type=int, default=2000)
    ap.add_argument("--debs", action="store_true", help="a deb target per driver as well")
    a = ap.parse_args()
    t = time.perf_counter()
    repo, _ = generate(a.dir, a.n, a.vendors, a.debs)
    print(f"generated {a.n} drivers over {a.vendors} vendors in {repo.path} "
          f"({time.perf_counter() - t:.1f} s)")
    repo.stop_agent()
    return 0


if __name__ == "__main__":
    sys.exit(main())
