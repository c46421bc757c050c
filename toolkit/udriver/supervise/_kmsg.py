"""Notice when the kernel asks user space to give a VFIO device back (hot-unplug).

On removal, vfio-pci's remove callback waits until every user has closed the device
(drivers/vfio/vfio_main.c, `vfio_unregister_group_dev`). Meanwhile it calls the driver's
request hook (drivers/vfio/pci/vfio_pci_core.c, `vfio_pci_core_request`), which signals
the VFIO_PCI_REQ_IRQ_INDEX eventfd when user space registered one, and otherwise logs

    vfio-pci 0000:01:00.0: No device request channel registered, blocked until released by user

A driver process that does not handle the request would block the unplug forever, and the
`remove` uevent (and so `udriver autobind --action remove`) only comes after the release.
The supervisor therefore also watches the kernel log (/dev/kmsg, Documentation/ABI/testing/
dev-kmsg: one record per read, "prio,seq,usec,flags;message") for either message about its
device, and stops the driver when it sees one.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections.abc import Callable

__all__ = ["RemovalWatcher", "is_removal_request"]

log = logging.getLogger(__name__)

_MARKERS = ("No device request channel registered", "Relaying device request to user")


def is_removal_request(record: str, bdf: str) -> bool:
    """Whether a /dev/kmsg record is vfio-pci asking to release `bdf`. Pure."""
    _, _, message = record.partition(";")
    first = message.split("\n", 1)[0]
    return first.startswith(f"vfio-pci {bdf}: ") and any(m in first for m in _MARKERS)


class RemovalWatcher:
    """A thread calling `on_request()` once when the kernel asks for `bdf` back."""

    def __init__(self, bdf: str, on_request: Callable[[], None],
                 path: str = "/dev/kmsg") -> None:
        self.bdf = bdf
        self.on_request = on_request
        self.path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = False

    def start(self) -> bool:
        """Start watching; False (and a log line) when the kernel log is unreadable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            log.info("%s: cannot watch %s for removal requests: %s", self.bdf, self.path, e)
            return False
        try:
            os.lseek(fd, 0, os.SEEK_END)  # only records from now on
        except OSError:
            pass
        self._thread = threading.Thread(target=self._run, args=(fd,), daemon=True,
                                        name=f"kmsg-{self.bdf}")
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self, fd: int) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                while True:
                    try:
                        data = os.read(fd, 8192)
                    except OSError as e:
                        if e.errno == errno.EPIPE:  # overwritten records: keep reading
                            continue
                        if e.errno == errno.EAGAIN:
                            break
                        raise
                    if not data:
                        break
                    if is_removal_request(data.decode("utf-8", "replace"), self.bdf):
                        log.info("%s: the kernel asks for the device back (hot-unplug)",
                                 self.bdf)
                        self.fired = True
                        self.on_request()
                        return
        except OSError as e:
            log.warning("%s: stopped watching %s: %s", self.bdf, self.path, e)
        finally:
            os.close(fd)
