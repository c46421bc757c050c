"""The .deb route: a clean Debian 12 installs udriver with apt, and an ordinary user follows
the tutorial word for word (issue 13, acceptance 1).

udriver's own .debs are built from a `git ls-files` export (udriver_vm.debs) and
published in the apt view of a udriver repository, served on 127.0.0.1. A fresh Debian 12
minbase chroot (udriver_vm.chroot) trusts it and runs the apt line that docs/tutorial.md
gives .deb users, taken from the tutorial's text. Then the tutorial's ```sh blocks, also
taken from its text, run inside the chroot as `nobody` with only PATH, HOME and LANG set:
Debian's python3, the packaged udriver and udriver-repo, nothing from this checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from udriver_vm.chroot import need_tools, run_in_chroot, unpack_chroot
from udriver_vm.debs import ROOT, build_udriver_debs

sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "repo"))

from test_install_routes import TUTORIAL, assert_tutorial_ran, tutorial_script

pytestmark = pytest.mark.slow


def _apt_line() -> list[str]:
    """The packages of the tutorial's `apt install ...` for .deb users."""
    m = re.search(r"`apt install ([a-z0-9 .+-]+)`", TUTORIAL.read_text())
    assert m, "the tutorial no longer names the .deb route's apt line"
    return m.group(1).split()


def test_deb_route_runs_the_tutorial_as_an_ordinary_user(tmp_path: Path) -> None:
    need_tools("dpkg-buildpackage", "git", "chroot", "gpg")
    from udriver_repo import Repository

    from udriver_vm.treeserver import TreeServer

    debs = build_udriver_debs(tmp_path / "build")
    repo = Repository.init(tmp_path / "aptrepo")
    try:
        repo.publish_system([debs["udriver"], debs["udriver-repo-server"]])
    finally:
        repo.stop_agent()
    root = unpack_chroot(tmp_path / "root")
    (root / "etc/apt/keyrings").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/keyrings/udriver.gpg").write_bytes(
        (repo.public / "keys" / "apt.gpg").read_bytes())

    def chroot(*cmd: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
        r = run_in_chroot(root, *cmd, timeout=timeout)
        assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}\nSTDERR: {r.stderr[-3000:]}"
        return r

    with TreeServer(repo.public) as server:
        (root / "etc/apt/sources.list.d/udriver.list").write_text(
            f"deb [signed-by=/etc/apt/keyrings/udriver.gpg] {server.url} stable main\n")
        chroot("apt-get", "update")
        # The tutorial's own line (apt installs Recommends, as `apt install` does).
        chroot("apt-get", "install", "-y", *_apt_line())
    work = root / "home" / "work"
    work.mkdir(parents=True)
    chroot("chown", "nobody:nogroup", "/home/work")
    script = f"cd /home/work && {tutorial_script()}"
    r = subprocess.run(["chroot", str(root), "runuser", "-u", "nobody", "--", "/usr/bin/env",
                        "-i", "PATH=/usr/bin:/bin", "HOME=/home/work", "LANG=C.UTF-8",
                        "bash", "-c", script], capture_output=True, text=True,
                       timeout=1800, check=False)
    assert_tutorial_ran(r, work)
    # It ran the packaged udriver: Debian's python3, /usr/lib/python3/dist-packages.
    which = chroot("python3", "-c", "import udriver; print(udriver.__file__)").stdout
    assert which.startswith("/usr/lib/python3/dist-packages/udriver/")
    # The packaged completion file drives the packaged udriver (Debian's python3-argcomplete).
    done = chroot("bash", "-c", "source /usr/share/bash-completion/completions/udriver; "
                  "COMP_LINE='udriver hi'; COMP_POINT=10; COMP_WORDS=(udriver hi); "
                  "COMP_CWORD=1; _udriver udriver hi udriver; echo \"${COMPREPLY[@]}\"").stdout
    assert done.split() == ["history"]
