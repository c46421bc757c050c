"""Shared helper: udriver's own .debs, built with `dpkg-buildpackage -us -uc -b`.

The tree is exported with `git ls-files` so that nothing built in the working copy
(editable-install artifacts, caches) leaks into the packages. Takes about 10 s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ._paths import checkout_root

__all__ = ["ROOT", "build_udriver_debs"]

ROOT = checkout_root()


def build_udriver_debs(top: Path, timeout: int = 900) -> dict[str, Path]:
    """Export the checkout to `top/udriver`, build it, return {package name: .deb path}.

    Raises:
        AssertionError: the build failed (with the tail of its output) or a package is missing.
    """
    src = top / "udriver"
    src.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, files):
        rel = name.decode()
        if rel.endswith(".so") or not (ROOT / rel).is_file():
            continue
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, check=False,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    debs = {p.name.split("_")[0]: p for p in top.glob("*.deb")}
    assert set(debs) >= {"udriver", "udriver-repo-server"}, sorted(debs)
    return debs
