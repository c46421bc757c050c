"""`python -m udriver_e1000e.tap`: the NIC as the network interface of an existing TAP.

    ip tuntap add dev e1k0 mode tap user "$USER"      # by an administrator, once
    ip link set e1k0 address "$(NIC MAC)"
    python -m udriver_e1000e.tap --device 0000:00:11.0 --tap e1k0

Frames flow between the NIC and the TAP until SIGTERM or SIGINT; the TAP's carrier
follows the NIC's link. When the kernel asks for the device back (hot-unplug, unbind:
the VFIO request interrupt), the bridge stops, the TAP is made non-persistent and closed,
so the interface disappears, and the tool exits 0 (`removed` event). Events go to stdout as JSON lines (`ready`, `link`, `stopped`
with the counters); errors as one `error: ...` line on stderr, exit 1. This attaches to a
TAP someone else created; the driver under `udriver supervise` gets its TAP fd from the
privileged parent instead (docs/network.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from udriver.errors import UdriverError
from udriver.runtime import Device

from ._nic import Nic
from ._tap import TapBridge, open_tap, unpersist

__all__ = ["main"]


def emit(**fields: Any) -> None:
    print(json.dumps(fields, sort_keys=True), flush=True)


def _fired(fd: int) -> bool:
    try:
        return os.eventfd_read(fd) > 0
    except BlockingIOError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m udriver_e1000e.tap", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", required=True, help="PCI address of the NIC (vfio-pci)")
    p.add_argument("--tap", required=True, help="name of an existing TAP owned by this user")
    p.add_argument("--irq", choices=("msix", "poll"), default="msix")
    p.add_argument("--itr", type=int, default=20000, help="interrupts/s per vector")
    args = p.parse_args(argv)
    stop, removed = False, False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        tap_fd = open_tap(args.tap)
        with Device(args.device) as dev:
            nic = Nic(dev, irq=args.irq, itr=args.itr)
            nic.start()
            req = dev.interrupts.request_channel()  # VFIO_PCI_REQ_IRQ_INDEX
            bridge = TapBridge(nic, tap_fd)
            try:
                bridge.start()
                emit(event="ready", pid=os.getpid(), mac=nic.mac_str, tap=args.tap,
                     link=nic.link_up)
                while not stop and bridge.running:
                    up = bridge.watch_link(0.2)
                    if up is not None:
                        emit(event="link", up=up)
                    if req is not None and _fired(req):
                        removed = stop = True
            finally:
                counters = bridge.stop()
                nic_stats = nic.read_stats() if not removed else {"rx_good": 0, "tx_good": 0}
                nic.stop()
                dev.interrupts.close_request_channel()
            if removed:
                unpersist(tap_fd)
        os.close(tap_fd)
    except UdriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if removed:
        emit(event="removed", **counters)
        return 0
    emit(event="stopped", **counters, rx_good=nic_stats["rx_good"], tx_good=nic_stats["tx_good"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
