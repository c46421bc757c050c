"""Issue 9 cases 1, 3, 5 and 7 against the real server on 127.0.0.1 and the real core.

Each test reproduces the attack with a vendor's own upload token and checks: the status
and JSON error, the public tree unchanged (nothing published), an audit row for the
attempt, and afterwards `Repository.verify` (fresh python-tuf client + gpgv) and a plain
python-tuf `ngclient.Updater` over HTTP both passing.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_server_helpers import ServerThread, copy_repo
from tuf.ngclient import Updater
from udriver_repo import Repository
from udriver_repo._packages import chunk_of
from udriver_repo.server import ServerConfig, create_app

from udriver_vm.repofactory import make_driver

ACME_DEV = "pci:v00001AF4d00001000sv*sd*bc*sc*i*"
CLASS = "pci:v*d*sv*sd*bc01sc08i02*"


@pytest.fixture
def srv(repo_template) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    base = Path(tempfile.mkdtemp(prefix="udr-own-"))  # short: GnuPG socket path limit
    path = copy_repo(repo_template.path, base / "repo")
    thread = ServerThread(create_app(path, ServerConfig(max_upload_bytes=4 << 20))).start()
    yield {"url": thread.url, "path": path, **repo_template.tokens}
    thread.stop()
    shutil.rmtree(base, ignore_errors=True)


def _put(srv: dict[str, object], file: Path, vendor: str) -> requests.Response:
    return requests.put(f"{srv['url']}/api/v1/packages/{file.name}", data=file.read_bytes(),
                        headers={"Authorization": f"Bearer {srv[vendor]}"}, timeout=60)


def _tree(srv: dict[str, object]) -> dict[str, str]:
    root = Path(str(srv["path"])) / "public"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _last_audit(srv: dict[str, object]) -> tuple[object, ...]:
    with sqlite3.connect(Path(str(srv["path"])) / "state.db") as c:
        return c.execute("SELECT vendor, filename, status, result FROM server_audit "
                         "ORDER BY id DESC LIMIT 1").fetchone()


def _refused(srv: dict[str, object], file: Path, vendor: str, status: int, code: str) -> str:
    before = _tree(srv)
    r = _put(srv, file, vendor)
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["status"], body["error"]) == (status, code)
    assert _tree(srv) == before, "a refused upload changed the public tree"
    assert _last_audit(srv) == (vendor, file.name, status, code)
    return str(body["message"])


def _still_verifies(srv: dict[str, object]) -> None:
    path = Path(str(srv["path"]))
    report = Repository.open(path).verify(url=str(srv["url"]))
    assert report.ok, report.problems
    with tempfile.TemporaryDirectory() as d:
        up = Updater(d, f"{srv['url']}/metadata/", d, f"{srv['url']}/targets/",
                     bootstrap=(path / "public/metadata/1.root.json").read_bytes())
        up.refresh()
        for target in ("index/1234/8.json", "names/edu"):
            info = up.get_targetinfo(target)
            assert info is not None, target
            up.download_target(info, f"{d}/t")


def _publish_edu(srv: dict[str, object], tmp_path: Path, version: str = "0.1.0") -> list[Path]:
    _, files = make_driver(tmp_path / f"edu-{version}", "udriver-edu", version, "edu")
    for f in files:
        assert _put(srv, f, "qemu").status_code == 201
    return files


def test_case1_other_vendors_deb_of_the_same_name_is_403_and_pool_untouched(srv, tmp_path):
    _publish_edu(srv, tmp_path)
    pool = Path(str(srv["path"])) / "public/pool/main/vendor-qemu/udriver-driver-edu"
    a = (pool / "udriver-driver-edu_0.1.0-1_all.deb").read_bytes()
    # acme's own PCI IDs, the same package and file name as qemu's deb.
    _, (_, deb) = make_driver(tmp_path / "b", "udriver-edu", "0.1.0", "edu", (ACME_DEV,),
                              extra=b"vendor B")
    assert deb.name == "udriver-driver-edu_0.1.0-1_all.deb"
    msg = _refused(srv, deb, "acme", 403, "out-of-scope")
    assert "the name `edu` belongs to 'vendor-qemu', not 'vendor-acme'" in msg
    assert (pool / deb.name).read_bytes() == a
    _still_verifies(srv)


def test_case3_forged_hash_fields_cannot_break_another_vendors_upload(srv, tmp_path):
    _publish_edu(srv, tmp_path)
    # A driver name of acme's whose pool path lands in the apt chunk of qemu's next deb.
    chunk = chunk_of("pool/main/vendor-qemu/udriver-driver-edu/udriver-driver-edu_0.2.0-1_all.deb")
    name = next(f"x{i}" for i in range(100000) if chunk_of(
        f"pool/main/vendor-acme/udriver-driver-x{i}/udriver-driver-x{i}_0.1.0-1_all.deb") == chunk)
    _, (_, deb) = make_driver(tmp_path / "b", f"udriver-{name}", "0.1.0", name, (ACME_DEV,))
    root = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(root)], check=True)
    control = root / "DEBIAN/control"
    control.write_text(control.read_text() + "SHA256: " + "0" * 64 + "\nSize: 1\n")
    deb.unlink()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    r = _put(srv, deb, "acme")
    # Refused by the acceptance gate, or published with a stanza built from the validated
    # data only: either way the forged fields never reach Packages.
    assert r.status_code in (201, 400), r.text
    assert _last_audit(srv)[2] == r.status_code
    repo = Repository.open(Path(str(srv["path"])))
    assert all("0" * 64 not in s and "\nSize: 1\n" not in s
               for s in repo.apt.committed_stanzas().values())
    _publish_edu(srv, tmp_path, "0.2.0")  # qemu's next upload into that chunk: 201
    assert _last_audit(srv)[2:] == (201, "published")
    _still_verifies(srv)


def test_case5_same_driver_name_from_another_vendor_is_403(srv, tmp_path):
    _publish_edu(srv, tmp_path)
    _, (w,) = make_driver(tmp_path / "b", "udriver-edu-acme", "1.0.0", "edu", (ACME_DEV,),
                          deb=False)
    msg = _refused(srv, w, "acme", 403, "out-of-scope")
    assert "the name `edu` belongs to 'vendor-qemu', not 'vendor-acme'" in msg
    _still_verifies(srv)


def test_case5_class_wide_driver_under_another_vendors_name_is_403(srv, tmp_path):
    _publish_edu(srv, tmp_path)
    _, (w,) = make_driver(tmp_path / "c", "udriver-edu-any", "99.0", "edu", (CLASS,),
                          deb=False)
    msg = _refused(srv, w, "classy", 403, "out-of-scope")
    assert "the name `edu` belongs to 'vendor-qemu', not 'vendor-classy'" in msg
    _still_verifies(srv)


def test_case7_pep440_equal_version_with_other_bytes_is_409(srv, tmp_path):
    _publish_edu(srv, tmp_path)
    _, (w, deb) = make_driver(tmp_path / "b", "udriver-edu", "0.1.0.0", "edu",
                              extra=b"other bytes")
    assert w.name == "udriver_edu-0.1.0.0-py3-none-any.whl"
    msg = _refused(srv, w, "qemu", 409, "conflict")
    assert "0.1.0.0 == 0.1.0 once normalised" in msg
    msg = _refused(srv, deb, "qemu", 409, "conflict")
    assert "0.1.0.0-1 == 0.1.0-1 once normalised" in msg
    _still_verifies(srv)
