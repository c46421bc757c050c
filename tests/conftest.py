"""Suite-wide policy for VM tests (tests that boot a Linux guest under QEMU).

* Tests that use a guest fixture (``guest``, ``guest_61``, ``guest_612``, ``vm_pool``) are
  marked ``vm`` automatically, wherever they live; others that boot a guest themselves mark
  themselves with ``@pytest.mark.vm``. Deselect them all with ``-m "not vm"``.
* A ``vm`` test whose prerequisites (qemu-system-x86_64, busybox, cached kernels from
  ``python3 -m udriver_vm.kernels fetch``) are missing is skipped with the reason -- except when
  ``CI=true``, where it fails instead.
* The guest fixtures ``guest``, ``guest_510``, ``guest_61``, ``guest_612``, ``guest_72``,
  ``vm_pool`` and ``session_wheels`` (see ``tests/vm/_fixtures.py``) are available to every test
  file.
* ``--kernels=5.10,6.1,6.12,7.2`` (or ``all``; default ``$UDRIVER_TEST_KERNELS``, else 6.1,6.12)
  picks the kernels that tests naming the ``kernel`` parameter (directly or through ``guest``)
  run on. ``make test-kernels`` passes ``--kernels=all``.
* ``--kernel-matrix=core`` (what ``make test`` passes) runs tests marked ``kernel_primary``
  only on the session's first kernel: the full suite on one kernel, and the runtime and
  hotplug core on the others (CI time). ``kernel_primary("6.1", "6.12")`` names the kernels
  instead: with ``core``, those of the session's kernels (else its first), as the kernel
  bridges run in ``make test``. The default, ``full``, runs them on every session kernel.
* If any selected test uses ``session_wheels``, the driver wheels are built once right after
  collection and their sha256 (and that of ``udriver/_native.abi3.so``) printed before the first
  test: every kernel runs these same files. Import the harness itself as
  ``from udriver_vm.harness import Guest`` (``vm/``, installed editable by ``.ci/setup``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from vm._fixtures import (  # noqa: F401
    guest,
    guest_61,
    guest_72,
    guest_510,
    guest_612,
    parse_kernels,
    require_vm,
    session_wheels,
    session_wheels_for,
    vm_pool,
)
from vm._net_bridge import br  # noqa: F401 (the e1000e bridge guest fixture)

_GUEST_FIXTURES = frozenset(
    {"guest", "guest_510", "guest_61", "guest_612", "guest_72", "vm_pool", "kernel"}
)
_KERNELS = pytest.StashKey[tuple[str, ...]]()
_WHEEL_DIR = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--kernels``: the guest kernels of this session."""
    parser.addoption(
        "--kernels",
        default=os.environ.get("UDRIVER_TEST_KERNELS"),
        help="guest kernels for VM tests that take the `kernel` parameter: `all` or a comma list "
        "of 5.10,6.1,6.12,7.2 (env: UDRIVER_TEST_KERNELS; default 6.1,6.12)",
    )


    parser.addoption(
        "--kernel-matrix",
        choices=("full", "core"),
        default="full",
        help="`core`: tests marked kernel_primary run on the first of --kernels only, or on the "
        "kernels the mark names (make test); "
        "`full` (default): on every kernel",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check ``--kernels`` once, before collection (a typo is a usage error, not a skip)."""
    try:
        config.stash[_KERNELS] = parse_kernels(config.getoption("--kernels"))
    except ValueError as e:
        raise pytest.UsageError(f"error: {e}") from e


def pytest_report_header(config: pytest.Config) -> str:
    """Name the kernels in the session header."""
    return f"udriver guest kernels: {','.join(config.stash[_KERNELS])}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs ``kernel`` (directly or through a fixture) on each kernel."""
    if "kernel" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if "kernel" in [n.strip() for n in names]:
            return  # the test pins its own kernels
    kernels = list(metafunc.config.stash[_KERNELS])
    mark = metafunc.definition.get_closest_marker("kernel_subset")
    if mark is not None:
        # Tests of the harness or of one driver that need not run on every kernel of the
        # matrix (CI time): those of the session's kernels that are in the subset, else the
        # session's first kernel, so a selection never leaves such a test without one.
        kernels = [k for k in kernels if k in mark.args] or kernels[:1]
    primary = metafunc.definition.get_closest_marker("kernel_primary")
    if primary is not None and metafunc.config.getoption("--kernel-matrix") == "core":
        # `kernel_primary` alone: the session's first kernel. `kernel_primary("6.1", "6.12")`:
        # those of the session's kernels, else its first. The full matrix ignores the mark.
        kernels = [k for k in kernels if k in primary.args] or kernels[:1]
    metafunc.parametrize("kernel", kernels, scope="session")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the session's driver wheels now, if a selected test uses them; print sha256."""
    if session.config.option.collectonly:
        return
    if not any("session_wheels" in getattr(i, "fixturenames", ()) for i in session.items):
        return
    out = Path(tempfile.mkdtemp(prefix="udriver-wheels-"))
    session.config.stash[_WHEEL_DIR] = out
    built = session_wheels_for(session.config, out)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["driver wheels for every kernel of this session (sha256):", *built.lines()]
    for line in lines:
        if tr is not None:
            tr.write_line(line)
        else:
            print(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the wheel build folder."""
    if _WHEEL_DIR in config.stash:
        shutil.rmtree(config.stash[_WHEEL_DIR], ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a guest fixture with ``vm``."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _GUEST_FIXTURES and item.get_closest_marker("vm") is None:
            item.add_marker(pytest.mark.vm)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the skip-or-fail policy to ``vm`` tests (kernel checks happen in the fixtures)."""
    if item.get_closest_marker("vm") is not None:
        require_vm(None)
