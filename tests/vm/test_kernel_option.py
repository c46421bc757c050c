"""`--kernels` / `$UDRIVER_TEST_KERNELS` of tests/conftest.py: which kernels the `kernel`-
parametrised VM tests run on, and a clear usage error for a wrong value.

These run pytest itself in a subprocess with `--collect-only` on test_msix_reset.py (one
test, parametrised through the `guest` fixture), so they need no QEMU and are not VM tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_TARGET = "tests/vm/test_msix_reset.py"


def _collect(*args: str, env_kernels: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "UDRIVER_TEST_KERNELS"}
    if env_kernels is not None:
        env["UDRIVER_TEST_KERNELS"] = env_kernels
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
         _TARGET, *args],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def _ids(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    return [line.split("[", 1)[1].rstrip("]") for line in r.stdout.splitlines() if "::" in line]


def test_default_is_6_1_and_6_12() -> None:
    assert _ids(_collect()) == ["6.1", "6.12"]


def test_all_is_every_kernel_oldest_first() -> None:
    assert _ids(_collect("--kernels=all")) == ["5.10", "6.1", "6.12", "7.2"]


def test_list_keeps_the_given_order() -> None:
    assert _ids(_collect("--kernels=7.2,5.10")) == ["7.2", "5.10"]


def test_environment_variable_is_the_default() -> None:
    assert _ids(_collect(env_kernels="5.10")) == ["5.10"]


def test_option_wins_over_the_environment() -> None:
    assert _ids(_collect("--kernels=6.12", env_kernels="5.10")) == ["6.12"]


@pytest.mark.parametrize("value,message", [
    ("4.19", ("error: unknown kernel '4.19' in `--kernels=4.19`: expected `all` or a comma "
              "list of 5.10, 6.1, 6.12, 7.2")),
    ("6.1,6.1", "error: a kernel is named twice in `--kernels=6.1,6.1`"),
])
def test_bad_value_is_a_usage_error(value: str, message: str) -> None:
    r = _collect(f"--kernels={value}")
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage-error exit code
    assert message in r.stderr, r.stderr


def _ids_of(target: str, *args: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
         target, *args],
        cwd=_REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    return _ids(r)


_PRIMARY = ("tests/vm/test_hotplug.py::"
            "test_two_devices_at_once_two_processes_one_install")  # marked kernel_primary


def test_core_matrix_runs_kernel_primary_tests_on_the_first_kernel_only() -> None:
    assert _ids_of(_PRIMARY, "--kernels=6.1,7.2,5.10", "--kernel-matrix=core") == ["6.1"]


def test_core_matrix_leaves_other_tests_on_every_kernel() -> None:
    assert _ids_of(_TARGET, "--kernels=6.1,7.2,5.10", "--kernel-matrix=core") == [
        "6.1", "7.2", "5.10"]


def test_full_matrix_is_the_default() -> None:
    assert _ids_of(_PRIMARY, "--kernels=6.1,7.2,5.10") == ["6.1", "7.2", "5.10"]


_NAMED = "tests/vm/test_e1000e_bridge.py::test_ping_both_ways"  # kernel_primary("6.1", "6.12")


def test_core_matrix_runs_named_kernel_primary_tests_on_those_kernels() -> None:
    assert _ids_of(_NAMED, "--kernels=6.1,6.12,7.2,5.10", "--kernel-matrix=core") == [
        "6.1", "6.12"]


def test_core_matrix_falls_back_to_the_first_kernel_if_none_is_named() -> None:
    assert _ids_of(_NAMED, "--kernels=7.2,5.10", "--kernel-matrix=core") == ["7.2"]


def test_full_matrix_runs_named_kernel_primary_tests_on_every_kernel() -> None:
    assert _ids_of(_NAMED, "--kernels=all") == ["5.10", "6.1", "6.12", "7.2"]
