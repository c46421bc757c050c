"""Acceptance 8: key rotation keeps existing clients working through the root chain.

An existing client has trusted metadata from before the rotation in its metadata
directory. After the targets key and a vendor key are rotated it refreshes, walks
2.root.json (client workflow 5.3), and verifies targets, bins and the vendor role with
the new keys. Offline root: the new root waits until `sign-root` reaches the threshold.
"""

from __future__ import annotations

import json

import pytest
from udriver_repo import Repository
from udriver_repo.cli import main

from udriver.errors import RepositoryError


def _fetch_edu(up) -> None:
    up.refresh()
    info = up.get_targetinfo("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")
    assert info is not None
    up.download_target(info)


def test_rotating_targets_and_vendor_keys_keeps_existing_clients(published_repo, make_client,
                                                                tmp_path):
    _fetch_edu(make_client("old"))
    old_root = json.loads((published_repo.metadata_dir / "1.root.json").read_bytes())
    published_repo.rotate_key("targets")
    published_repo.rotate_key("qemu")
    new_root = json.loads((published_repo.metadata_dir / "2.root.json").read_bytes())
    assert old_root["signed"]["roles"]["targets"]["keyids"] != \
        new_root["signed"]["roles"]["targets"]["keyids"]
    up = make_client("old")  # same metadata directory: trusts root v1 only
    _fetch_edu(up)
    trusted = json.loads((tmp_path / "client-old/metadata/root.json").read_bytes())
    assert trusted["signed"]["version"] == 2
    _fetch_edu(make_client("fresh"))


def test_rotating_snapshot_timestamp_bins_and_class(published_repo, make_client):
    _fetch_edu(make_client("old"))
    for role in ("snapshot", "timestamp", "bins", "class"):
        published_repo.rotate_key(role)
    _fetch_edu(make_client("old"))
    assert published_repo.verify().ok


def test_publishing_after_a_vendor_rotation_uses_the_new_key(published_repo, make_client, dist):
    from udriver_vm.repofactory import make_driver
    published_repo.rotate_key("vendor-qemu")
    _, files = make_driver(dist, version="0.2.0", deb=False)
    published_repo.publish(files, vendor="qemu")
    up = make_client()
    up.refresh()
    assert up.get_targetinfo("drivers/1234/udriver_edu-0.2.0-py3-none-any.whl") is not None


def test_rotating_root_key(published_repo, make_client):
    _fetch_edu(make_client("old"))
    published_repo.rotate_key("root")
    published_repo.rotate_key("targets")  # signed by the new root key alone
    _fetch_edu(make_client("old"))


def test_unknown_role(published_repo):
    with pytest.raises(RepositoryError, match="unknown role 'nosuch'"):
        published_repo.rotate_key("nosuch")


def test_offline_root_needs_sign_root(tmp_path, capsys):
    offline = tmp_path / "offline"
    repo = Repository.init(tmp_path / "r", root_threshold=2, root_key_dir=offline)
    try:
        assert not list((repo.path / "keys").glob("root-*"))
        # Take the offline keys away, as an operator would.
        away = tmp_path / "usb"
        offline.rename(away)
        with pytest.raises(RepositoryError, match="needs 2 more from the previous root's keys"):
            repo.rotate_key("targets")
        assert not (repo.metadata_dir / "2.root.json").exists()
        assert main(["sign-root", "--repo", str(repo.path), "--key", str(away / "root-0.key")]) == 1
        err = capsys.readouterr().err
        assert "needs 1 more from the previous root's keys" in err
        assert "hint: sign it with `udriver-repo sign-root --key ROOT_KEY_FILE`" in err
        assert main(["sign-root", "--repo", str(repo.path), "--key", str(away / "root-1.key")]) == 0
        assert capsys.readouterr().out == "root signed and committed\n"
        assert (repo.metadata_dir / "2.root.json").exists()
        assert Repository.open(repo.path).verify().ok
    finally:
        repo.stop_agent()
