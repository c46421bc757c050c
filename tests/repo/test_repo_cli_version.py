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
