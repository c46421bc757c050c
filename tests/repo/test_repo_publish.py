"""`Repository.publish` and vendors: what gets published, and every rejection path.

A rejected publish must leave the public tree byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from udriver_repo import AuthError, ConflictError, Repository, ScopeError

from udriver.errors import PackageError, RepositoryError
from udriver_vm.repofactory import EDU, make_driver, make_manifest, make_wheel


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_publish_returns_what_it_published(repo, edu_files):
    res = repo.publish(edu_files, vendor="qemu")
    assert not res.unchanged and res.timestamp_version > 0
    (d,) = res.drivers
    assert (d.package, d.driver, d.version, d.abi) == ("udriver-edu", "edu", "0.1.0", "1.0")
    assert d.indexes == ("index/1234/8.json",)
    assert repo.index("1234")[0]["files"] == d.files


def test_same_bytes_again_is_unchanged(published_repo, edu_files):
    before = _tree(published_repo.public)
    res = published_repo.publish(edu_files, vendor="qemu")
    assert res.unchanged and res.timestamp_version == 0
    assert _tree(published_repo.public) == before


def test_same_name_and_version_with_other_bytes_is_a_conflict(published_repo, dist):
    m = make_manifest()
    other = make_wheel(dist, m, extra=b"different")
    before = _tree(published_repo.public)
    with pytest.raises(ConflictError, match="already published with different bytes"):
        published_repo.publish([other], vendor="qemu")
    assert _tree(published_repo.public) == before


def test_other_vendors_ids_are_out_of_scope_and_nothing_is_written(repo, edu_files):
    before = _tree(repo.public)
    with pytest.raises(ScopeError, match="claims PCI vendor 1234, which vendor 'acme'"):
        repo.publish(edu_files, vendor="acme")
    assert _tree(repo.public) == before


def test_class_wide_without_grant_is_out_of_scope(repo, dist):
    _, files = make_driver(dist, "udriver-nvme", driver="nvme", deb=False,
                           modaliases=("pci:v*d*sv*sd*bc01sc08i02*",))
    with pytest.raises(ScopeError, match="needs a class grant"):
        repo.publish(files, vendor="acme")


def test_class_wide_with_grant_goes_to_the_class_index(repo, dist):
    _, files = make_driver(dist, "udriver-nvme", driver="nvme", deb=False,
                           modaliases=("pci:v*d*sv*sd*bc01sc08i02*", "pci:v00001B36d*sv*sd*bc*sc*i*"))
    res = repo.publish(files, vendor="classy")
    assert res.drivers[0].indexes == ("index/1b36/any.json", "index/class.json")
    assert res.drivers[0].files == {"wheel": "drivers/class/udriver_nvme-0.1.0-py3-none-any.whl"}
    assert repo.index("class")[0]["driver"] == "nvme"
    assert repo.index("1b36")[0]["files"] == res.drivers[0].files


def test_driver_spanning_two_owned_vendors_is_in_both_indexes(repo, dist):
    _, files = make_driver(dist, "udriver-multi", driver="multi", deb=False, modaliases=(
        "pci:v00001AF4d00001000sv*sd*bc*sc*i*", "pci:v00008086d00001234sv*sd*bc*sc*i*"))
    repo.publish(files, vendor="acme")
    a, b = repo.index("1af4"), repo.index("8086")
    assert a == b and a[0]["files"]["wheel"] == "drivers/1af4/udriver_multi-0.1.0-py3-none-any.whl"


def test_wheel_then_deb_merge_into_one_entry(repo, edu_files):
    repo.publish([edu_files[0]], vendor="qemu")
    repo.publish([edu_files[1]], vendor="qemu")
    (entry,) = repo.index("1234")
    assert set(entry["files"]) == {"wheel", "deb"}


def test_two_versions_are_both_listed(published_repo, dist):
    _, files = make_driver(dist, version="0.2.0", deb=False)
    published_repo.publish(files, vendor="qemu")
    assert [e["version"] for e in published_repo.index("1234")] == ["0.1.0", "0.2.0"]


def test_deb_lands_in_the_apt_view_with_modaliases(published_repo):
    stanzas = published_repo.apt.committed_stanzas()
    (name, stanza), = stanzas.items()
    assert name == "pool/main/vendor-qemu/udriver-driver-edu/udriver-driver-edu_0.1.0-1_all.deb"
    assert f"Modaliases: udriver({EDU})" in stanza.splitlines()
    assert (published_repo.public / name).is_file()


def test_invalid_artifact_is_a_package_error(repo, dist):
    bad = dist / "udriver_edu-0.1.0-py3-none-any.whl"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(PackageError, match="not a valid wheel"):
        repo.publish([bad], vendor="qemu")


def test_wheel_without_id_table_is_a_package_error(repo, dist):
    w = dist / "udriver_edu-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(w, "w") as zf:
        zf.writestr("udriver_edu-0.1.0.dist-info/METADATA", "Name: udriver-edu\n")
    with pytest.raises(PackageError, match="no `\\*.dist-info/udriver.json`"):
        repo.publish([w], vendor="qemu")


def test_wheel_name_disagreeing_with_manifest_is_a_package_error(repo, dist):
    w = make_wheel(dist, make_manifest())
    renamed = w.rename(dist / "udriver_edu-9.9.9-py3-none-any.whl")
    with pytest.raises(PackageError, match="file name says udriver-edu 9.9.9"):
        repo.publish([renamed], vendor="qemu")


def test_deb_name_disagreeing_with_control_is_a_package_error(repo, edu_files, dist):
    renamed = dist / "udriver-driver-edu_0.2.0-1_all.deb"
    renamed.write_bytes(edu_files[1].read_bytes())
    with pytest.raises(PackageError, match="file name disagrees with the control data"):
        repo.publish([renamed], vendor="qemu")


def test_not_an_artifact_name(repo, dist):
    f = dist / "driver.tar.gz"
    f.write_bytes(b"x")
    with pytest.raises(PackageError, match="expected a .whl or .deb"):
        repo.publish([f], vendor="qemu")


def test_wheel_and_deb_with_different_tables_in_one_publish(repo, dist, edu_files):
    m = make_manifest(modaliases=("pci:v00001234d00000001sv*sd*bc*sc*i*",))
    w = make_wheel(dist, m)
    with pytest.raises(PackageError, match="carry different ID tables"):
        repo.publish([w, edu_files[1]], vendor="qemu")


def test_unknown_vendor(repo, edu_files):
    with pytest.raises(AuthError, match="no such vendor: 'nobody'"):
        repo.publish(edu_files, vendor="nobody")


def test_revoked_vendor_cannot_publish_or_authenticate(repo, repo_tokens, edu_files):
    assert repo.authenticate(repo_tokens["qemu"]).name == "qemu"
    repo.revoke_vendor("qemu")
    assert repo.authenticate(repo_tokens["qemu"]) is None
    with pytest.raises(AuthError, match="is revoked"):
        repo.publish(edu_files, vendor="qemu")
    assert [v.revoked for v in repo.list_vendors() if v.name == "qemu"] == [True]


@pytest.mark.parametrize("token", ["", "udr_x_y", "garbage", "udr_000000000000_abc"])
def test_bad_tokens_do_not_authenticate(repo, token):
    assert repo.authenticate(token) is None


def test_token_with_right_id_wrong_secret(repo, repo_tokens):
    _, tok_id, _ = repo_tokens["qemu"].split("_", 2)
    assert repo.authenticate(f"udr_{tok_id}_wrongsecret") is None


def test_tokens_are_stored_hashed(repo, repo_tokens):
    db = b"".join(p.read_bytes() for p in repo.path.glob("state.db*"))  # with the WAL
    for tok in repo_tokens.values():
        secret = tok.split("_", 2)[2]
        assert len(secret) >= 40 and secret.encode() not in db


def test_pci_vendor_belongs_to_one_publisher(repo):
    with pytest.raises(RepositoryError, match="PCI vendor 1234 already belongs to 'qemu'"):
        repo.add_vendor("copycat", [0x1234])
    assert "copycat" not in [v.name for v in repo.list_vendors()]


@pytest.mark.parametrize("name", ["Upper", "-x", "a/b", "", "x" * 64])
def test_invalid_vendor_name(repo, name):
    with pytest.raises(RepositoryError, match="invalid vendor name"):
        repo.add_vendor(name, [0x4321])


def test_duplicate_vendor_name(repo):
    with pytest.raises(RepositoryError, match="vendor 'qemu' already exists"):
        repo.add_vendor("qemu", [0x4321])


def test_new_vendor_gets_a_delegation_limited_to_its_ids(repo):
    repo.add_vendor("newco", [0x10EC, 0x14E4])
    from udriver_repo._meta import Transaction
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    for b, vid in (("bin-ec", "10ec"), ("bin-e4", "14e4")):
        role = txn.load(b).signed.delegations.roles["vendor-newco"]
        assert role.paths == [f"drivers/{vid}/*", f"index/{vid}/*", f"index/{vid}.json"]
        assert role.terminating


def test_open_a_directory_that_is_not_a_repository(tmp_path):
    with pytest.raises(RepositoryError, match="not a udriver repository"):
        Repository.open(tmp_path)


def test_init_twice_is_refused(repo):
    with pytest.raises(RepositoryError, match="already a repository"):
        Repository.init(repo.path)


def test_init_rejects_a_bad_threshold(tmp_path):
    with pytest.raises(RepositoryError, match="root threshold must be 1..2"):
        Repository.init(tmp_path / "r", root_threshold=3, root_keys=2)


def test_layout_and_permissions(repo):
    import stat
    assert stat.S_IMODE((repo.path / "keys").stat().st_mode) == 0o700
    for k in (repo.path / "keys").iterdir():
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k
    for rel in ("metadata/1.root.json", "metadata/timestamp.json", "keys/root.json",
                "keys/apt.asc", "keys/apt.gpg", "dists/stable/InRelease",
                "dists/stable/Release.gpg", "dists/stable/main/binary-amd64/Packages.xz"):
        assert (repo.public / rel).is_file(), rel
    root = json.loads((repo.public / "metadata/1.root.json").read_bytes())["signed"]
    assert root["consistent_snapshot"] is True


def test_abi_the_runtime_does_not_provide_is_a_package_error(repo, dist):
    w = make_wheel(dist, make_manifest(abi=(2, 0)))
    with pytest.raises(PackageError, match="2.0"):
        repo.publish([w], vendor="qemu")


def test_entry_point_disagreeing_with_manifest_is_a_package_error(repo, dist):
    m = make_manifest()
    w = make_wheel(dist, m)
    with zipfile.ZipFile(w) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members["udriver_edu-0.1.0.dist-info/entry_points.txt"] = b"[udriver.drivers]\nedu = x:Y\n"
    with zipfile.ZipFile(w, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(PackageError, match="`entry_points.txt` \\[udriver.drivers\\] `edu` is "
                                           "'x:Y', the manifest says 'udriver_edu:Driver'"):
        repo.publish([w], vendor="qemu")


def test_old_metadata_versions_are_pruned(repo, dist):
    from udriver_repo._meta import KEEP_VERSIONS
    for i in range(KEEP_VERSIONS + 2):
        _, files = make_driver(dist / str(i), version=f"0.{i}.0", deb=False)
        repo.publish(files, vendor="qemu")
    md = repo.public / "metadata"
    assert len(list(md.glob("*.snapshot.json"))) == KEEP_VERSIONS
    assert len(list(md.glob("*.vendor-qemu.json"))) == KEEP_VERSIONS
    assert (md / "1.root.json").exists()
    assert repo.verify().ok
