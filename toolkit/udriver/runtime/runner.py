"""The runner behind `udriver run`: find a driver, check it, probe, serve, remove.

udriver's own host side, not part of the drivers' API: a driver never imports it and
`udriver.runtime` does not export it. It is a public module so that `udriver.cli` (the
`run` command) and `udriver.supervise` (the kernel-bridge parent reads a driver's
manifest the way the runner finds it) import it without reaching into a private one.

Order of operations (each step refuses before the next one starts):
1. find the entry point `NAME` in group `udriver.drivers`, looking first in
   `udriver.paths.driver_search_path()` (installed drivers), then in sys.path, and load
   it only from the distribution that owns the name (`_owner`): the one whose embedded
   manifest (`*.dist-info/udriver.json`) declares `driver: NAME` with that entry point.
   A distribution whose manifest declares another driver never provides `NAME`, whatever
   its entry_points.txt says (another vendor's wheel for driver `aaa` that also lists
   `edu = ...` is ignored); two different owners, or two manifest-less distributions
   (development installs), are ambiguous and refused;
2. check the driver's ABI (its dist-info `udriver.json` if present, else the class's
   `abi`) with `udriver.abi.check_abi` - before the device is even opened;
3. check that the driver's `ids` match the device's modalias (sysfs);
4. hand the driver its kernel-bridge channel (`Driver.bridge`, ABI 1.1) when a privileged
   parent passed one (`--bridge-fd`); open the device, attach interrupts to the event
   loop, `probe()`, `await run()`;
5. on SIGTERM/SIGINT, when the kernel asks for the device back (the VFIO request IRQ:
   hot-unplug or unbind), or when `run()` returns and `once` is set: `remove()`, close,
   exit status 0.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..abi import ABI_VERSION, AbiVersion, check_abi, parse_abi
from ..errors import AbiError, ConfigError, DeviceError, ManifestError
from ..manifest import ENTRY_POINT_GROUP, MANIFEST_NAME, DriverManifest
from ..modalias import parse_modalias
from ..paths import driver_search_path
from ._bridge import Bridge
from ._device import Device
from ._driver import Driver
from ._sysfs import normalise_bdf

__all__ = ["FoundDriver", "driver_abi", "driver_manifest", "find_driver", "run_driver"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundDriver:
    """A driver located through its entry point."""

    name: str
    """Entry-point name."""
    cls: type[Driver]
    """The Driver subclass."""
    manifest: DriverManifest | None
    """Its dist-info `udriver.json`, when it was built by `udriver build`."""
    location: str
    """Where the distribution was found."""


@dataclass(frozen=True)
class _Candidate:
    """One distribution offering entry point NAME."""

    ep: md.EntryPoint
    dist: md.Distribution
    where: str | None
    """The driver directory it was found in, None for sys.path."""
    manifest: DriverManifest | None

    @property
    def label(self) -> str:
        return f"{self.dist.metadata['Name']} {self.dist.version} in {self.where or 'sys.path'}"


def _dist_key(dist: md.Distribution) -> tuple[str, str]:
    name = str(dist.metadata["Name"] or "").lower().replace("_", "-")
    return name, os.path.realpath(str(dist.locate_file("")))


def _candidates(name: str) -> tuple[list[_Candidate], list[str]]:
    """Every distribution offering entry point `name`, in search order, each once; and
    why some of them were ignored."""
    out: list[_Candidate] = []
    ignored: list[str] = []
    seen: set[tuple[str, str]] = set()
    extra = [str(p) for p in driver_search_path()]
    for where in [*([d] for d in extra), None]:
        dists = md.distributions(path=where) if where is not None else md.distributions()
        for dist in dists:
            eps = [ep for ep in dist.entry_points
                   if ep.group == ENTRY_POINT_GROUP and ep.name == name]
            key = _dist_key(dist)
            if not eps or key in seen:
                continue
            seen.add(key)
            cand = _Candidate(eps[0], dist, where[0] if where else None, None)
            text = dist.read_text(MANIFEST_NAME)
            if text is None:
                out.append(cand)
                continue
            try:
                m = DriverManifest.from_json(text.encode(), f"{cand.label} {MANIFEST_NAME}")
            except ManifestError as e:
                ignored.append(f"{cand.label}: invalid manifest: {e}")
                continue
            if m.driver != name:
                # Issue 9, case 4: a vendor's wheel for driver `aaa` listing `edu = ...`.
                ignored.append(f"{cand.label}: its manifest declares driver {m.driver!r}, "
                               f"not {name!r}")
            elif m.entry_point != eps[0].value:
                ignored.append(f"{cand.label}: entry point {eps[0].value!r} is not the "
                               f"manifest's {m.entry_point!r}")
            else:
                out.append(_Candidate(eps[0], dist, cand.where, m))
    return out, ignored


def _owner(name: str, found: list[_Candidate], ignored: list[str]) -> _Candidate:
    """The one distribution allowed to provide driver `name`.

    Distributions with a manifest declaring `name` (built by `udriver build`, installed
    by `udriver install` or from a .deb) own it; manifest-less ones (development
    installs) count only when no distribution owns it. The first in search order wins
    among versions of one package; two packages are ambiguous.

    Raises:
        ConfigError: nobody provides `name`, or two packages do.
    """
    owners = [c for c in found if c.manifest is not None]
    pool = owners or found
    if not pool:
        known = sorted({ep.name for d in md.distributions() for ep in d.entry_points
                        if ep.group == ENTRY_POINT_GROUP})
        err = ConfigError(f"No driver named {name!r} in entry-point group `{ENTRY_POINT_GROUP}`"
                          + (f" (ignored: {'; '.join(ignored)})" if ignored else ""))
        err.hint = f"installed drivers: {', '.join(known) or 'none'}"
        raise err
    packages = {(c.manifest.package if c.manifest else str(c.dist.metadata["Name"]))
                .lower().replace("_", "-") for c in pool}
    if len(packages) > 1:
        err = ConfigError(f"driver {name!r} is provided by {len(packages)} different "
                          f"packages: {'; '.join(c.label for c in pool)}; refusing to guess")
        err.hint = "remove all but one of them (`udriver remove`, `apt-get remove`)"
        raise err
    for c in found:
        if c.manifest is None and owners:
            _log.warning("ignoring %s: it has no %s and %s owns driver %r", c.label,
                         MANIFEST_NAME, owners[0].label, name)
    for why in ignored:
        _log.warning("ignoring a `%s` entry point %r: %s", ENTRY_POINT_GROUP, name, why)
    return pool[0]


def find_driver(name: str) -> FoundDriver:
    """Locate and import driver `name` from the distribution that owns it.

    Raises:
        ConfigError: no such driver, it is ambiguous, or it cannot be imported.
        ManifestError: the entry point is not a Driver.
    """
    found, ignored = _candidates(name)
    cand = _owner(name, found, ignored)
    ep, where = cand.ep, cand.where
    if where is not None and where not in sys.path:
        sys.path.insert(0, where)
    try:
        cls = ep.load()
    except Exception as e:
        raise ConfigError(f"cannot import driver {name!r} ({ep.value}): "
                          f"{type(e).__name__}: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise ManifestError(f"entry point {name!r} = {ep.value!r} is not a udriver Driver subclass")
    return FoundDriver(name, cls, cand.manifest, where or "sys.path")


def driver_manifest(name: str) -> DriverManifest | None:
    """The embedded manifest of the distribution that owns driver `name` (None for a
    manifest-less development install), found as `find_driver` does but without
    importing the driver: the privileged parent reads its bridge from it.

    Raises:
        ConfigError: nobody provides `name`, or two packages do.
    """
    found, ignored = _candidates(name)
    return _owner(name, found, ignored).manifest


def driver_abi(found: FoundDriver) -> AbiVersion:
    """The ABI the driver was built against: the manifest's, else the class's `abi`.

    Raises:
        AbiError: the class attribute is not "MAJOR.MINOR".
    """
    if found.manifest is not None:
        return found.manifest.abi
    return parse_abi(str(getattr(found.cls, "abi", "")))


def _check_ids(cls: type[Driver], bdf: str, sysfs: Path) -> None:
    path = sysfs / "bus" / "pci" / "devices" / bdf / "modalias"
    try:
        alias = parse_modalias(path.read_text().strip())
    except (OSError, ManifestError) as e:
        _log.warning("cannot read %s (%s); not checking the driver's ids", path, e)
        return
    if not cls.supports(alias):
        raise DeviceError(f"driver {cls.__name__} does not support {bdf} ({alias}): "
                          f"its `ids` are {[str(p) for p in cls.patterns()]}")


async def _cancel(task: asyncio.Future[None], attempts: int = 10) -> None:
    """Cancel `task` and wait for it, cancelling again if it swallowed the request.

    asyncio.wait_for() in Python 3.11 can swallow a cancellation that races with its
    inner future completing (CPython gh-86296); a busy driver hits that race often.
    """
    for _ in range(attempts):
        if task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.done():
        _log.error("driver task ignores cancellation; removing the driver anyway")


async def _serve(driver: Driver, device: Device, once: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    req = device.interrupts.request_channel()
    if req is not None:
        def requested() -> None:
            os.eventfd_read(req)
            _log.warning("%s: the kernel asks for the device back (hot-unplug or unbind); "
                         "removing the driver", device.bdf)
            stop.set()
        loop.add_reader(req, requested)
    device.interrupts.attach(loop, driver.on_interrupt)
    driver.probe(device)
    _log.info("%s probed %s", type(driver).__name__, device.bdf)
    task = asyncio.ensure_future(driver.run())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        # SIGTERM ends the driver also while run() is still busy.
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done and not once and task.exception() is None:
            await stopper  # keep servicing interrupts until told to stop
    finally:
        stopper.cancel()
        await _cancel(task)
        await asyncio.gather(stopper, return_exceptions=True)
        device.interrupts.detach()
        if req is not None:
            loop.remove_reader(req)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    exc = task.exception() if task.done() and not task.cancelled() else None
    if exc is not None:
        raise exc


def run_driver(bdf: str, name: str, *, options: Mapping[str, str] | None = None,
               once: bool = False, container_fd: int | None = None,
               group_fd: int | None = None, sysfs: str | Path = "/sys",
               bridge_fd: int | None = None) -> int:
    """Run driver `name` on device `bdf` until SIGTERM (or until `run()` ends, if `once`).

    Returns:
        0 after a clean `remove()`.

    Raises:
        ConfigError: the driver cannot be found or imported.
        AbiError: the driver needs an ABI this runtime does not provide.
        DeviceError: the device is unusable or not supported by the driver.
        NativeError: a VFIO call failed.
    """
    bdf = normalise_bdf(bdf)
    found = find_driver(name)
    try:
        check_abi(driver_abi(found), ABI_VERSION)
    except AbiError as e:
        err = AbiError(f"refusing driver {name!r}: {e}")
        err.hint = e.hint
        raise err from e
    _check_ids(found.cls, bdf, Path(sysfs))
    driver = found.cls(options)
    if bridge_fd is not None:  # ABI 1.1: the privileged parent's kernel-bridge channel
        driver.bridge = Bridge(bridge_fd, found.manifest.bridge if found.manifest else None)
    with Device(bdf, container_fd=container_fd, group_fd=group_fd, sysfs=sysfs) as device:
        try:
            asyncio.run(_serve(driver, device, once))
        finally:
            driver.remove()
            if driver.bridge is not None:
                driver.bridge.close()
            device.interrupts.close_request_channel()
            _log.info("%s removed from %s", type(driver).__name__, bdf)
    return 0
