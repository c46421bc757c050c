"""Repository scale behaviour: incremental apt view, by-hash pruning, vendor revocation.

- The apt view is published in 256 chunks (one gzip member / xz stream each); a publish
  re-encodes only the chunks it touches and leaves every other member byte-identical.
- by-hash keeps exactly the committed and the previous generation.
- `vendor revoke` drops the vendor's delegation and key, so a client refuses what that
  key signs afterwards.
"""

from __future__ import annotations

import gzip
import json
import lzma

import pytest
from tuf.api.metadata import Metadata, TargetFile, Targets
from udriver_repo._meta import Transaction
from udriver_repo._packages import KEEP_GENERATIONS, chunk_of, parse_packages, release_packages_sha

from udriver.errors import RepositoryError
from udriver_vm.repofactory import make_driver


def _stanza(i: int) -> tuple[str, str]:
    name = f"pool/main/p/pkg{i}/pkg{i}_1.0_all.deb"
    return name, (f"Package: pkg{i}\nVersion: 1.0\nArchitecture: all\n"
                  f"Description: synthetic {i}\nFilename: {name}\nSize: {i}\n"
                  f"SHA256: {i:064x}")


def _committed(repo) -> tuple[str, dict[str, list[int]], bytes, bytes]:  # type: ignore[no-untyped-def]
    sha = release_packages_sha((repo.public / "dists/stable/InRelease").read_text())
    cmap = json.loads((repo.path / "apt-state" / f"{sha}.json").read_bytes())
    by_hash = repo.public / "dists/stable/main/binary-amd64/by-hash/SHA256"
    return sha, cmap["chunks"], (by_hash / sha).read_bytes(), (by_hash / cmap["xz"]).read_bytes()


def test_update_reencodes_only_the_touched_chunk(repo):
    stanzas = dict(_stanza(i) for i in range(600))
    repo.apt.commit(stanzas)
    _, before, gz_before, xz_before = _committed(repo)
    assert len(before) > 200  # most chunks hold stanzas
    name, stanza = _stanza(600)
    assert repo.apt.update({name: stanza}) is True
    _, after, gz_after, xz_after = _committed(repo)
    touched = chunk_of(name)
    for c, (g0, gl, x0, xl, *_) in before.items():
        a0, al, y0, yl, *_ = after[c]
        same = gz_before[g0:g0 + gl] == gz_after[a0:a0 + al]
        assert same is (c != touched), c
        same = xz_before[x0:x0 + xl] == xz_after[y0:y0 + yl]
        assert same is (c != touched), c
    # Both compressed files carry every stanza, each exactly once.
    d = repo.public / "dists/stable/main/binary-amd64"
    assert parse_packages((d / "Packages.gz").read_bytes()) == \
        parse_packages((d / "Packages.xz").read_bytes())
    assert set(repo.apt.committed_stanzas()) == set(stanzas) | {name}
    assert gzip.decompress((d / "Packages.gz").read_bytes()) == \
        lzma.decompress((d / "Packages.xz").read_bytes())
    assert not (d / "Packages").exists()
    assert repo.apt.update({name: stanza}) is False  # same stanza: unchanged


def test_update_without_chunk_map_rebuilds_the_same_view(repo):
    repo.apt.commit(dict(_stanza(i) for i in range(40)))
    for p in (repo.path / "apt-state").glob("*.json"):
        p.unlink()
    name, stanza = _stanza(40)
    assert repo.apt.update({name: stanza}) is True
    sha = _committed(repo)[0]
    repo.apt.commit(dict(_stanza(i) for i in range(41)))
    assert _committed(repo)[0] == sha  # equal content, equal bytes


