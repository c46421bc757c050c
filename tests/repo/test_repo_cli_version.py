"""`udriver-repo --version` exists and names both versions (issue 13)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import udriver


def test_version() -> None:
    r = subprocess.run([sys.executable, "-c", "from udriver_repo.cli import run; run()",
                        "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (f"udriver-repo {version('udriver-repo-server')} "
                        f"(udriver {udriver.__version__})\n")


def test_init_takes_repo_like_every_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`udriver-repo init DIR` was the only command without `--repo` (issue 13)."""
    def init(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from udriver_repo.cli import run; run()",
                               "init", *argv], capture_output=True, text=True, timeout=120,
                              check=False, cwd=tmp_path)
    r = init("--repo", "r1")
    assert r.returncode == 0 and r.stdout.startswith(f"initialised repository {tmp_path / 'r1'}")
    r = init()
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "error: `udriver-repo init` needs one directory: DIR or `--repo DIR`\n"
    r = init("a", "--repo", "b")
    assert r.returncode == 1 and r.stderr.endswith("(got a, b)\n")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
