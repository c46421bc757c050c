"""E1000eDriver: the udriver `Driver` for the Intel 82574L (8086:10d3).

`udriver run --device BDF --driver e1000e` probes (reset, address, rings, interrupts; see
`_nic`). Under a privileged parent (`udriver supervise`, `udriver-net@.service`, `udriver
run` as root) the manifest's `bridge = "net"` gives the driver a `Bridge` (ABI 1.1): it
asks for a TAP interface with the NIC's MAC, and the C pump (`_tap.TapBridge`) carries
frames between the NIC's rings and the TAP while `run()` mirrors every link change into
the TAP's carrier. Without a parent there is no interface: `run()` only reports link
changes. Each step is reported as a JSON line on stdout (`probed`, `ready`, `link`,
`removed`). `remove()` stops the pump, the receiver and transmitter, and closes the TAP
(the parent then removes the interface). Options (`--option
KEY=VALUE`): `irq` msix|poll, `rx_ring`, `tx_ring` (descriptors), `itr` (interrupts per
second and vector, 0: no moderation), `promisc` and `allmulti` (0|1).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from udriver.errors import ConfigError
from udriver.runtime import Device, Driver

from ._nic import Nic
from ._tap import TapBridge

__all__ = ["E1000eDriver"]

_OPTIONS = ("irq", "rx_ring", "tx_ring", "itr", "promisc", "allmulti")


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class E1000eDriver(Driver):
    """Brings an 82574 up in probe() and stops it in remove()."""

    ids: ClassVar[Sequence[str]] = ("pci:v00008086d000010D3sv*sd*bc*sc*i*",)
    abi: ClassVar[str] = "1.1"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        unknown = set(self.options) - set(_OPTIONS)
        if unknown:
            raise ConfigError(f"e1000e: unknown option(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(_OPTIONS)})")
        o = self.options
        try:
            self.nic_args: dict[str, Any] = {
                "irq": o.get("irq", "msix"), "rx_ring": int(o.get("rx_ring", "256"), 0),
                "tx_ring": int(o.get("tx_ring", "256"), 0), "itr": int(o.get("itr", "8000"), 0),
                "promisc": _flag(o, "promisc"), "allmulti": _flag(o, "allmulti")}
        except ValueError as e:
            raise ConfigError(f"e1000e: `rx_ring`, `tx_ring` and `itr` are integers (got "
                              f"{dict(o)}): {e}") from None
        self.nic: Nic | None = None
        self.net: Any = None  # udriver.runtime.NetBridge when bridged
        self.pump: TapBridge | None = None

    def probe(self, device: Device) -> None:
        super().probe(device)
        self.nic = Nic(device, **self.nic_args)
        self.nic.start()
        ifname = None
        if self.bridge is not None:
            # ABI 1.1: the parent creates the TAP with this MAC, carrier off, and sends its fd.
            self.net = self.bridge.net(mac=self.nic.mac_str)
            ifname = self.net.ifname
            self.pump = TapBridge(self.nic, self.net.fd, carrier=False)
            self.net.set_carrier(self.nic.link_up)
            self.pump.start()
        emit(event="probed", bdf=device.bdf, pid=os.getpid(), uid=os.getuid(),
             mac=self.nic.mac_str, mac_source=self.nic.mac_source, link=self.nic.link_up,
             speed=self.nic.speed, irq=self.nic.irq, itr=self.nic.itr, ifname=ifname)

    async def run(self) -> None:
        """Mirror link changes (STATUS.LU after each ICR.LSC) into the TAP's carrier and
        report them, until cancelled; end if the pump stops on its own (TAP gone)."""
        nic = self.nic
        assert nic is not None
        emit(event="ready", link=nic.link_up, ifname=self.net.ifname if self.net else None)
        loop = asyncio.get_running_loop()
        while self.pump is None or self.pump.running:
            up = await loop.run_in_executor(None, nic.wait_link_change, 0.5)
            if up is not None:
                if self.net is not None:
                    self.net.set_carrier(up)
                emit(event="link", up=up)
        assert self.pump is not None
        self.pump.stop()  # raises the pump's error

    def remove(self) -> None:
        counters = None
        if self.pump is not None and self.pump.running:
            counters = self.pump.stop()
        if self.nic is not None:
            self.nic.stop()
        if self.net is not None:
            self.net.close()
        emit(event="removed", bridge=counters)


def _flag(options: Mapping[str, str], key: str) -> bool:
    value = options.get(key, "0")
    if value not in ("0", "1"):
        raise ConfigError(f"e1000e: `{key}` must be 0 or 1, got {value!r}")
    return value == "1"
