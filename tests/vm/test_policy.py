"""The VM-test policy of tests/conftest.py: skip with a reason, but fail when CI=true.

These run pytest itself in a subprocess on one VM test with an empty kernel cache, so they
need neither QEMU nor a kernel and are not VM tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_TARGET = "tests/vm/test_harness.py::test_boots_the_requested_kernel"
# test_harness.py is pinned to one kernel (kernel_subset("6.1")), so the target is one test.


def _pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["UDRIVER_VM_CACHE"] = str(tmp_path / "empty-cache")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", _TARGET],
        cwd=_REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_kernel_is_a_skip_with_reason(tmp_path: Path) -> None:
    r = _pytest(tmp_path, ci=None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped in" in r.stdout
    assert "VM prerequisite missing: kernel 6.1 is not cached" in r.stdout
    assert "run `python3 -m udriver_vm.kernels fetch`" in r.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_missing_kernel_fails_under_ci(tmp_path: Path, ci: str) -> None:
    r = _pytest(tmp_path, ci=ci)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 error in" in r.stdout, r.stdout  # pytest.fail in fixture setup: an error
    assert "CI=true and a VM prerequisite is missing: kernel 6.1 is not cached" in r.stdout


def test_ci_false_still_skips(tmp_path: Path) -> None:
    r = _pytest(tmp_path, ci="false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped in" in r.stdout