def test_by_hash_keeps_the_committed_and_previous_generation(repo, dist):
    by_hash = repo.public / "dists/stable/main/binary-amd64/by-hash/SHA256"
    generations = []
    for i in range(4):
        _, files = make_driver(dist / str(i), "udriver-edu", f"0.{i + 1}.0")
        repo.publish(files, vendor="qemu")
        text = (repo.public / "dists/stable/InRelease").read_text()
        generations.append({release_packages_sha(text, n) for n in ("Packages.gz", "Packages.xz")})
    assert KEEP_GENERATIONS == 2
    assert {p.name for p in by_hash.iterdir()} == generations[-1] | generations[-2]
    state = repo.path / "apt-state"
    assert len(list(state.glob("*.json"))) == 2
    # Stored chunk texts: exactly those the two kept chunk maps name.
    named = {v[5] for m in state.glob("*.json") for v in json.loads(m.read_bytes())["chunks"].values()}
    assert {p.name for p in (state / "chunks").iterdir()} == named
    assert len(repo.apt.committed_stanzas()) == 4
    assert repo.verify().ok


def test_revoke_drops_delegation_role_and_key(published_repo, make_client):
    repo = published_repo
    up = make_client()
    up.refresh()
    assert up.get_targetinfo("index/1234/8.json") is not None
    wheel = repo.index("1234")[0]["files"]["wheel"]
    assert up.get_targetinfo(wheel) is not None
    old_key = repo.keys.get("vendor-qemu")
    repo.revoke_vendor("qemu")
    assert not (repo.path / "keys" / "vendor-qemu.key").exists()
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    assert txn.committed_version("vendor-qemu") == 2  # still listed (TUF 5.5.5), unreachable
    bin34 = txn.load("bin-34").signed.delegations
    assert "vendor-qemu" not in bin34.roles and old_key.public_key.keyid not in bin34.keys
    up = make_client()
    up.refresh()
    assert up.get_targetinfo("index/1234/8.json") is None
    assert up.get_targetinfo(wheel) is None
    assert repo.verify().ok


def test_client_refuses_targets_signed_by_a_revoked_key(published_repo, make_client):
    """Someone still holding qemu's old key (and the online snapshot/timestamp keys)
    signs a new vendor-qemu version with a new target and puts it back into the
    snapshot: the bins no longer delegate to it, so a client never finds the target."""
    repo = published_repo
    old_key = repo.keys.get("vendor-qemu")
    committed = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    md: Metadata[Targets] = committed.load("vendor-qemu")
    repo.revoke_vendor("qemu")
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    data = b"evil wheel"
    tf = TargetFile.from_data("drivers/1234/evil-1.0-py3-none-any.whl", data, ["sha256"])
    md.signed.targets[tf.path] = tf
    txn.stage("vendor-qemu", md)
    repo.keys.put("vendor-qemu", old_key)
    txn.commit()
    p = repo.public / "targets/drivers/1234" / f"{tf.hashes['sha256']}.{tf.path.rsplit('/')[-1]}"
    p.write_bytes(data)
    up = make_client()
    up.refresh()
    assert up.get_targetinfo(tf.path) is None
    assert up.get_targetinfo("index/1234/8.json") is None


def test_update_without_stored_chunks_decodes_them(repo):
    repo.apt.commit(dict(_stanza(i) for i in range(40)))
    for p in (repo.path / "apt-state" / "chunks").iterdir():
        p.unlink()
    name, stanza = _stanza(40)
    assert repo.apt.update({name: stanza}) is True
    sha = _committed(repo)[0]
    repo.apt.commit(dict(_stanza(i) for i in range(41)))
    assert _committed(repo)[0] == sha
    assert len(list((repo.path / "apt-state" / "chunks").iterdir())) >= 30  # restored


def test_revoked_vendor_has_no_key_to_rotate(published_repo):
    published_repo.revoke_vendor("qemu")
    with pytest.raises(RepositoryError, match="vendor 'qemu' is revoked"):
        published_repo.rotate_key("qemu")
    assert not (published_repo.path / "keys" / "vendor-qemu.key").exists()
