"""Name ownership and the TUF+apt transaction, on a real repository on disk (issue 9,
cases 1, 3, 5 and 7), plus one unit test per rejection path of the pure checks.

Every refusal is checked the same way: the error type and message, the committed
timestamp unchanged (nothing published), and `Repository.verify` (a fresh python-tuf
`ngclient.Updater` plus gpgv) still passing.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from tuf.ngclient import Updater
from udriver_repo._errors import ConflictError, NameOwnedError
from udriver_repo._meta import Transaction
from udriver_repo._owners import (
    deb_version_cmp,
    owner_of,
    ownership_problems,
    record_target,
    version_problems,
)
from udriver_repo._packages import chunk_of, driver_stanza
from udriver_repo._verify import FileFetcher

from udriver.errors import PackageError, RepositoryError
from udriver.manifest import DriverManifest
from udriver.repoformat import (
    canonical_name,
    claimed_names,
    name_target,
    owner_problems,
    publisher_of,
)
from udriver.repoformat import canonical_name as client_canonical
from udriver_vm.repofactory import make_driver

ACME_DEV = "pci:v00001AF4d00001000sv*sd*bc*sc*i*"
CLASS = "pci:v*d*sv*sd*bc01sc08i02*"


# ----------------------------------------------------------------- pure: names


@pytest.mark.parametrize(("raw", "canon"), [
    ("edu", "edu"), ("Edu_X", "edu-x"), ("edu.x", "edu-x"), ("edu--_x", "edu-x"),
    ("udriver-edu", "udriver-edu")])
def test_canonical_name_folds_like_pep503(raw: str, canon: str) -> None:
    assert canonical_name(raw) == canon == client_canonical(raw)


def test_claimed_names_are_driver_and_distribution() -> None:
    assert claimed_names("edu", "udriver-edu") == ["edu", "udriver-edu"]
    assert claimed_names("edu_x", "Edu.X") == ["edu-x"]


def test_ownership_free_and_own_names_pass() -> None:
    assert ownership_problems("vendor-a", {"edu": None, "udriver-edu": "vendor-a"}) == []


def test_ownership_other_vendors_name_is_a_problem() -> None:
    assert ownership_problems("vendor-b", {"edu": "vendor-a", "x": None}) == [
        "the name `edu` belongs to 'vendor-a', not 'vendor-b'"]


def test_record_carries_owner_in_custom() -> None:
    tf, data = record_target("Edu_X", "vendor-a")
    assert tf.path == name_target("edu-x") == "names/edu-x"
    assert owner_of(tf) == "vendor-a"
    assert json.loads(data) == {"format": 1, "name": "edu-x", "owner": "vendor-a"}
    assert tf.hashes["sha256"] == hashlib.sha256(data).hexdigest()


def test_owner_of_malformed_record_is_none() -> None:
    tf, _ = record_target("edu", "vendor-a")
    tf.unrecognized_fields["custom"] = {"owner": 7}
    assert owner_of(tf) is None
    assert owner_of(None) is None


# ----------------------------------------------------------------- pure: client rules


def test_client_publisher_is_signer_or_class_entry_vendor() -> None:
    assert publisher_of("vendor-b", "vendor-a") == "vendor-b"  # a vendor cannot lie here
    assert publisher_of("class", "vendor-c") == "vendor-c"
    assert publisher_of("class", "") == ""


def test_client_refuses_name_owned_by_another_role() -> None:
    assert owner_problems("vendor-b", {"edu": "vendor-a", "udriver-edu": "vendor-a"}) == [
        "the name `edu` belongs to 'vendor-a', not to 'vendor-b'",
        "the name `udriver-edu` belongs to 'vendor-a', not to 'vendor-b'"]


def test_client_refuses_name_without_record() -> None:
    assert owner_problems("vendor-a", {"edu": None}) == [
        "the name `edu` has no owner record in the signed `names` metadata"]


def test_client_accepts_owner_and_legacy_class_entry() -> None:
    assert owner_problems("vendor-a", {"edu": "vendor-a"}) == []
    assert owner_problems("", {"edu": "vendor-a"}) == []


# ----------------------------------------------------------------- pure: versions


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("1.0-1", "1.0-1", 0), ("1.0-01", "1.0-1", 0), ("1.0.0-1", "1.0.0.0-1", -1),
    ("1.0~rc1-1", "1.0-1", -1), ("1:0.1-1", "2.0-1", 1), ("1.0a-1", "1.0-1", 1),
    ("1.0+b1", "1.0", 1), ("0:1.0", "1.0", 0), ("1.10", "1.9", 1)])
def test_deb_version_cmp_follows_dpkg(a: str, b: str, sign: int) -> None:
    r = deb_version_cmp(a, b)
    assert (r > 0) - (r < 0) == sign
    r = deb_version_cmp(b, a)
    assert (r > 0) - (r < 0) == -sign


def test_pep440_equal_wheel_versions_conflict() -> None:
    assert version_problems(["udriver_edu-1.0.0-py3-none-any.whl"],
                            ["udriver_edu-1.0.0.0-py3-none-any.whl"]) == [
        ("udriver_edu-1.0.0.0-py3-none-any.whl has the same version as the published "
        "udriver_edu-1.0.0-py3-none-any.whl (1.0.0.0 == 1.0.0 once normalised); publish a "
        "new version")]


def test_dpkg_equal_deb_versions_conflict() -> None:
    [p] = version_problems(["udriver-driver-edu_1.0-1_all.deb"],
                           ["udriver-driver-edu_1.0-01_all.deb"])
    assert "same version" in p


def test_pep440_equal_deb_upstream_versions_conflict() -> None:
    [p] = version_problems(["udriver-driver-edu_1.0.0-1_all.deb"],
                           ["udriver-driver-edu_1.0.0.0-1_all.deb"])
    assert "(1.0.0.0-1 == 1.0.0-1 once normalised)" in p


def test_distinct_versions_packages_and_same_file_do_not_conflict() -> None:
    existing = ["udriver_edu-1.0.0-py3-none-any.whl", "udriver-driver-edu_1.0.0-1_all.deb"]
    assert version_problems(existing, ["udriver_edu-1.0.1-py3-none-any.whl",
                                       "udriver_other-1.0.0-py3-none-any.whl",
                                       "udriver_edu-1.0.0-py3-none-any.whl",
                                       "udriver-driver-edu_1.0.0-2_all.deb",
                                       "udriver-driver-edu_1.0.0.1-1_all.deb"]) == []


# ----------------------------------------------------------------- pure: apt stanza


def _control(**extra: str) -> dict[str, str]:
    c = {"Package": "udriver-driver-edu", "Version": "0.1.0-1", "Architecture": "all",
         "Maintainer": "A <a@example.org>", "Installed-Size": "24",
         "Depends": "python3 (>= 3.11), udriver (>= 0.1), udriver (<< 2)", "Section": "misc",
         "Priority": "optional", "Modaliases": "udriver(pci:v*)",
         "Description": "test\nlong text"}
    c.update(extra)
    return c


def _manifest() -> DriverManifest:
    return DriverManifest("udriver-edu", "0.1.0", "edu", "udriver_edu:Driver", (1, 0),
                          ("pci:v00001234d000011E8sv*sd*bc*sc*i*",))


def test_stanza_is_built_from_validated_data_only() -> None:
    data = b"deb bytes"
    text = driver_stanza(_control(SHA256="0" * 64, Size="1", Filename="pool/x.deb",
                                  Essential="yes"), _manifest(), "pool/main/v/x.deb", data)
    fields = [ln.split(":", 1)[0] for ln in text.splitlines() if not ln.startswith(" ")]
    assert fields == ["Package", "Version", "Installed-Size", "Maintainer", "Architecture",
                      "Depends", "Section", "Priority", "Description", "Modaliases",
                      "Filename", "Size", "MD5sum", "SHA256"]
    assert f"SHA256: {hashlib.sha256(data).hexdigest()}" in text
    assert "Size: 9" in text and "0" * 64 not in text and "Essential" not in text
    # Modaliases from the manifest, not from the control data.
    assert "Modaliases: udriver(pci:v00001234d000011E8sv*sd*bc*sc*i*)" in text


def test_stanza_refuses_package_that_is_not_the_drivers() -> None:
    with pytest.raises(PackageError, match="`Package: udriver-driver-other` should be "
                                           "udriver-driver-edu"):
        driver_stanza(_control(Package="udriver-driver-other"), _manifest(), "p/x.deb", b"")


def test_stanza_refuses_multiline_field() -> None:
    with pytest.raises(PackageError, match="`Maintainer` must be one line"):
        driver_stanza(_control(Maintainer="A <a@b.c>\nSHA256: 00"), _manifest(), "p/x.deb", b"")


def test_stanza_refuses_malformed_value() -> None:
    with pytest.raises(PackageError, match=r"`Installed-Size` is malformed: '1\.5'"):
        driver_stanza(_control(**{"Installed-Size": "1.5"}), _manifest(), "p/x.deb", b"")


def test_stanza_refuses_missing_field() -> None:
    c = _control()
    del c["Maintainer"]
    with pytest.raises(PackageError, match="control field `Maintainer` is missing"):
        driver_stanza(c, _manifest(), "p/x.deb", b"")


# ----------------------------------------------------------------- on a real repository


def _timestamp(repo) -> bytes:  # type: ignore[no-untyped-def]
    return (repo.metadata_dir / "timestamp.json").read_bytes()


def _assert_verifies(repo) -> None:  # type: ignore[no-untyped-def]
    report = repo.verify()
    assert report.ok, report.problems
    with_tuf_client(repo)


def with_tuf_client(repo, target: str = "index/1234/8.json") -> None:  # type: ignore[no-untyped-def]
    """A plain python-tuf client (empty cache, trust from 1.root.json) refreshes and
    downloads `target` if listed."""
    import tempfile
    root = (repo.metadata_dir / "1.root.json").read_bytes()
    with tempfile.TemporaryDirectory() as d:
        up = Updater(d, repo.public.as_uri() + "/metadata/", d,
                     repo.public.as_uri() + "/targets/", fetcher=FileFetcher(), bootstrap=root)
        up.refresh()
        info = up.get_targetinfo(target)
        if info is not None:
            up.download_target(info, f"{d}/t")


def test_first_publish_records_both_names_in_signed_metadata(published_repo) -> None:
    assert published_repo.names() == {"edu": "vendor-qemu", "udriver-edu": "vendor-qemu"}
    txn = Transaction(published_repo.metadata_dir, published_repo.keys, published_repo.expiry)
    assert published_repo.name_owner(txn, "EDU") == "vendor-qemu"
    _assert_verifies(published_repo)


def test_case5_other_vendor_same_driver_name_is_refused(published_repo, dist) -> None:
    before = _timestamp(published_repo)
    _, files = make_driver(dist, "udriver-edu-acme", "1.0.0", "edu", (ACME_DEV,))
    with pytest.raises(NameOwnedError) as ei:
        published_repo.publish(files, vendor="acme")
    assert "the name `edu` belongs to 'vendor-qemu', not 'vendor-acme'" in str(ei.value)
    assert _timestamp(published_repo) == before
    assert not (published_repo.public / "pool/main/vendor-acme").exists()
    _assert_verifies(published_repo)


def test_case5_class_wide_driver_under_owned_name_is_refused(published_repo, dist) -> None:
    before = _timestamp(published_repo)
    _, files = make_driver(dist, "udriver-edu", "99.0", "edu", (CLASS,), deb=False)
    with pytest.raises(NameOwnedError, match="belongs to 'vendor-qemu', not 'vendor-classy'"):
        published_repo.publish(files, vendor="classy")
    assert _timestamp(published_repo) == before
    assert published_repo.index("class") == []
    _assert_verifies(published_repo)


def test_distribution_name_is_owned_too(published_repo, dist) -> None:
    _, files = make_driver(dist, "udriver-edu", "1.0.0", "acmedu", (ACME_DEV,), deb=False)
    with pytest.raises(NameOwnedError, match="the name `udriver-edu` belongs to 'vendor-qemu'"):
        published_repo.publish(files, vendor="acme")


def test_spelling_variant_of_an_owned_name_is_refused(published_repo, dist) -> None:
    # PEP 503 folding: `udriver_edu` is `udriver-edu`, as a driver or a distribution name.
    _, files = make_driver(dist, "udriver-acme", "1.0.0", "udriver_edu", (ACME_DEV,),
                           deb=False)
    _, files2 = make_driver(dist / "2", "Udriver.Edu", "1.0.0", "acme2", (ACME_DEV,),
                            deb=False)
    for f in (files, files2):
        with pytest.raises(NameOwnedError, match="the name `udriver-edu` belongs to "
                                                 "'vendor-qemu', not 'vendor-acme'"):
            published_repo.publish(f, vendor="acme")


def test_class_entry_names_its_publisher(repo, dist) -> None:
    _, files = make_driver(dist, "udriver-anynvme", "1.0", "anynvme", (CLASS,), deb=False)
    repo.publish(files, vendor="classy")
    [e] = repo.index("class")
    assert e["vendor"] == "vendor-classy"
    assert repo.names()["anynvme"] == "vendor-classy"
    _assert_verifies(repo)


def test_case7_pep440_equal_version_is_409(published_repo, dist) -> None:
    before = _timestamp(published_repo)
    _, files = make_driver(dist, "udriver-edu", "0.1.0.0", "edu", extra=b"other bytes")
    with pytest.raises(ConflictError, match=r"0\.1\.0\.0 == 0\.1\.0 once normalised"):
        published_repo.publish(files, vendor="qemu")
    assert _timestamp(published_repo) == before
    _assert_verifies(published_repo)


def test_case1_pool_path_is_per_vendor_and_never_replaced(published_repo, dist) -> None:
    repo = published_repo
    pool_a = repo.public / "pool/main/vendor-qemu/udriver-driver-edu/" \
        "udriver-driver-edu_0.1.0-1_all.deb"
    a_bytes = pool_a.read_bytes()
    # Even with ownership bypassed (the operator hands `edu` to acme), acme's deb of the
    # same file name lands in acme's own pool directory; qemu's file is untouched.
    repo.assign_name("edu", "acme")
    repo.assign_name("udriver-edu", "acme")
    _, files = make_driver(dist, "udriver-edu", "0.1.0", "edu", (ACME_DEV,), extra=b"B")
    repo.publish(files, vendor="acme")
    assert pool_a.read_bytes() == a_bytes
    pool_b = repo.public / "pool/main/vendor-acme/udriver-driver-edu/" \
        "udriver-driver-edu_0.1.0-1_all.deb"
    assert pool_b.read_bytes() == files[1].read_bytes() != a_bytes
    stanzas = repo.apt.committed_stanzas()
    assert {str(pool_a.relative_to(repo.public)), str(pool_b.relative_to(repo.public))} \
        <= set(stanzas)
    # verify: qemu's index now lists a driver whose name acme owns: reported.
    report = repo.verify()
    assert any("belongs to 'vendor-acme'" in p for p in report.problems), report.problems


def test_pool_file_with_other_bytes_is_a_conflict(repo) -> None:
    rel = "pool/main/vendor-qemu/p/p_1_all.deb"
    repo.apt.add_pool_file(rel, b"first")
    repo.apt.check_pool_file(rel, b"first")
    with pytest.raises(ConflictError, match="already in the apt pool with different bytes"):
        repo.apt.check_pool_file(rel, b"second")


def test_apt_refusal_writes_neither_apt_nor_tuf(published_repo, dist) -> None:
    repo = published_repo
    before = _timestamp(repo)
    text = (repo.public / "dists/stable/InRelease").read_text()
    from udriver_repo._packages import release_packages_sha
    sha = release_packages_sha(text)
    by_hash = repo.public / f"dists/stable/main/binary-amd64/by-hash/SHA256/{sha}"
    good = by_hash.read_bytes()
    by_hash.write_bytes(b"corrupt")
    _, files = make_driver(dist, "udriver-edu", "0.2.0", "edu")
    targets_before = sorted(p.name for p in (repo.public / "targets").rglob("*"))
    with pytest.raises(RepositoryError, match="committed index corrupt"):
        repo.publish(files, vendor="qemu")
    assert _timestamp(repo) == before
    assert sorted(p.name for p in (repo.public / "targets").rglob("*")) == targets_before
    assert not list((repo.public / "pool").rglob("*0.2.0*"))
    by_hash.write_bytes(good)
    _assert_verifies(repo)
    repo.publish(files, vendor="qemu")  # and once the view is sound, it goes through
    _assert_verifies(repo)


def test_case3_forged_hash_fields_never_reach_packages(repo, dist, tmp_path) -> None:
    import subprocess
    # qemu's next deb, and a driver name of acme's whose pool path lands in its chunk.
    _, files_a = make_driver(dist / "a", "udriver-edu", "0.2.0", "edu")
    chunk = chunk_of("pool/main/vendor-qemu/udriver-driver-edu/udriver-driver-edu_0.2.0-1_all.deb")
    name = next(f"x{i}" for i in range(100000) if chunk_of(
        f"pool/main/vendor-acme/udriver-driver-x{i}/udriver-driver-x{i}_0.1.0-1_all.deb") == chunk)
    _, (_, deb) = make_driver(dist / "b", f"udriver-{name}", "0.1.0", name, (ACME_DEV,))
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(root)], check=True)
    control = root / "DEBIAN/control"
    control.write_text(control.read_text() + "SHA256: " + "0" * 64 + "\nSize: 1\n")
    deb.unlink()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    try:
        repo.publish([deb], vendor="acme")
    except PackageError:
        pass  # the acceptance gate may refuse the extra fields outright
    stanzas = repo.apt.committed_stanzas()
    assert all("0" * 64 not in s and "\nSize: 1\n" not in s for s in stanzas.values())
    repo.publish(files_a, vendor="qemu")  # A's next upload into that chunk goes through
    assert repo.apt.committed_stanzas().keys() >= {
        "pool/main/vendor-qemu/udriver-driver-edu/udriver-driver-edu_0.2.0-1_all.deb"}
    _assert_verifies(repo)


def test_migration_adds_names_role_to_an_old_repository(published_repo, dist) -> None:
    repo = published_repo
    _strip_names(repo)
    assert repo.names() == {}
    r = repo.migrate_names()
    assert r.created and r.assigned == {"edu": "vendor-qemu", "udriver-edu": "vendor-qemu"}
    assert repo.names() == r.assigned
    _assert_verifies(repo)
    assert not repo.migrate_names().created


def test_publish_migrates_and_reserves_contested_names(published_repo, dist) -> None:
    repo = published_repo
    repo.assign_name("edu", "acme")
    repo.assign_name("udriver-edu", "acme")
    _, files = make_driver(dist, "udriver-edu", "0.1.0", "edu", (ACME_DEV,), deb=False)
    repo.publish(files, vendor="acme")
    _strip_names(repo)  # an old repository where two vendors published `edu`
    _, other = make_driver(dist / "o", "udriver-other", "0.1.0", "other", deb=False,
                           modaliases=("pci:v00001234d00000001sv*sd*bc*sc*i*",))
    repo.publish(other, vendor="qemu")  # the first publish after an upgrade migrates
    assert repo.names() == {"edu": "-reserved-", "other": "vendor-qemu",
                            "udriver-edu": "-reserved-", "udriver-other": "vendor-qemu"}
    _, again = make_driver(dist / "q", "udriver-edu", "0.3.0", "edu", deb=False)
    before = _timestamp(repo)
    with pytest.raises(NameOwnedError, match="the name `edu` is reserved until the "
                                             "repository's operator assigns it"):
        repo.publish(again, vendor="qemu")
    assert _timestamp(repo) == before
    assert repo.assign_name("edu", "qemu") == "-reserved-"
    assert repo.assign_name("udriver-edu", "qemu") == "-reserved-"
    repo.publish(again, vendor="qemu")
    assert repo.names()["edu"] == "vendor-qemu"


def _strip_names(repo) -> None:  # type: ignore[no-untyped-def]
    """Make `repo` look like one created before names were owned: top-level targets no
    longer delegates `names` (the roles stay in snapshot, unreachable, as after a
    revocation)."""
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    top = txn.load("targets")
    assert top.signed.delegations is not None and top.signed.delegations.roles is not None
    del top.signed.delegations.roles["names"]
    txn.stage("targets", top)
    txn.commit()


# ----------------------------------------------------------------- operator commands


def _cli(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    from udriver_repo.cli import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_names_list_assign_and_migrate(published_repo, capsys) -> None:
    r = str(published_repo.path)
    assert _cli(capsys, "names", "list", "--repo", r) == (
        0, "edu\tvendor-qemu\nudriver-edu\tvendor-qemu\n", "")
    assert _cli(capsys, "names", "assign", "Edu", "acme", "--repo", r) == (
        0, "name Edu: vendor-qemu -> vendor-acme\n", "")
    code, out, _ = _cli(capsys, "names", "list", "--json", "--repo", r)
    assert (code, json.loads(out)) == (0, {"edu": "vendor-acme", "udriver-edu": "vendor-qemu"})
    assert _cli(capsys, "names", "migrate", "--repo", r) == (
        0, "names role already present: nothing to migrate\n", "")
    assert _cli(capsys, "names", "assign", "edu", "nobody", "--repo", r) == (
        1, "", "error: no active vendor 'nobody'\n")
    _strip_names(published_repo)
    assert _cli(capsys, "names", "migrate", "--repo", r) == (
        0, "names role created; 2 name(s) assigned\n", "")
    rows = published_repo.audit.entries(2)  # oldest first
    assert [(r.actor, r.action) for r in rows] == [("admin", "name-assign"),
                                                   ("admin", "names-migrate")]


def test_names_key_rotation_keeps_clients_and_records(published_repo, dist) -> None:
    old = published_repo.keys.get("names").public_key.keyid
    published_repo.rotate_key("names")
    assert published_repo.keys.get("names").public_key.keyid != old
    assert published_repo.names() == {"edu": "vendor-qemu", "udriver-edu": "vendor-qemu"}
    _, files = make_driver(dist, "udriver-new", "1.0", "new", deb=False,
                           modaliases=("pci:v00001234d00000042sv*sd*bc*sc*i*",))
    published_repo.publish(files, vendor="qemu")
    _assert_verifies(published_repo)
    with_tuf_client(published_repo, "names/new")
