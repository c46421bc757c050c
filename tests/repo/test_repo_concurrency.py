"""Acceptance 6 (core half): 20 concurrent publishes of different drivers.

Twenty threads, each with its own `Repository` object, publish twenty different drivers
for two vendors at once (the HTTP version is in the server tests). `RepoLock` serialises
them: every driver ends up published exactly once, each publish is one commit (the
timestamp version grows by exactly 20), and a fresh client verifies everything.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from udriver_repo import Repository
from udriver_repo._meta import Transaction

from udriver_vm.repofactory import make_driver

pytestmark = pytest.mark.slow


def test_twenty_concurrent_publishes(repo, tmp_path):
    jobs: list[tuple[str, list[Path], str]] = []
    for i in range(20):
        vendor, vid = ("qemu", "1234") if i % 2 == 0 else ("acme", "1af4")
        _, files = make_driver(tmp_path / f"d{i}", f"udriver-c{i}", "0.1.0", f"c{i}",
                               (f"pci:v0000{vid.upper()}d{i + 1:08X}sv*sd*bc*sc*i*",),
                               deb=i < 4)
        jobs.append((vendor, files, f"udriver-c{i}"))
    ts_before = Transaction(repo.metadata_dir, repo.keys, repo.expiry).timestamp.signed.version
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(vendor: str, files: list[Path]) -> None:
        try:
            r = Repository.open(repo.path)
            start.wait()
            assert not r.publish(files, vendor=vendor).unchanged
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(v, f)) for v, f, _ in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)
    assert txn.timestamp.signed.version == ts_before + 20
    packages = [e["package"] for ix in ("1234", "1af4") for e in repo.index(ix)]
    assert sorted(packages) == sorted(name for _, _, name in jobs)
    assert len(repo.apt.committed_stanzas()) == 4
    report = repo.verify()
    assert report.ok, report.problems
    assert report.files == 24 and report.apt_packages == 4


def test_concurrent_publishes_from_separate_processes(repo, tmp_path):
    """The same through processes (forked publishers): flock serialises them too."""
    jobs = []
    for i in range(8):
        _, files = make_driver(tmp_path / f"p{i}", f"udriver-p{i}", "0.1.0", f"p{i}",
                               (f"pci:v00008086d{i + 0x100:08X}sv*sd*bc*sc*i*",), deb=False)
        jobs.append(files)
    pids = []
    for files in jobs:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                Repository.open(repo.path).publish(files, vendor="acme")
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert [os.waitpid(p, 0)[1] for p in pids] == [0] * len(pids)
    assert sorted(e["package"] for e in repo.index("8086")) == sorted(
        f"udriver-p{i}" for i in range(8))
    assert repo.verify().ok
