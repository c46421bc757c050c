"""Acceptance 5: SIGKILL the publisher at every filesystem step (>= 50 points).

A step hook (`udriver_repo._fsio.set_step_hook`) makes the publishing process SIGKILL
itself right after its k-th filesystem step (`udriver_repo._fsio.step`). For every k of two kinds of
publish (a single-vendor driver, and a driver listed in two vendors' indexes), each with
a wheel and a deb, the test forks a publisher that dies at step k, then:

1. a fresh python-tuf client (empty cache, bootstrap root) refreshes and downloads the
   affected index: its bytes are the old or the new index, never anything else;
2. the apt view verifies (gpgv on InRelease, by-hash Packages, pool files) and lists the
   old or the new set of debs;
3. the same publish, run again, succeeds, and the client then sees the new index.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from tuf.ngclient import Updater
from udriver_repo import Repository, _fsio
from udriver_repo._packages import parse_packages, release_packages_sha
from udriver_repo._verify import FileFetcher

from udriver_vm.repofactory import make_driver

pytestmark = pytest.mark.slow

KINDS = {
    "single": ("qemu", "udriver-edu", "edu", ("pci:v00001234d000011E8sv*sd*bc*sc*i*",),
               ["1234/8"]),
    "multi": ("acme", "udriver-multi", "multi", ("pci:v00001AF4d00001000sv*sd*bc*sc*i*",
                                                 "pci:v00008086d00001234sv*sd*bc*sc*i*"),
              ["1af4/0", "8086/4"]),
}


def _publish_in_child(repo_path: Path, files: list[Path], vendor: str, crash_after: int | None,
                      step_log: Path | None = None) -> int:
    """Fork a publisher; return its wait status signal (or -exit code)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            _fsio.set_step_hook(_hook(crash_after, step_log))
            Repository.open(repo_path).publish(files, vendor=vendor)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def _hook(crash_after: int | None, step_log: Path | None) -> _fsio.StepHook:
    def hook(n: int, what: str) -> None:
        if step_log is not None:
            with open(step_log, "a", encoding="utf-8") as f:
                f.write(f"{n} {what}\n")
        if crash_after is not None and n >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


def _client_index(public: Path, root: bytes, name: str) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="udr-client-") as d:
        up = Updater(d, public.as_uri() + "/metadata/", d, public.as_uri() + "/targets/",
                     fetcher=FileFetcher(), bootstrap=root)
        up.refresh()  # raises on any inconsistency
        info = up.get_targetinfo(f"index/{name}.json")
        return None if info is None else Path(up.download_target(info, f"{d}/i")).read_bytes()


def _apt_debs(public: Path) -> frozenset[str]:
    """Verify the apt view as apt would and return the pool files it lists."""
    p = subprocess.run(["gpgv", "--keyring", str(public / "keys/apt.gpg"), "--output", "-",
                        str(public / "dists/stable/InRelease")], capture_output=True, check=True)
    sha = release_packages_sha(p.stdout.decode())
    data = (public / f"dists/stable/main/binary-amd64/by-hash/SHA256/{sha}").read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    stanzas = parse_packages(data)
    for filename, fields in stanzas.items():
        assert hashlib.sha256((public / filename).read_bytes()).hexdigest() == fields["SHA256"]
    return frozenset(stanzas)


def test_sigkill_at_every_step_leaves_old_or_new(repo, tmp_path):
    root = (repo.metadata_dir / "1.root.json").read_bytes()
    killed = 0
    version = 0
    for kind, (vendor, package, driver, mods, indexes) in KINDS.items():
        # The first publish of a driver also records its names (more steps): publish
        # once, then count the steps of one publish of this kind.
        version += 1
        _, files = make_driver(tmp_path / f"d{version}", package, f"0.{version}.0", driver, mods)
        assert _publish_in_child(repo.path, files, vendor, None) == 0
        version += 1
        _, files = make_driver(tmp_path / f"d{version}", package, f"0.{version}.0", driver, mods)
        log = tmp_path / f"steps-{kind}"
        assert _publish_in_child(repo.path, files, vendor, None, log) == 0
        steps = len(log.read_text().splitlines())
        assert steps >= 25, log.read_text()
        for k in range(1, steps + 1):
            version += 1
            _, files = make_driver(tmp_path / f"d{version}", package, f"0.{version}.0", driver,
                                   mods)
            old = {ix: _client_index(repo.public, root, ix) for ix in indexes}
            old_debs = _apt_debs(repo.public)
            assert _publish_in_child(repo.path, files, vendor, k) == signal.SIGKILL, k
            killed += 1
            seen = {ix: _client_index(repo.public, root, ix) for ix in indexes}
            seen_debs = _apt_debs(repo.public)
            # A new publish succeeds (the same one, completed).
            Repository.open(repo.path).publish(files, vendor=vendor)
            new = {ix: _client_index(repo.public, root, ix) for ix in indexes}
            new_debs = _apt_debs(repo.public)
            assert new != old and new_debs != old_debs
            assert seen in (old, new), f"{kind}: mixed TUF state after a kill at step {k}"
            assert seen_debs in (old_debs, new_debs), f"{kind}: apt mix at step {k}"
    assert killed >= 50
    assert repo.verify().ok
