"""Suite-wide policy for VM tests (tests that boot a Linux guest under QEMU).

* Tests that use a guest fixture (``guest``, ``guest_61``, ``guest_612``, ``vm_pool``) are
  marked ``vm`` automatically, wherever they live; others that boot a guest themselves mark
  themselves with ``@pytest.mark.vm``. Deselect them all with ``-m "not vm"``.
* A ``vm`` test whose prerequisites (qemu-system-x86_64, busybox, cached kernels from
  ``python3 tests/vm/kernels.py fetch``) are missing is skipped with the reason -- except when
  ``CI=true``, where it fails instead.
* The guest fixtures ``guest``, ``guest_61``, ``guest_612`` and ``vm_pool`` (see
  ``tests/vm/_fixtures.py``) are available to every test file. Import the harness itself as
  ``from vm.harness import Guest`` (this directory is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import pytest

from vm._fixtures import guest, guest_61, guest_612, require_vm, vm_pool  # noqa: F401

_GUEST_FIXTURES = frozenset({"guest", "guest_61", "guest_612", "vm_pool"})


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
