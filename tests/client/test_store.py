"""udriver.client._store: per-version installs, atomic switch, rollback, SIGKILL safety."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from udriver.client import DriverStore
from udriver.errors import InstallError, PackageError
from udriver_vm.fakewheels import make_wheel


def complete(version_dir: Path) -> bool:
    """Every file RECORD lists exists with its recorded hash (pypa/installer wrote RECORD)."""
    [record] = list(version_dir.glob("*.dist-info/RECORD"))
    for row in csv.reader(record.read_text().splitlines()):
        path, h, _ = row
        f = version_dir / path
        if not f.is_file():
            return False
        if h:
            algo, digest = h.split("=", 1)
            got = base64.urlsafe_b64encode(hashlib.new(algo, f.read_bytes()).digest()).rstrip(b"=")
            if got.decode() != digest:
                return False
    return True


def test_install_layout_and_switch(tmp_path: Path) -> None:
    store = DriverStore(tmp_path / "drivers")
    w1 = make_wheel(tmp_path / "w1", version="0.1.0")
    info = store.install_wheel(w1)
    d = tmp_path / "drivers" / "edu"
    assert (info.driver, info.current, info.previous, info.versions) == ("edu", "0.1.0", None, ["0.1.0"])
    assert os.readlink(d / "current") == "0.1.0"
    assert (d / "0.1.0" / "udriver_edu" / "__init__.py").read_text() == "VERSION = '0.1.0'\n"
    assert (d / "0.1.0" / "udriver_edu-0.1.0.dist-info" / "INSTALLER").read_text() == "udriver\n"
    assert complete(d / "0.1.0")
    assert (d / "0.1.0").stat().st_mode & 0o777 == 0o755  # readable by the driver user
    m = info.manifest()
    assert m is not None and m.version == "0.1.0"
    info2 = store.install_wheel(make_wheel(tmp_path / "w2", version="0.2.0"))
    assert (info2.current, info2.previous, info2.versions) == ("0.2.0", "0.1.0", ["0.1.0", "0.2.0"])
    info3 = store.install_wheel(make_wheel(tmp_path / "w3", version="0.3.0"))
    assert (info3.current, info3.previous, info3.versions) == ("0.3.0", "0.2.0", ["0.2.0", "0.3.0"])
    assert not [p for p in d.iterdir() if p.name.startswith((".stage-", ".link-", ".trash-"))]


def test_reinstall_same_version_is_noop(tmp_path: Path) -> None:
    store = DriverStore(tmp_path)
    w = make_wheel(tmp_path / "w", version="0.1.0")
    store.install_wheel(w)
    info = store.install_wheel(w)
    assert (info.current, info.previous) == ("0.1.0", None)


def test_rollback_swaps_and_back(tmp_path: Path) -> None:
    store = DriverStore(tmp_path)
    store.install_wheel(make_wheel(tmp_path / "a", version="1.0"))
    store.install_wheel(make_wheel(tmp_path / "b", version="2.0"))
    assert store.rollback("edu") == ("2.0", "1.0")
    assert store.get("edu").current == "1.0"  # type: ignore[union-attr]
    assert store.rollback("edu") == ("1.0", "2.0")


def test_rollback_without_previous(tmp_path: Path) -> None:
    store = DriverStore(tmp_path)
    store.install_wheel(make_wheel(tmp_path / "a", version="1.0"))
    with pytest.raises(InstallError, match=r"driver 'edu' has no previous version to roll back to \(current: 1.0\)"):
        store.rollback("edu")


def test_rollback_not_installed(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="driver 'nope' is not installed"):
        DriverStore(tmp_path).rollback("nope")


def test_remove(tmp_path: Path) -> None:
    store = DriverStore(tmp_path)
    store.install_wheel(make_wheel(tmp_path / "a", version="1.0"))
    store.install_wheel(make_wheel(tmp_path / "b", version="2.0"))
    assert store.remove("edu") == ["1.0", "2.0"]
    assert store.get("edu") is None and store.installed() == []
    with pytest.raises(InstallError, match="driver 'edu' is not installed"):
        store.remove("edu")


def test_record_hash_mismatch_refused(tmp_path: Path) -> None:
    store = DriverStore(tmp_path / "s")
    w = make_wheel(tmp_path / "w", corrupt_record=True)
    with pytest.raises(PackageError, match=r"Invalid wheel \(RECORD check failed: .*udriver_edu/__init__.py"):
        store.install_wheel(w)
    assert store.get("edu") is None
    assert [p.name for p in (tmp_path / "s" / "edu").iterdir()] == [".lock"]


def test_path_escape_refused(tmp_path: Path) -> None:
    store = DriverStore(tmp_path / "s")
    # a .data/ entry whose scheme path climbs out of the version directory
    w = make_wheel(tmp_path / "w", extra_members={
        "udriver_edu-0.1.0.data/data/../../../../escaped.txt": b"pwned\n"})
    with pytest.raises(PackageError):
        store.install_wheel(w)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert store.get("edu") is None


def test_case6_zip_bomb_refused_before_anything_is_written(tmp_path: Path) -> None:
    # issue 9 case 6: 31 members x 32 MiB of zeros (about 1 MB downloaded, 992 MiB declared).
    import zipfile

    from udriver.errors import GateError
    w = make_wheel(tmp_path / "w")
    with zipfile.ZipFile(w, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(31):
            zf.writestr(f"udriver_edu/blob{i}.bin", bytes(32 * 1024 * 1024))
    assert w.stat().st_size < 2 * 1024 * 1024
    store = DriverStore(tmp_path / "s")
    with pytest.raises(GateError, match=r"udriver_edu-0.1.0-py3-none-any.whl: refused \(32 "
                       r"problems\): zip bomb: member 'udriver_edu/blob0.bin' unpacks 33554432 "
                       r"bytes from \d+ \(ratio over 100:1\)"):
        store.install_wheel(w)
    assert not (tmp_path / "s").exists(), "the store wrote something for a refused wheel"
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) < 2 * 1024 * 1024


def test_unsafe_version_refused(tmp_path: Path) -> None:
    import dataclasses

    from udriver.artifacts import read_wheel_manifest
    w = make_wheel(tmp_path / "w")
    m = dataclasses.replace(read_wheel_manifest(w), version="../x")
    with pytest.raises(PackageError, match="Unsafe version for a directory name: '../x'"):
        DriverStore(tmp_path / "s").install_wheel(w, m)


_CHILD = """
import sys
from pathlib import Path
from udriver.client._store import DriverStore
store = DriverStore(Path(sys.argv[1]))
print("go", flush=True)
store.install_wheel(Path(sys.argv[2]))
print("done", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_install_keeps_old_version(tmp_path: Path) -> None:
    """SIGKILL at >= 20 staggered points of an install; `current` always resolves to a
    complete version (the old one until the switch), and the next install succeeds."""
    template = tmp_path / "template"
    DriverStore(template).install_wheel(make_wheel(tmp_path / "w1", version="1.0", extra_files=40))
    w2 = make_wheel(tmp_path / "w2", version="2.0", extra_files=40)

    def run(store: Path, delay: float | None) -> tuple[str, float]:
        p = subprocess.Popen([sys.executable, "-c", _CHILD, str(store), str(w2)],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        assert p.stdout.readline() == "go\n"
        t0 = time.perf_counter()
        if delay is None:
            out = p.stdout.readline()
            t = time.perf_counter() - t0
            p.wait()
            return out, t
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        return "", 0.0

    calib = tmp_path / "calib"
    shutil.copytree(template, calib, symlinks=True)
    out, duration = run(calib, None)
    assert out == "done\n"
    points = [duration * i / 21 for i in range(22)]  # 22 points spanning the install
    outcomes = {"old": 0, "new": 0}
    for i, delay in enumerate(points):
        store_dir = tmp_path / f"s{i}"
        shutil.copytree(template, store_dir, symlinks=True)
        run(store_dir, delay)
        d = store_dir / "edu"
        cur = os.readlink(d / "current")
        assert cur in ("1.0", "2.0"), (delay, cur)
        assert complete(d / cur), (delay, cur)
        if cur == "1.0":
            assert complete(d / "1.0")
        outcomes["old" if cur == "1.0" else "new"] += 1
        # the next install succeeds and cleans up what the killed one left
        info = DriverStore(store_dir).install_wheel(w2)
        assert info.current == "2.0" and complete(d / "2.0")
        assert not [p for p in d.iterdir() if p.name.startswith((".stage-", ".link-", ".trash-"))]
    # Timing varies on a loaded machine; require that a good share of the kills really
    # interrupted the install (before the switch), not just that it finished.
    assert outcomes["old"] >= 6, outcomes


def test_history_lies_beside_its_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store elsewhere than `<state>/drivers` wrote its history to the system's
    `<state>/history.jsonl` (these tests wrote /var/lib/udriver/history.jsonl)."""
    import json
    system = tmp_path / "system-state"
    monkeypatch.setenv("UDRIVER_STATE_DIR", str(system))
    store = DriverStore(tmp_path / "elsewhere" / "drivers")
    store.install_wheel(make_wheel(tmp_path / "a", version="1.0"))
    store.install_wheel(make_wheel(tmp_path / "b", version="2.0"))
    store.rollback("edu")
    store.hold("edu")
    store.remove("edu")
    lines = (tmp_path / "elsewhere" / "history.jsonl").read_text().splitlines()
    assert [json.loads(ln)["action"] for ln in lines] == [
        "install", "upgrade", "rollback", "hold", "remove"]
    assert not system.exists()
