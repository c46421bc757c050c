"""pytest fixtures and the skip/fail policy for VM tests (imported by ``tests/conftest.py``).

Policy: a test marked ``vm`` whose prerequisites (QEMU, busybox, the cached kernel) are missing
is SKIPPED with the reason, except when ``CI=true``, where it FAILS: CI must never pass by
skipping the tests that prove the VFIO claims.

Fixtures (every guest boots once per session per configuration and is reused):

* ``guest_510`` / ``guest_61`` / ``guest_612`` / ``guest_72`` -- a :class:`harness.Guest` on that
  kernel with one edu at boot (``devices=["edu"]``), ``root_ports=2`` (rp1, rp2 free for
  hotplug), 1024 MB, no udev.
* ``kernel`` -- a parameter, not a fixture: every test (or fixture) that names ``kernel`` runs once
  per kernel of the session (test ids ``[5.10]``, ``[6.1]``...). The session's kernels come from
  ``pytest --kernels=5.10,6.1,6.12,7.2`` (or ``all``), else ``$UDRIVER_TEST_KERNELS``, else
  :data:`DEFAULT_KERNELS`. The parameter is session-scoped, so pytest runs every test of one
  kernel before the next (fewer guests alive at once), and module-scoped fixtures (a hotplug
  guest) may depend on it.
* ``guest`` -- the shared guest on ``kernel``.
* ``session_wheels`` -- the driver wheels built once for the whole session (:mod:`_wheels`); their
  sha256 are printed before the first test.
* ``vm_pool`` -- session pool; ``vm_pool.get("6.12", udev=True, root_ports=1)`` returns a
  shared guest for any other configuration (keyword arguments of :class:`harness.Guest`). At most
  two pooled guests run at once (``$UDRIVER_VM_MAX_GUESTS``); the least recently used is shut
  down to boot another, so a test must not keep a ``Guest`` from an earlier ``get`` across
  two more ``get`` calls.

Between tests: after each test using ``guest*`` the fixture calls ``Guest.reset_devices()``:
unfinished commands are killed, devices hot-added through ``g.qmp("device_add", ...)`` are
removed, and every edu is unbound with ``driver_override`` cleared. Anything else a test changes
in the guest (files in /etc, udev rules, loaded modules) it must undo itself. A guest whose QEMU
died is rebooted for the next test. Run folders (console log) are kept when any test failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udriver_vm import kernels as _kernels
from udriver_vm.harness import Guest, GuestError, prerequisites_missing
from udriver_vm.wheels import SessionWheels, build_session_wheels

__all__ = [
    "DEFAULT_KERNELS",
    "WHEELS",
    "GuestPool",
    "guest",
    "guest_61",
    "guest_72",
    "guest_510",
    "guest_612",
    "in_ci",
    "parse_kernels",
    "require_vm",
    "session_wheels",
    "session_wheels_for",
    "vm_pool",
]

DEFAULT_KERNELS = ("6.1", "6.12")
"""Kernels that ``kernel``-parametrised tests run on when neither option nor variable says."""

DEFAULTS: dict[str, Any] = {"devices": ("edu",), "root_ports": 2, "mem_mb": 1024, "udev": False}


def parse_kernels(text: str | None) -> tuple[str, ...]:
    """Parse a ``--kernels`` / ``$UDRIVER_TEST_KERNELS`` value (``all`` or a comma list).

    Args:
        text: the value; None or empty means :data:`DEFAULT_KERNELS`.

    Raises:
        ValueError: an unknown kernel name, or a name given twice.
    """
    if not text or not text.strip():
        return DEFAULT_KERNELS
    if text.strip() == "all":
        return _kernels.KERNELS
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in _kernels.KERNELS]
    if bad:
        raise ValueError(
            f"unknown kernel {bad[0]!r} in `--kernels={text}`: expected `all` or a comma list "
            f"of {', '.join(_kernels.KERNELS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"a kernel is named twice in `--kernels={text}`")
    return tuple(names)


def in_ci() -> bool:
    """True when ``CI=true`` (missing VM prerequisites are then failures, not skips)."""
    return os.environ.get("CI", "").lower() == "true"


def require_vm(kernel: str | None = None) -> None:
    """Skip (or, under CI, fail) the current test if a guest cannot boot here.

    Args:
        kernel: also require this cached kernel (one of ``kernels.KERNELS``); None checks only
            the tools.
    """
    why = prerequisites_missing(kernel)
    if why:
        if in_ci():
            pytest.fail(f"CI=true and a VM prerequisite is missing: {why}", pytrace=False)
        pytest.skip(f"VM prerequisite missing: {why}")


class GuestPool:
    """Booted guests shared across a session, one per configuration.

    At most ``max_guests`` run at once (``$UDRIVER_VM_MAX_GUESTS``, default 2): booting one more
    shuts down the least recently used. The ``kernel`` parameter is session-scoped, so pytest
    runs every test of one kernel before the next and the pool rarely reboots a guest.
    """

    def __init__(self, max_guests: int | None = None) -> None:
        self._guests: dict[tuple[Any, ...], Guest] = {}
        self.failed = False
        self.max_guests = max_guests or int(os.environ.get("UDRIVER_VM_MAX_GUESTS") or 2)

    def get(self, kernel: str, **opts: Any) -> Guest:
        """Return a running guest for ``kernel`` with ``opts`` (booting or rebooting it).

        Raises:
            GuestError: the guest could not boot.
        """
        require_vm(kernel)
        cfg = {**DEFAULTS, **opts}
        key = (kernel, *sorted((k, repr(v)) for k, v in cfg.items()))
        g = self._guests.pop(key, None)
        if g is not None and not g.alive:
            g.close(failed=True)  # QEMU died in an earlier test: keep its console, reboot
            g = None
        if g is None:
            while len(self._guests) >= self.max_guests:
                oldest = next(iter(self._guests))
                self._guests.pop(oldest).close(failed=self.failed)
            g = Guest(kernel=kernel, **cfg)
            g.start()
        self._guests[key] = g  # re-inserted last: the dict's order is the use order
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


WHEELS = pytest.StashKey[SessionWheels]()
"""Where the conftest keeps the session's wheels once built (``config.stash[WHEELS]``)."""


def session_wheels_for(config: pytest.Config, out: Path) -> SessionWheels:
    """Build the session's wheels into ``out`` on first use; return the same ones after."""
    if WHEELS not in config.stash:
        config.stash[WHEELS] = build_session_wheels(out)
    return config.stash[WHEELS]


@pytest.fixture(scope="session")
def session_wheels(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SessionWheels:
    """The driver wheels of this session (normally built by the conftest before any test)."""
    return session_wheels_for(request.config, tmp_path_factory.mktemp("wheels"))


@pytest.fixture
def guest_510(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared Debian 11 (5.10) guest, reset after the test."""
    yield from _use(vm_pool, "5.10")


@pytest.fixture
def guest_61(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared Debian 12 (6.1) guest, reset after the test."""
    yield from _use(vm_pool, "6.1")


@pytest.fixture
def guest_612(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared bookworm-backports (6.12) guest, reset after the test."""
    yield from _use(vm_pool, "6.12")


@pytest.fixture
def guest_72(vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared Debian unstable (7.2) guest, reset after the test."""
    yield from _use(vm_pool, "7.2")


@pytest.fixture
def guest(kernel: str, vm_pool: GuestPool) -> Iterator[Guest]:
    """The shared guest on the session's ``kernel`` parameter, reset after the test."""
    yield from _use(vm_pool, kernel)
