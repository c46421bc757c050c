"""Issue 4, acceptance 6 over HTTP: 20 concurrent uploads of different drivers.

All 20 requests start together (a barrier) from 20 threads against the real server and the
real repository core. Afterwards: every answer is 201; the committed TUF tree lists each
driver exactly once, in the index of its PCI vendor, with the bytes that were uploaded;
a fresh python-tuf client (`Repository.verify`) accepts the whole tree; the audit log
has one `published` row per upload.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from test_server_helpers import ServerThread, copy_repo
from udriver_repo import Repository
from udriver_repo.server import ServerConfig, create_app
from udriver_repo.server._catalog import Catalog

from udriver_vm.repofactory import make_driver

# (publisher, PCI vendor) pairs of the conftest template
OWNERS = [("qemu", 0x1234), ("acme", 0x1AF4), ("acme", 0x8086), ("classy", 0x1B36)]
N = 20


def test_20_concurrent_uploads_are_each_published_exactly_once(repo_template, tmp_path):
    base = Path(tempfile.mkdtemp(prefix="udr-cc-"))
    repo = copy_repo(repo_template.path, base / "repo")
    # Up to 10 of the 20 come from one vendor: lift the per-vendor slot limit (default 4,
    # tested in test_server_limits.py) so that this test is about the publish path alone.
    srv = ServerThread(create_app(repo, ServerConfig(vendor_uploads=N))).start()
    try:
        jobs = []
        for i in range(N):
            vendor, pci = OWNERS[i % len(OWNERS)]
            m, (wheel,) = make_driver(tmp_path / f"d{i}", f"udriver-conc{i}", driver=f"conc{i}",
                                      deb=False,
                                      modaliases=(f"pci:v{pci:08X}d{0x100 + i:08X}sv*sd*bc*sc*i*",))
            jobs.append((vendor, pci, m, wheel, wheel.read_bytes()))
        barrier = threading.Barrier(N)

        def upload(job: tuple) -> requests.Response:  # type: ignore[type-arg]
            vendor, _, _, wheel, data = job
            barrier.wait(30)
            return requests.put(f"{srv.url}/api/v1/packages/{wheel.name}", data=data,
                                headers={"Authorization":
                                         f"Bearer {repo_template.tokens[vendor]}"},
                                timeout=300)

        with ThreadPoolExecutor(N) as pool:
            responses = list(pool.map(upload, jobs))
        assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses]
        assert list((repo / "staging").iterdir()) == []

        # The committed tree, read the way a client walks it (timestamp -> snapshot -> roles).
        view = Catalog((repo / "public").resolve()).view()
        listed = Counter((e.index, e.package, e.version)
                         for entries in view.indexes.values() for e in entries)
        for vendor, pci, m, wheel, data in jobs:
            assert listed[(f"{pci:04x}", m.package, m.version)] == 1, (m.package, listed)
            target = next(e for e in view.indexes[f"{pci:04x}"] if e.package == m.package)
            name = target.files["wheel"]
            digest = hashlib.sha256(data).hexdigest()
            stored = repo / "public" / "targets" / Path(name).parent / f"{digest}.{wheel.name}"
            assert stored.read_bytes() == data
        assert sum(listed.values()) == N

        report = Repository.open(repo).verify()
        assert report.ok, report.problems

        with sqlite3.connect(repo / "state.db") as c:
            rows = c.execute("SELECT result, COUNT(*) FROM server_audit WHERE actor IS NULL "
                             "GROUP BY result").fetchall()
        assert rows == [("published", N)]
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)
