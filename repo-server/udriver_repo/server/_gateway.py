"""The server's only door into the repository core (`udriver_repo.Repository`).

Rules:
- The core's API is blocking (TUF signing, GnuPG, SQLite), so every call runs in a worker
  thread, never on the event loop.
- Each call opens the repository afresh in its worker thread (`Repository.open`): no SQLite
  connection or in-memory metadata is shared between threads, and every publish derives
  its next state from what is committed on disk.
- Publishes are serialised by a process-wide lock here as well as by the core's own file
  lock (which also keeps the CLI and other processes out), so a lock that is per-process
  (POSIX record locks are) cannot let two threads of this server in at once.
- Token checks do not take the publish lock: a 401 never waits behind a publish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from udriver.errors import UdriverError

from .._types import PublishResult

__all__ = ["RepoGateway", "RepositoryLike", "VendorRecord", "VendorView"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class VendorRecord(Protocol):
    """What the server reads of a publisher record (`udriver_repo.Vendor`)."""

    @property
    def name(self) -> str: ...

    @property
    def pci_vendors(self) -> tuple[int, ...]: ...

    @property
    def class_grant(self) -> bool: ...

    @property
    def revoked(self) -> bool: ...


class RepositoryLike(Protocol):
    """The part of `udriver_repo.Repository` the server uses. `Repository` satisfies it
    (mypy checks `_default_factory`); tests of the HTTP layer alone pass a fake."""

    def authenticate(self, token: str) -> VendorRecord | None: ...

    def publish(self, files: list[Path], vendor: str, *, record: bool = True) -> PublishResult: ...

    def list_vendors(self) -> Sequence[VendorRecord]: ...

    def close(self) -> None: ...

    def stop_agent(self) -> None: ...


@dataclass(frozen=True)
class VendorView:
    """What the server needs to know about a publisher."""

    name: str
    """The publisher's name (its delegated role)."""
    pci_vendors: tuple[int, ...]
    """PCI vendor IDs it owns."""
    class_grant: bool
    """Whether it may publish class-wide drivers."""
    revoked: bool
    """Whether its token was revoked."""

    @classmethod
    def of(cls, v: VendorRecord) -> VendorView:
        """The server's copy of a core `Vendor` record."""
        return cls(v.name, tuple(sorted(v.pci_vendors)), v.class_grant, v.revoked)


def _default_factory(path: Path) -> RepositoryLike:
    # The core (python-tuf, GnuPG) is imported on first use: the HTTP layer also runs,
    # and is tested, with a fake repository where python-tuf is not installed.
    from .._repository import Repository

    repo: RepositoryLike = Repository.open(path)
    return repo


class RepoGateway:
    """Runs repository calls in worker threads, one fresh `Repository` per call."""

    def __init__(self, repo_path: Path, factory: Callable[[Path], RepositoryLike] | None = None,
                 workers: int = 4) -> None:
        self._path = repo_path
        self._factory = factory or _default_factory
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="udriver-repo")
        self._publish_lock = threading.Lock()

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _with_repo(self, fn: Callable[[RepositoryLike], _T]) -> _T:
        repo = self._factory(self._path)
        try:
            return fn(repo)
        finally:
            repo.close()

    async def authenticate(self, token: str) -> VendorView | None:
        """The vendor a token belongs to, or None.

        Raises:
            RepositoryError: the repository cannot be opened.
        """
        def call(repo: RepositoryLike) -> VendorView | None:
            v = repo.authenticate(token)
            return None if v is None else VendorView.of(v)
        return await self._run(lambda: self._with_repo(call))

    async def vendors(self) -> list[VendorView]:
        """Every publisher, as the core lists them.

        Raises:
            RepositoryError: the repository cannot be opened.
        """
        return await self._run(
            lambda: self._with_repo(lambda r: [VendorView.of(v) for v in r.list_vendors()]))

    async def call_locked(self, fn: Callable[[RepositoryLike], _T]) -> _T:
        """Run `fn(repo)` under the publish lock in a worker thread.

        Raises:
            Whatever `fn` raises (PackageError, ScopeError, ConflictError, RepositoryError).
        """
        def locked() -> _T:
            with self._publish_lock:
                return self._with_repo(fn)
        return await self._run(locked)

    def close(self) -> None:
        """Wait for running calls to finish, stop the worker threads, then stop the
        repository's gpg-agent (started on demand by the apt-view signing of a publish),
        so that the service leaves no daemon behind."""
        self._pool.shutdown(wait=True)
        try:
            self._with_repo(_stop_agent)
        except UdriverError as e:
            _log.warning("cannot stop the repository's gpg-agent: %s", e)


def _stop_agent(repo: RepositoryLike) -> None:
    repo.stop_agent()
