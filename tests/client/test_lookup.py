"""The derived lookup (`udriver.client._lookup`): same answers as the full TUF path.

Each way the lookup can be unusable (missing, stale after a new snapshot, corrupt,
expired, written by a process whose metadata changed under it) falls back to the full
path, and the answer is the one the full path gives with no lookup at all. When it is
usable, `devices` and `search --offline` answer from it without importing python-tuf,
and an online `search` uses it only after a TUF refresh that found nothing new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BDF, EDU_DEV, Published
from udriver.client import Client, annotate, get_repo
from udriver.client._lookup import Lookup
from udriver.client._remote import RemoteRepo
from udriver.errors import DownloadError
from udriver.modalias import parse_modalias

DEV = {BDF: parse_modalias(EDU_DEV)}
ABSENT = "0000:00:06.0"
DEVS = {BDF: EDU_DEV, ABSENT: "pci:v00008086d00000953sv00008086sd00003702bc01sc08i02"}


def _lookup_file(env: Path) -> Path:
    return env / "var" / "repos" / "main" / "lookup.json"


def _answer(offline: bool) -> tuple[list[dict[str, object]], object]:
    hits = [e.to_dict() for e in Client(offline=offline).search("1234:11e8")]
    return hits, annotate(DEVS, refresh=not offline)


def _full_path(env: Path, offline: bool) -> tuple[list[dict[str, object]], object]:
    """The answer with no lookup at all (removed before, and again after)."""
    _lookup_file(env).unlink(missing_ok=True)
    saved = Lookup.get
    try:
        Lookup.get = lambda self, name, offline=False: None  # type: ignore[method-assign]
        return _answer(offline)
    finally:
        Lookup.get = saved  # type: ignore[method-assign]


def _forbid_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def index(self: RemoteRepo, name: str) -> None:
        raise AssertionError(f"the full path ran for {name}")
    monkeypatch.setattr(RemoteRepo, "index", index)


@pytest.fixture
def filled(configured: Published, env: Path) -> Published:
    Client().entries({0x1234, None, 0x8086})  # online: metadata, indexes and the lookup
    assert _lookup_file(env).is_file()
    return configured


def test_lookup_records_what_was_verified(filled: Published, env: Path) -> None:
    doc = json.loads(_lookup_file(env).read_bytes())
    assert doc["format"] == 1 and doc["url"] == filled.server.url
    rec = doc["indexes"]["1234"]
    verified = (env / "var/repos/main/targets/index/1234.json").read_bytes()
    assert rec["doc"] == verified.decode() and rec["signer"] == "qemu"
    assert set(rec["hashes"]) == {"sha256"}
    assert doc["indexes"]["8086"] == {"doc": None, "signer": "", "hashes": {}}  # none lists it
    assert doc["versions"]["snapshot"] >= 1


def test_offline_answer_from_the_lookup_is_the_full_paths(filled: Published, env: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    full = _full_path(env, offline=True)
    Client().entries({0x1234, None, 0x8086})  # the lookup again
    with monkeypatch.context() as m:
        _forbid_full_path(m)
        assert _answer(offline=True) == full
    assert full[0] and full[0][0]["driver"] == "edu"


def test_missing_lookup_falls_back_and_is_rewritten(filled: Published, env: Path) -> None:
    with_lookup = _answer(offline=True)
    _lookup_file(env).unlink()
    assert _answer(offline=True) == with_lookup == _full_path(env, offline=True)
    Client(offline=True).search("1234:11e8")
    assert "1234" in json.loads(_lookup_file(env).read_bytes())["indexes"]


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"\xff\xfe", b"[]",
                                     b'{"format": 99, "indexes": {}}'])
def test_corrupt_lookup_falls_back(filled: Published, env: Path, garbage: bytes) -> None:
    full = _full_path(env, offline=True)
    _lookup_file(env).write_bytes(garbage)
    assert _answer(offline=True) == full


def test_corrupt_record_falls_back(filled: Published, env: Path) -> None:
    full = _full_path(env, offline=True)
    Client().entries({0x1234, None, 0x8086})
    doc = json.loads(_lookup_file(env).read_bytes())
    for rec in doc["indexes"].values():
        if rec["doc"] is not None:
            rec["doc"] = '{"format": 1, "index": "elsewhere", "drivers": []}'
    _lookup_file(env).write_text(json.dumps(doc))
    assert _answer(offline=True) == full


def test_expired_lookup_falls_back(filled: Published, env: Path) -> None:
    full = _full_path(env, offline=True)
    Client().entries({0x1234, None, 0x8086})
    doc = json.loads(_lookup_file(env).read_bytes())
    doc["expires"] = "2000-01-01T00:00:00Z"
    doc["indexes"]["1234"]["doc"] = doc["indexes"]["1234"]["doc"].replace("0.1.0", "9.9.9")
    _lookup_file(env).write_text(json.dumps(doc))
    assert _answer(offline=True) == full


def test_stale_after_a_new_snapshot(filled: Published, env: Path) -> None:
    """Another process caches a new snapshot without touching the lookup: offline, the
    lookup no longer matches the cached metadata and the full path answers."""
    filled.publish_edu("0.2.0")
    other = RemoteRepo(get_repo("main"))  # the new snapshot, verified and cached
    for name in ("1234", "1234/8", "1234/any", "class", "8086", "8086/3", "8086/any"):
        other.index(name)
    got = _answer(offline=True)
    assert [h["version"] for h in got[0]] == ["0.1.0", "0.2.0"]
    assert got == _full_path(env, offline=True)


def test_online_uses_the_lookup_only_when_nothing_is_new(filled: Published, env: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    online = _full_path(env, offline=False)
    Client().entries({0x1234, None, 0x8086})
    with monkeypatch.context() as m:
        _forbid_full_path(m)
        assert _answer(offline=False) == online  # the refresh found nothing new
    filled.publish_edu("0.2.0")
    got = _answer(offline=False)  # the refresh finds a new snapshot: the full path runs
    assert [h["version"] for h in got[0]] == ["0.1.0", "0.2.0"]
    assert got == _full_path(env, offline=False)


def test_online_refresh_failure_is_not_hidden_by_the_lookup(filled: Published,
                                                            env: Path) -> None:
    filled.server.close()
    with pytest.raises(DownloadError, match="download failed"):
        Client().search("1234:11e8")


def test_offline_miss_is_replayed_until_the_cache_changes(configured: Published,
                                                          env: Path) -> None:
    configured.repo.add_vendor("virtio", [0x1af4])
    configured.repo.publish()
    Client().search("1234:11e8")  # caches the roles 1234 needs, not virtio's
    with pytest.raises(DownloadError) as full:
        Client(offline=True).entries(["1af4"])  # generic's role: never cached
    assert "1af4" in json.loads(_lookup_file(env).read_bytes())["indexes"]
    with pytest.raises(DownloadError) as replayed:
        Client(offline=True).entries(["1af4"])
    assert str(replayed.value) == str(full.value)
    assert replayed.value.hint == full.value.hint
    Client().entries(["1af4"])  # online: fetches the role; the cache now differs
    assert Client(offline=True).entries(["1af4"]) == []


def test_not_written_when_the_cache_changed_under_the_updater(filled: Published,
                                                               env: Path) -> None:
    remote = RemoteRepo(get_repo("main"))
    remote.refresh()
    filled.publish_edu("0.2.0")
    RemoteRepo(get_repo("main")).refresh()  # another process caches a newer snapshot
    lookup = Lookup(get_repo("main"))
    lookup.add("1234", b"{}", "qemu", {})
    assert lookup.save(remote) is False
    assert json.loads(_lookup_file(env).read_bytes())["indexes"]["1234"]["doc"] != "{}"


_IMPORTS = ("import atexit, sys\n"
            "atexit.register(lambda: print('TUF', 'tuf' in sys.modules, file=sys.stderr))\n"
            "sys.argv[0] = 'udriver'\n"
            "from udriver.cli import run\n"
            "run()\n")


@pytest.mark.parametrize("argv", [["devices"], ["search", "--offline", "--json", "1234:11e8"]])
def test_answered_without_python_tuf(filled: Published, env: Path, argv: list[str],
                                     tmp_path: Path) -> None:
    sysfs = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"
    root = next(p for p in sorted(sysfs.iterdir()) if p.is_dir())
    environ = dict(os.environ, UDRIVER_SYSFS_ROOT=str(root))

    def run() -> tuple[str, str]:
        r = subprocess.run([sys.executable, "-c", _IMPORTS, *argv], env=environ, text=True,
                           capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout, r.stderr
    run()  # the first devices run records its offline answers
    out, err = run()
    assert "TUF False" in err
    _lookup_file(env).unlink()
    full_out, full_err = run()
    assert "TUF True" in full_err and full_out == out


def test_kept_answers_keep_their_expiry(filled: Published, env: Path) -> None:
    """An answer added later does not extend the expiry of the answers kept with it (they
    may rest on delegated metadata that expires sooner)."""
    import time
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    doc = json.loads(_lookup_file(env).read_bytes())
    assert doc["expires"] > soon
    doc["expires"] = soon
    _lookup_file(env).write_text(json.dumps(doc))
    Client(offline=True).entries(["1234/0"])  # not recorded yet: the full path, then saved
    doc = json.loads(_lookup_file(env).read_bytes())
    assert "1234/0" in doc["indexes"] and "1234" in doc["indexes"]
    assert doc["expires"] == soon


@pytest.mark.parametrize("quick", [False, True])
def test_online_answer_from_the_lookup_loads_root_and_timestamp_only(
        filled: Published, env: Path, monkeypatch: pytest.MonkeyPatch, quick: bool) -> None:
    """Nothing new on the server: the root and timestamp steps run (new timestamp
    fetched and verified, TUF spec 5.3-5.4) and the lookup answers; the cached snapshot
    and targets, verified under that same root and timestamp when the lookup was
    written, are not loaded again. Something new: every step runs (the full path).
    With the check without python-tuf (`_fresh`, `quick`), nothing new means no
    python-tuf step at all: the same two questions were asked over `_rawhttp`."""
    from tuf.ngclient.updater import Updater

    from udriver.client import _client

    if not quick:
        monkeypatch.setattr(_client, "unchanged", lambda *a, **k: False)
    online = _full_path(env, offline=False)
    Client().entries({0x1234, None, 0x8086})
    steps: list[str] = []
    for name in ("_load_root", "_load_timestamp", "_load_snapshot", "_load_targets"):
        orig = getattr(Updater, name)

        def spy(self: Updater, *a: object, _n: str = name, _o: object = orig) -> object:
            if _n != "_load_targets" or a[0] == "targets":
                steps.append(_n)
            return _o(self, *a)  # type: ignore[operator]
        monkeypatch.setattr(Updater, name, spy)
    fetched: list[str] = []
    from udriver.client._fetcher import HttpFetcher
    orig_fetch = HttpFetcher._fetch
    monkeypatch.setattr(HttpFetcher, "_fetch",
                        lambda self, url: fetched.append(url.rsplit("/", 1)[1])
                        or orig_fetch(self, url))
    from udriver.client import _fresh
    asked: list[str] = []
    orig_get = _fresh.get
    monkeypatch.setattr(_fresh, "get", lambda url, **kw: asked.append(url.rsplit("/", 1)[1])
                        or orig_get(url, **kw))
    with monkeypatch.context() as m:
        _forbid_full_path(m)
        assert _answer(offline=False) == online
    if quick:
        assert steps == [] and fetched == []
        assert asked == ["2.root.json", "timestamp.json"] * 2  # search, then annotate
    else:
        assert steps == ["_load_root", "_load_timestamp"] * 2  # search, then annotate
        assert [f for f in fetched if f == "timestamp.json"] == ["timestamp.json"] * 2
    steps.clear()
    filled.publish_edu("0.2.0")
    got = Client().search("1234:11e8")
    assert [e.version for e in got] == ["0.1.0", "0.2.0"]
    assert steps[:4] == ["_load_root", "_load_timestamp", "_load_snapshot", "_load_targets"]


def test_online_expired_timestamp_is_refused_with_the_lookup(filled: Published,
                                                             env: Path) -> None:
    """The lookup could answer, but the server's new timestamp has expired: the
    timestamp step (TUF spec 5.4.4) refuses it before the lookup is asked."""
    from udriver.errors import RepositoryError

    filled.repo.write_timestamp(-1)  # a new version, expired yesterday
    with pytest.raises(RepositoryError, match="expired"):
        Client().search("1234:11e8")
