"""Acceptance 7: an expired timestamp is refused by the client; `refresh` fixes it.

Expired metadata is produced honestly: the repository is configured with a negative
timestamp lifetime, so `refresh` signs a timestamp whose `expires` is in the past.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tuf.api import exceptions as tuf_exc
from udriver_repo import Repository
from udriver_repo.cli import main


def test_expired_timestamp_is_refused_then_refresh_fixes_it(published_repo, make_client):
    published_repo.expiry["timestamp"] = timedelta(hours=-1)
    published_repo.refresh()
    with pytest.raises(tuf_exc.ExpiredMetadataError):
        make_client("a").refresh()
    report = published_repo.verify()
    assert not report.ok and "ExpiredMetadataError" in report.problems[0]

    fixed = Repository.open(published_repo.path)  # default lifetimes from config.json
    fixed.refresh()
    up = make_client("b")
    up.refresh()
    assert up.get_targetinfo("index/1234/8.json") is not None


def test_refresh_cli_fixes_an_expired_timestamp(published_repo, make_client, capsys):
    published_repo.expiry["timestamp"] = timedelta(hours=-1)
    published_repo.refresh()
    assert main(["refresh", "--repo", str(published_repo.path)]) == 0
    assert capsys.readouterr().out.startswith("refreshed: timestamp version ")
    make_client().refresh()


def test_refresh_resigns_roles_past_half_their_lifetime(published_repo):
    from udriver_repo._meta import Transaction
    before = Transaction(published_repo.metadata_dir, published_repo.keys,
                         published_repo.expiry).committed_version("vendor-qemu")
    published_repo.expiry["vendor"] = timedelta(days=1000)  # now far past half-life
    published_repo.refresh()
    after = Transaction(published_repo.metadata_dir, published_repo.keys,
                        published_repo.expiry)
    assert after.committed_version("vendor-qemu") == before + 1
    assert published_repo.verify().ok


def test_init_with_custom_lifetimes(tmp_path):
    import json
    repo = Repository.init(tmp_path / "r", expiry={"timestamp": timedelta(hours=6)})
    try:
        cfg = json.loads((repo.path / "config.json").read_bytes())
        assert cfg["expiry_seconds"]["timestamp"] == 6 * 3600
        assert cfg["expiry_seconds"]["root"] == 365 * 86400
        assert cfg["expiry_seconds"]["snapshot"] == 7 * 86400
    finally:
        repo.stop_agent()
