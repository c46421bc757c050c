"""udriver.client._remote: TUF-verified access, attacks refused, offline mode."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from conftest import Published
from udriver.client import RemoteRepo, get_repo
from udriver.errors import DownloadError, RepositoryError


def remote(offline: bool = False) -> RemoteRepo:
    return RemoteRepo(get_repo("main"), offline=offline)


def test_refresh_index_fetch(configured: Published) -> None:
    r = remote()
    [e] = r.index(0x1234)
    assert (e.driver, e.version, e.repo) == ("edu", "0.1.0", "main")
    assert r.index(0x10DE) == []  # no role lists index/10de.json
    assert r.index(None) == []
    w = r.fetch(e.files["wheel"])
    assert w.name == "udriver_edu-0.1.0-py3-none-any.whl"
    assert w.read_bytes() == (configured.wheels / "0.1.0" / w.name).read_bytes()
    assert r.cached_index_names() == ["1234"]
    md = r.metadata_dir
    assert {p.name for p in md.iterdir()} >= {"root.json", "timestamp.json", "snapshot.json",
                                              "targets.json", "qemu.json"}


def test_missing_target(configured: Published) -> None:
    with pytest.raises(RepositoryError, match="repository 'main': no signed target 'drivers/1234/x.whl'"):
        remote().fetch("drivers/1234/x.whl")


def test_unsafe_target_name_refused(configured: Published) -> None:
    r = remote()
    info = r.targetinfo("index/1234.json")
    with pytest.raises(RepositoryError, match="unsafe target name '../x'"):
        r.fetch("../x", info)


def test_tampered_target_refused(configured: Published) -> None:
    f = configured.repo.target_file("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")
    f.write_bytes(f.read_bytes()[:-1] + b"!")
    with pytest.raises(RepositoryError) as ei:
        remote().fetch("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")
    assert ("repository 'main', downloading drivers/1234/udriver_edu-0.1.0-py3-none-any.whl: "
            "downloaded file does not match its signed length/hash (tampered or corrupt)") in str(ei.value)
    assert not (remote().target_dir / "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl").exists()


def test_rollback_refused(configured: Published, tmp_path: Path) -> None:
    configured.repo.save_metadata(tmp_path / "old")
    configured.publish_edu("0.2.0")
    remote().refresh()  # now trusts the newer versions
    configured.repo.restore_metadata(tmp_path / "old")
    with pytest.raises(RepositoryError) as ei:
        remote().refresh()
    msg = str(ei.value)
    assert msg.startswith("repository 'main', refreshing metadata: rollback attack: ")
    assert "older metadata than this machine trusts" in msg


def test_expired_timestamp_refused(configured: Published) -> None:
    configured.repo.write_timestamp(-1)
    with pytest.raises(RepositoryError) as ei:
        remote().refresh()
    assert str(ei.value).startswith(
        "repository 'main', refreshing metadata: expired timestamp metadata (expired 20")
    assert ei.value.hint and "re-sign" in ei.value.hint


def test_bad_signature_refused(configured: Published) -> None:
    ts = configured.repo.public / "metadata" / "timestamp.json"
    ts.write_bytes(ts.read_bytes().replace(b'"version":', b'"version": ', 1))  # same sig, new bytes
    data = ts.read_bytes()
    import json
    obj = json.loads(data)
    obj["signed"]["version"] += 5
    ts.write_text(json.dumps(obj))
    with pytest.raises(RepositoryError, match="bad signature: timestamp was signed by 0/1 keys"):
        remote().refresh()


def test_unreachable_is_download_error(configured: Published) -> None:
    configured.server.close()
    with pytest.raises(DownloadError, match="repository 'main', refreshing metadata: download failed"):
        RemoteRepo(get_repo("main")).refresh()


def test_root_rotation_followed(configured: Published) -> None:
    remote().refresh()
    configured.repo.rotate_root()
    r = remote()
    r.refresh()
    assert (r.metadata_dir / "root_history" / "2.root.json").exists()
    assert r.index(0x1234)[0].version == "0.1.0"


def test_offline_uses_cache_without_network(configured: Published) -> None:
    r = remote()
    e = r.index(0x1234)[0]
    r.fetch(e.files["wheel"])
    configured.server.close()
    off = remote(offline=True)
    [e2] = off.index(0x1234)
    assert e2 == e
    assert off.fetch(e.files["wheel"]).exists()


def test_offline_refuses_expired_cache(configured: Published) -> None:
    configured.repo.days = 1 / 86400  # metadata valid for one second
    configured.repo.publish()
    remote().refresh()
    import time
    time.sleep(1.2)
    with pytest.raises(RepositoryError, match="expired timestamp metadata"):
        remote(offline=True).refresh()


def test_offline_without_cache(configured: Published) -> None:
    with pytest.raises(DownloadError, match="offline: no cached timestamp metadata"):
        remote(offline=True).refresh()


def test_offline_target_not_cached(configured: Published) -> None:
    remote().index(0x1234)
    with pytest.raises(DownloadError, match="is not cached \\(offline mode\\)"):
        remote(offline=True).fetch("drivers/1234/udriver_edu-0.1.0-py3-none-any.whl")


def test_vendor_cannot_sign_other_vendors_index(configured: Published) -> None:
    # The "generic" publisher (1b36 + class grant) signs an index/1234.json of its own:
    # TUF delegation (paths) means clients never consult its role for that name.
    import json
    evil = {"format": 1, "index": "1234", "drivers": [{
        "package": "udriver-evil", "driver": "evil", "version": "9.0", "abi": "1.0",
        "modaliases": ["pci:v00001234d000011E8sv*sd*bc*sc*i*"],
        "files": {"wheel": "drivers/1234/evil-9.0-py3-none-any.whl"}}]}
    configured.repo.add_target("generic", "index/1234.json", json.dumps(evil).encode())
    configured.repo.publish()
    [e] = remote().index(0x1234)
    assert e.driver == "edu"


def test_expired_snapshot_refused(configured: Published) -> None:
    from datetime import datetime, timedelta

    from tuf.api.metadata import MetaFile
    repo = configured.repo
    snap = repo.snapshot.signed
    snap.version += 1
    snap.expires = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    repo.snapshot.sign(repo.signers["snapshot"])
    repo._write(repo.snapshot, f"{snap.version}.snapshot.json")
    repo.timestamp.signed.snapshot_meta = MetaFile(snap.version)
    repo.write_timestamp(7)
    with pytest.raises(RepositoryError) as ei:
        remote().refresh()
    assert str(ei.value).startswith(
        "repository 'main', refreshing metadata: expired snapshot metadata (expired 20")
