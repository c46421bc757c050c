"""Hot-unplug requests in the kernel log (/dev/kmsg records)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from udriver.supervise._kmsg import RemovalWatcher, is_removal_request

BDF = "0000:01:00.0"
NO_CHANNEL = (f"4,812,63202063,-;vfio-pci {BDF}: No device request channel registered, "
              f"blocked until released by user\n SUBSYSTEM=pci\n DEVICE=+pci:{BDF}\n")
RELAY = f"5,813,63202100,-;vfio-pci {BDF}: Relaying device request to user (#0)\n"


def test_request_records_are_recognised() -> None:
    assert is_removal_request(NO_CHANNEL, BDF)
    assert is_removal_request(RELAY, BDF)


def test_other_devices_and_messages_are_not() -> None:
    assert not is_removal_request(NO_CHANNEL, "0000:02:00.0")
    assert not is_removal_request(f"6,1,1,-;vfio-pci {BDF}: enabling device (0000 -> 0002)\n",
                                  BDF)
    assert not is_removal_request(f"6,1,1,-;pci {BDF}: No device request channel registered",
                                  BDF)
    assert not is_removal_request("garbage without separator", BDF)


def test_watcher_fires_once_on_request(tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)
    fired = threading.Event()
    w = RemovalWatcher(BDF, fired.set, path=str(fifo))
    try:
        assert w.start()
        os.write(writer, f"6,1,1,-;vfio-pci {BDF}: enabling device\n".encode())
        assert not fired.wait(0.7)
        os.write(writer, NO_CHANNEL.encode())
        assert fired.wait(5) and w.fired
    finally:
        w.stop()
        os.close(writer)


def test_watcher_without_kernel_log(tmp_path: Path) -> None:
    w = RemovalWatcher(BDF, lambda: None, path=str(tmp_path / "missing"))
    assert w.start() is False
