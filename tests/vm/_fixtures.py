"""pytest fixtures and the skip/fail policy for VM tests (imported by ``tests/conftest.py``).

Policy: a test marked ``vm`` whose prerequisites (QEMU, busybox, the cached kernel) are missing
is SKIPPED with the reason, except when ``CI=true``, where it FAILS: CI must never pass by
skipping the tests that prove the VFIO claims.

Fixtures (every guest boots once per session per configuration and is reused):

* ``guest_61`` / ``guest_612`` -- a :class:`harness.Guest` on that kernel with one edu at boot
  (``devices=["edu"]``), ``root_ports=2`` (rp1, rp2 free for hotplug), 1024 MB, no udev.
* ``guest`` -- the same, parametrised over both kernels (test ids ``[6.1]`` and ``[6.12]``).
* ``vm_pool`` -- session pool; ``vm_pool.get("6.12", udev=True, root_ports=1)`` returns a
  shared guest for any other configuration (keyword arguments of :class:`harness.Guest`).

Between tests: after each test using ``guest*`` the fixture calls ``Guest.reset_devices()``:
unfinished commands are killed, devices hot-added through ``g.qmp("device_add", ...)`` are
removed, and every edu is unbound with ``driver_override`` cleared. Anything else a test changes
in the guest (files in /etc, udev rules, loaded modules) it must undo itself. A guest whose QEMU
died is rebooted for the next test. Run folders (console log) are kept when any test failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import Guest, GuestError, prerequisites_missing

__all__ = ["GuestPool", "guest", "guest_61", "guest_612", "in_ci", "require_vm", "vm_pool"]

DEFAULTS: dict[str, Any] = {"devices": ("edu",), "root_ports": 2, "mem_mb": 1024, "udev": False}


def in_ci() -> bool:
    """True when ``CI=true`` (missing VM prerequisites are then failures, not skips)."""
    return os.environ.get("CI", "").lower() == "true"


def require_vm(kernel: str | None = None) -> None:
    """Skip (or, under CI, fail) the current test if a guest cannot boot here.

    Args:
        kernel: also require this cached kernel ("6.1"/"6.12"); None checks only the tools.
    """
    why = prerequisites_missing(kernel)
    if why:
        if in_ci():
            pytest.fail(f"CI=true and a VM prerequisite is missing: {why}", pytrace=False)
        pytest.skip(f"VM prerequisite missing: {why}")


class GuestPool:
    """Booted guests shared across a session, one per configuration."""

    def __init__(self) -> None:
        self._guests: dict[tuple[Any, ...], Guest] = {}
        self.failed = False

    def get(self, kernel: str, **opts: Any) -> Guest:
        """Return a running guest for ``kernel`` with ``opts`` (booting or rebooting it).

        Raises:
            GuestError: the guest could not boot.
        """
        require_vm(kernel)
        cfg = {**DEFAULTS, **opts}
        key = (kernel, *sorted((k, repr(v)) for k, v in cfg.items()))
        g = self._guests.get(key)
        if g is not None and not g.alive:
            g.close(failed=True)  # QEMU died in an earlier test: keep its console, reboot
            g = None
        if g is None:
            g = Guest(kernel=kernel, **cfg)
            g.start()
            self._guests[key] = g
        return g

    def close_all(self) -> None:
        """Shut every guest down; keep run folders if a test failed."""
        for g in self._guests.values():
            g.close(failed=self.failed)
        self._guests.clear()


@pytest.fixture(scope="session")
def vm_pool(request: pytest.FixtureRequest) -> Iterator[GuestPool]:
    """The session's :class:`GuestPool`."""
    pool = GuestPool()
    yield pool
    pool.failed = request.session.testsfailed > 0
    pool.close_all()


def _use(pool: GuestPool, kernel: str) -> Iterator[Guest]:
    g = pool.get(kernel)
    yield g
    if g.alive:
        try:
            g.reset_devices()
        except GuestError:
            g.close(failed=True)  # the next test gets a fresh guest


@pytest.fixture
def guest_61(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared Debian 12 (6.1) guest, reset after the test."""
    yield from _use(vm_pool, "6.1")


@pytest.fixture
def guest_612(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared bookworm-backports (6.12) guest, reset after the test."""
    yield from _use(vm_pool, "6.12")


@pytest.fixture(params=["6.1", "6.12"])
def guest(request: pytest.FixtureRequest, vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared guest for each kernel in turn, reset after the test."""
    yield from _use(vm_pool, request.param)
