"""The server's read-back of the committed tree (`_catalog`) and its audit table (`_audit`).

The tree here is written by hand in the repository contract's layout (timestamp ->
snapshot -> role -> consistent-snapshot index target), so each rule of the walk can be
broken on purpose; the real core's trees are covered by the concurrency and web tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest
from udriver_repo._audit import AuditLog
from udriver_repo.server._catalog import Catalog, parse_index


def _index(vendor: str, *drivers: dict[str, object]) -> bytes:
    return json.dumps({"format": 1, "index": vendor, "drivers": list(drivers)},
                      sort_keys=True).encode()


def _driver(name: str, version: str = "0.1.0") -> dict[str, object]:
    return {"package": f"udriver-{name}", "driver": name, "version": version, "abi": "1.0",
            "modaliases": ["pci:v00001234d000011E8sv*sd*bc*sc*i*"],
            "files": {"wheel": f"drivers/1234/udriver_{name}-{version}-py3-none-any.whl"}}


def _write_tree(public: Path, indexes: dict[str, bytes], snap_version: int = 4,
                tamper: str | None = None) -> None:
    meta = public / "metadata"
    (public / "targets" / "index").mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    targets = {}
    for name, data in indexes.items():
        sha = hashlib.sha256(data).hexdigest()
        stored = data if name != tamper else data + b" "
        (public / "targets" / "index" / f"{sha}.{name}.json").write_bytes(stored)
        targets[f"index/{name}.json"] = {"length": len(data), "hashes": {"sha256": sha}}
    targets["drivers/1234/x.whl"] = {"length": 1, "hashes": {"sha256": "00" * 32}}
    (meta / "3.vendor-acme.json").write_text(json.dumps({"signed": {"targets": targets}}))
    (meta / "2.targets.json").write_text(json.dumps({"signed": {"targets": {}}}))
    (meta / f"{snap_version}.snapshot.json").write_text(json.dumps({"signed": {"meta": {
        "targets.json": {"version": 2}, "vendor-acme.json": {"version": 3}}}}))
    ts = meta / "timestamp.json"
    ts.write_text(json.dumps({"signed": {"meta": {"snapshot.json": {"version": snap_version}}}}))
    st = ts.stat()  # a new mtime even within the same clock tick
    os.utime(ts, ns=(st.st_atime_ns, st.st_mtime_ns + snap_version * 1000))


def test_walk_reads_every_index_of_the_committed_snapshot(tmp_path):
    _write_tree(tmp_path, {"1234": _index("1234", _driver("edu"), _driver("edu", "0.2.0")),
                           "class": _index("class", _driver("nvme"))})
    view = Catalog(tmp_path).view()
    assert view.snapshot_version == 4
    assert sorted(view.indexes) == ["1234", "class"]
    assert [(e.driver, e.version) for e in view.indexes["1234"]] == [("edu", "0.1.0"),
                                                                     ("edu", "0.2.0")]
    assert view.indexes["1234"][0].files["wheel"].startswith("drivers/1234/")


def test_index_whose_bytes_do_not_match_the_metadata_is_skipped(tmp_path, caplog):
    _write_tree(tmp_path, {"1234": _index("1234", _driver("edu")),
                           "8086": _index("8086", _driver("e1000"))}, tamper="8086")
    with caplog.at_level(logging.WARNING):
        view = Catalog(tmp_path).view()
    assert list(view.indexes) == ["1234"]
    assert "does not match its sha256" in caplog.text


def test_view_is_cached_until_timestamp_changes(tmp_path):
    _write_tree(tmp_path, {"1234": _index("1234", _driver("edu"))})
    cat = Catalog(tmp_path)
    first = cat.view()
    assert cat.view() is first
    _write_tree(tmp_path, {"1234": _index("1234", _driver("edu"), _driver("two"))},
                snap_version=5)
    second = cat.view()
    assert second is not first and second.snapshot_version == 5
    assert len(second.indexes["1234"]) == 2


def test_unpublished_tree_is_empty(tmp_path):
    view = Catalog(tmp_path).view()
    assert view.snapshot_version == 0 and view.indexes == {}


def test_broken_tree_keeps_the_last_good_view(tmp_path, caplog):
    _write_tree(tmp_path, {"1234": _index("1234", _driver("edu"))})
    cat = Catalog(tmp_path)
    good = cat.view()
    (tmp_path / "metadata" / "3.vendor-acme.json").unlink()
    _write_tree_ts_only(tmp_path, 9)
    with caplog.at_level(logging.WARNING):
        assert cat.view() is good
    assert "cannot read the published tree" in caplog.text


def _write_tree_ts_only(public: Path, version: int) -> None:
    ts = public / "metadata" / "timestamp.json"
    ts.write_text(json.dumps({"signed": {"meta": {"snapshot.json": {"version": version}}}}))


def test_parse_index_skips_malformed_entries(caplog):
    data = _index("1234", _driver("edu"), {"package": "x"}, "not a dict")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        entries = parse_index(data, "1234")
    assert [e.driver for e in entries] == ["edu"]
    assert caplog.text.count("skipping malformed entry") == 2


@pytest.mark.parametrize("data", [b"[]", b'{"drivers": 3}', b"not json"])
def test_parse_index_rejects_non_index(data):
    with pytest.raises(ValueError):
        parse_index(data, "1234")


# ------------------------------------------------------------------ audit


def test_audit_rows_round_trip(tmp_path):
    log = AuditLog(tmp_path / "state.db")
    log.record(action="upload", status=201, result="published", vendor="acme",
               client="127.0.0.1", filename="x.whl", size=10, sha256="ab" * 32)
    log.record(action="upload", status=401, result="unauthorized", message="m" * 5000)
    rows = log.entries()
    assert [(r.vendor, r.status, r.result) for r in rows] == [("acme", 201, "published"),
                                                              (None, 401, "unauthorized")]
    assert rows[0].time.endswith("+00:00") and rows[0].sha256 == "ab" * 32
    assert len(rows[1].message or "") == 2000  # bounded
    assert [r.id for r in log.entries(limit=1)] == [rows[1].id]


def test_audit_table_lives_beside_the_core_tables(tmp_path):
    import sqlite3
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE vendors (name TEXT)")
    AuditLog(db).record(action="upload", status=400, result="bad-filename")
    with sqlite3.connect(db) as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"vendors", "server_audit"} <= tables


def test_audit_write_failure_is_logged_not_raised(tmp_path, caplog):
    db = tmp_path / "state.db"
    log = AuditLog(db)
    import sqlite3
    with sqlite3.connect(db) as c:
        c.execute("DROP TABLE server_audit")
    with caplog.at_level(logging.ERROR):
        log.record(action="upload", status=201, result="published")
    assert "audit log write failed" in caplog.text


# ------------------------------------------------------------------ configuration


def test_config_from_env():
    from udriver_repo.server import ServerConfig
    cfg = ServerConfig.from_env({"UDRIVER_REPO_MAX_UPLOAD": "1048576",
                                 "UDRIVER_REPO_SHUTDOWN_TIMEOUT": "2.5",
                                 "UDRIVER_REPO_PCI_IDS": "/x/pci.ids"})
    assert (cfg.max_upload_bytes, cfg.shutdown_timeout, cfg.workers, cfg.pci_ids) == \
        (1048576, 2.5, 4, Path("/x/pci.ids"))
    assert ServerConfig.from_env({}) == ServerConfig()


@pytest.mark.parametrize("value", ["0", "-1", "lots", "1.5"])
def test_config_from_env_rejects_bad_numbers(value):
    from udriver_repo.server import ServerConfig

    from udriver.errors import ConfigError
    with pytest.raises(ConfigError, match="`UDRIVER_REPO_MAX_UPLOAD` must be a positive int"):
        ServerConfig.from_env({"UDRIVER_REPO_MAX_UPLOAD": value})
