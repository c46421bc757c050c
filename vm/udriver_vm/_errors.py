"""Exceptions of the QEMU guest harness (re-exported by :mod:`harness` and :mod:`kernels`)."""

from __future__ import annotations

__all__ = ["GuestCommandError", "GuestDied", "GuestError", "GuestTimeout", "KernelFetchError"]


class GuestError(RuntimeError):
    """The guest could not be started, or a harness operation on it failed."""


class GuestTimeout(GuestError):
    """A wait on the guest (boot, command, QMP, shutdown) exceeded its timeout."""


class GuestDied(GuestError):
    """QEMU exited while the guest was in use; the message carries the console tail."""


class GuestCommandError(GuestError):
    """A command checked with ``CommandResult.check`` exited non-zero."""


class KernelFetchError(RuntimeError):
    """A kernel or udev could not be resolved, downloaded or unpacked (message says which)."""
