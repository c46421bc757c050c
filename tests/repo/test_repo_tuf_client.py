"""Acceptance 1: an independent python-tuf client verifies the repository.

A plain `tuf.ngclient.Updater` (no udriver code on the client side), bootstrapped from
the repository's first root, refreshes over loopback HTTP and downloads a published
driver; the bytes it gets are the bytes that were published.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tuf.api import exceptions as tuf_exc


def test_plain_updater_downloads_published_driver(published_repo, make_client, edu_files):
    up = make_client()
    up.refresh()
    info = up.get_targetinfo("index/1234/8.json")  # the shard of devices 1234:???8
    assert info is not None
    index = json.loads(Path(up.download_target(info)).read_bytes())
    assert index["format"] == 1 and index["index"] == "1234/8"
    (entry,) = index["drivers"]
    assert entry["package"] == "udriver-edu" and entry["driver"] == "edu"
    assert entry["modaliases"] == ["pci:v00001234d000011E8sv*sd*bc*sc*i*"]
    assert entry["files"] == {"wheel": "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl",
                              "deb": "drivers/1234/udriver-driver-edu_0.1.0-1_all.deb"}
    for kind, src in zip(("wheel", "deb"), edu_files):
        tinfo = up.get_targetinfo(entry["files"][kind])
        assert tinfo is not None
        got = Path(up.download_target(tinfo)).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_unknown_vendor_index_is_absent(published_repo, make_client):
    up = make_client()
    up.refresh()
    assert up.get_targetinfo("index/abcd/8.json") is None
    assert up.get_targetinfo("index/1af4/8.json") is None  # acme owns it, published nothing
    assert up.get_targetinfo("index/1234/0.json") is None  # no qemu device ends in 0


def test_tampered_target_file_is_rejected(published_repo, make_client):
    wheel = next((published_repo.public / "targets/drivers/1234").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"X")
    up = make_client()
    up.refresh()
    info = up.get_targetinfo("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")
    assert info is not None
    try:
        up.download_target(info)
    except tuf_exc.RepositoryError as e:
        assert "hash" in str(e).lower() or "length" in str(e).lower()
    else:
        raise AssertionError("tampered wheel was accepted")


def test_verify_reports_ok_and_counts(published_repo):
    report = published_repo.verify()
    assert report.ok, report.problems
    assert report.indexes == 1 and report.files == 2 and report.apt_packages == 1


def test_verify_over_http(published_repo, tree_server):
    report = published_repo.verify(url=tree_server.url)
    assert report.ok, report.problems
    assert report.files == 2


def test_verify_finds_a_corrupt_pool_deb(published_repo):
    deb = next((published_repo.public / "pool").rglob("*.deb"))
    deb.write_bytes(deb.read_bytes() + b"\0")
    report = published_repo.verify()
    assert not report.ok
    assert any("does not match Packages" in p for p in report.problems)
