"""udriver's own Debian packages: dpkg-buildpackage from a clean tree, then lintian.

Issue 6, acceptance 1. The tree is exported with `git ls-files` so nothing built in the
working copy (editable-install artifacts, caches) leaks into the package.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from udriver_vm.debs import build_udriver_debs

pytestmark = pytest.mark.slow


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/setup)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need("dpkg-buildpackage", "lintian", "git")
    return build_udriver_debs(tmp_path_factory.mktemp("debbuild"))


def _contents(deb: Path) -> list[str]:
    out = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                         capture_output=True).stdout
    import io
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        return [m.name.lstrip(".") + ("/" if m.isdir() else "") for m in tf.getmembers()]


def test_udriver_package_contents(built: dict[str, Path]) -> None:
    files = _contents(built["udriver"])
    for want in ("/usr/bin/udriver",
                 "/usr/share/man/man1/udriver.1.gz",
                 "/usr/share/bash-completion/completions/udriver",
                 "/usr/lib/udriver/vendor/tuf/__init__.py",
                 "/usr/lib/udriver/vendor/securesystemslib/__init__.py",
                 "/usr/lib/python3/dist-packages/udriver/__init__.py",
                 "/usr/lib/python3/dist-packages/udriver/include/udriver.h",
                 # Debian 12 (debhelper 13.11) keeps units in /lib/systemd/system.
                 "/lib/systemd/system/udriver@.service",
                 "/lib/systemd/system/udriver-block@.service",
                 "/lib/systemd/system/udriver-net@.service",
                 "/lib/systemd/system/udriver-autobind@.service",
                 "/usr/share/udriver/driver-template/README.md",
                 "/var/lib/udriver/",
                 "/etc/udriver/repos.d/"):
        assert want in files, want
    assert any(f.startswith("/usr/lib/python3/dist-packages/udriver/_native") and
               f.endswith(".so") for f in files)


def test_repo_server_package_contents(built: dict[str, Path]) -> None:
    files = _contents(built["udriver-repo-server"])
    for want in ("/usr/bin/udriver-repo", "/usr/share/man/man1/udriver-repo.1.gz",
                 "/usr/share/bash-completion/completions/udriver-repo",
                 "/lib/systemd/system/udriver-repo-server.service",
                 "/usr/lib/python3/dist-packages/udriver_repo/__init__.py"):
        assert want in files, want


def _depends(deb: Path) -> list[str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], check=True,
                         capture_output=True, text=True).stdout
    return [d.strip() for d in out.split(",") if d.strip()]


def test_one_build_installs_on_debian_12_and_13(built: dict[str, Path]) -> None:
    """Issue 12: the .debs built on Debian 12 (Python 3.11) also install on Debian 13
    (Python 3.13); tests/vm/test_booted_system.py boots both. That holds as long as nothing
    ties them to one Python minor version: no upper bound on python3 (dh_python3 writes
    `python3 (<< 3.12)` for a version-specific extension), no `python3.11` dependency, the
    native module built for the stable ABI (`.abi3.so`, PEP 384), and only pure-Python
    wheels vendored (docs/kernels.md, "The next Debian")."""
    deps = _depends(built["udriver"]) + _depends(built["udriver-repo-server"])
    tied = [d for d in deps if "<<" in d or d.startswith(("python3.", "libpython3."))]
    assert tied == [], deps
    files = _contents(built["udriver"])
    native = [f for f in files if f.endswith(".so")]
    assert native and all(f.endswith(".abi3.so") for f in native), native
    vendored = [f for f in files if f.startswith("/usr/lib/udriver/vendor/")]
    assert vendored and not [f for f in vendored if f.endswith((".so", ".pyd"))], vendored


def test_lintian_reports_no_errors(built: dict[str, Path]) -> None:
    r = subprocess.run(["lintian", "--no-tag-display-limit", *map(str, built.values())], check=False,
                       capture_output=True, text=True, timeout=600)
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], r.stdout
    # No warnings either: there is none to justify.
    warnings = [line for line in r.stdout.splitlines() if line.startswith("W:")]
    assert warnings == [], r.stdout


def test_apt_install_from_own_repository_then_purge(built: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """Issue 6, acceptance 2: a Debian 12 system installs udriver with apt from the
    project's own signed apt view (its dependencies come from Debian), `udriver --version`
    and `man udriver` work, and `apt-get purge` removes what the package created."""
    from udriver_repo import Repository

    from udriver_vm.chroot import need_tools, run_in_chroot, unpack_chroot
    from udriver_vm.treeserver import TreeServer

    need_tools("chroot", "gpg")
    repo = Repository.init(tmp_path / "repo")
    try:
        assert repo.publish_system([built["udriver"]]) is True
        assert repo.publish_system([built["udriver"]]) is False  # same bytes: unchanged
    finally:
        repo.stop_agent()
    root = unpack_chroot(tmp_path / "root")
    keyring = root / "etc/apt/keyrings/udriver.gpg"
    keyring.parent.mkdir(parents=True, exist_ok=True)
    keyring.write_bytes((tmp_path / "repo/public/keys/apt.gpg").read_bytes())

    def chroot(*cmd: str, timeout: int = 900) -> str:
        r = run_in_chroot(root, *cmd, timeout=timeout)
        assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}\nSTDERR: {r.stderr[:3000]}"
        return r.stdout

    with TreeServer(tmp_path / "repo/public") as server:
        # Debian's own sources stay (python3 and friends come from there); ours is added.
        (root / "etc/apt/sources.list.d/udriver.list").write_text(
            f"deb [signed-by=/etc/apt/keyrings/udriver.gpg] {server.url} stable main\n")
        chroot("apt-get", "update")
        chroot("apt-get", "install", "-y", "--no-install-recommends", "udriver", "man-db")
    assert chroot("udriver", "--version") == "udriver 0.1.0\n"
    # The vendored python-tuf 7 / securesystemslib 1.x are the ones udriver's command
    # imports: its launcher (debian/scripts/udriver, run here up to `run()`) puts them first.
    launcher = "import runpy; runpy.run_path('/usr/bin/udriver', run_name='probe'); "
    assert chroot("python3", "-c", launcher + "import tuf, securesystemslib; "
                  "print(tuf.__version__, securesystemslib.__version__)") == "7.0.1 1.6.0\n"
    # ...and what python-tuf's client and udriver's fetcher need (Debian 12's are too old).
    assert chroot("python3", "-c", launcher + "import udriver.client._client, tuf.ngclient, "
                  "urllib3, requests, installer; from installer.sources import WheelFile; "
                  "assert WheelFile.validate_record; "
                  "print(urllib3.__version__, requests.__version__, installer.__version__)"
                  ) == "2.7.0 2.34.2 0.7.0\n"
    # The udriver processes the command starts (the driver's `udriver run`, the autobind
    # worker) get the directory too (udriver.launch.self_command)...
    assert chroot("python3", "-c", launcher + "import subprocess; "
                  "from udriver.launch import self_command; cmd = self_command(); "
                  "boot = cmd[2].replace('from udriver.cli import run; run()', "
                  "'import tuf; print(tuf.__version__)'); "
                  "subprocess.run([cmd[0], '-c', boot], check=True)") == "7.0.1\n"
    # ...but a program that merely imports udriver does not (issue 14: no sys.path edit
    # at import time).
    assert chroot("python3", "-c", "import sys, udriver; "
                  "print('/usr/lib/udriver/vendor' in sys.path)") == "False\n"
    installed = chroot("dpkg-query", "-W", "-f", "${Package}\n").split()
    assert "python3-securesystemslib" not in installed and "python3-urllib3" not in installed
    page = chroot("man", "-P", "cat", "udriver")
    assert "udriver" in page and "user-mode PCI drivers" in page.replace("\u2010", "-")
    # No shared driver user: each device's driver runs as a uid of its own (supervise._uids).
    assert run_in_chroot(root, "getent", "passwd", "udriver", timeout=60).returncode == 2
    # postinst wrote the hotplug rules for what is installed (nothing yet: the remove rule).
    rules = (root / "etc/udev/rules.d/60-udriver.rules").read_text()
    assert 'ACTION=="remove", SUBSYSTEM=="pci"' in rules and "/usr/bin/udriver autobind" in rules
    owned = [p for p in ("usr/bin/udriver", "usr/lib/python3/dist-packages/udriver",
                         "usr/lib/udriver/vendor/tuf", "lib/systemd/system/udriver@.service",
                         "lib/systemd/system/udriver-autobind@.service",
                         "etc/udev/rules.d/60-udriver.rules",
                         "etc/udriver/repos.d", "var/lib/udriver")
             if (root / p).exists()]
    assert len(owned) == 8, owned
    chroot("apt-get", "purge", "-y", "udriver")
    left = [p for p in owned if (root / p).exists() or (root / p).is_symlink()]
    assert left == [], left
