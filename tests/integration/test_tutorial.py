"""docs/tutorial.md, run word for word as a new user would (issue 6, acceptance 5).

Every ```sh block of the tutorial is run, in order, by one bash with `set -euo pipefail`,
in an empty directory; nothing is set for it: the tutorial points udriver's configuration and state at
directories of its own, as it tells the reader to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"

pytestmark = pytest.mark.slow


def _blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_tutorial_has_runnable_steps() -> None:
    blocks = _blocks(TUTORIAL.read_text())
    assert len(blocks) >= 8
    joined = "\n".join(blocks)
    for command in ("udriver new", "udriver build", "udriver check", "udriver-repo init",
                    "udriver-repo serve", "udriver upload", "udriver repo add",
                    "udriver install"):
        assert command in joined, command


def test_tutorial_word_for_word(tmp_path: Path) -> None:
    for tool in ("udriver", "udriver-repo", "curl", "lintian"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (.ci/setup installs it)")
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += "\n".join(_blocks(TUTORIAL.read_text()))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)  # the tutorial sets UDRIVER_CONFIG_DIR/STATE_DIR itself
    for var in ("UDRIVER_REPO_DIR", "UDRIVER_REPO_VENDOR", "UDRIVER_SYSFS_ROOT", "NO_COLOR",
                "UDRIVER_CONFIG_DIR", "UDRIVER_STATE_DIR"):
        env.pop(var, None)
    r = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, check=False,
                       text=True, timeout=900)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    out = r.stdout
    assert "5 passed" in out or re.search(r"\d+ passed", out)
    assert "udriver_acme-0.1.0-py3-none-any.whl" in out
    assert "FAILED" not in out
    assert "published udriver_acme-0.1.0-py3-none-any.whl (sha256 " in out
    assert "published udriver-driver-acme_0.1.0-1_all.deb (sha256 " in out
    assert "acme 0.1.0  udriver-acme  [local]  pci:v00005A5Ad00000001sv*sd*bc*sc*i*" in out
    assert "installed acme 0.1.0 from local" in out
    assert not (tmp_path / "etc").exists()
    current = work / "state" / "drivers" / "acme" / "current"
    assert current.is_symlink() and os.readlink(current) == "0.1.0"
