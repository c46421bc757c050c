"""udriver driver for the Intel 82574L (QEMU `e1000e`), and its direct packet path.

    from udriver.runtime import Device
    from udriver_e1000e import Nic, generate, sink

    with Device("0000:00:05.0") as dev:
        nic = Nic(dev, irq="msix", itr=8000)
        nic.start()
        print(nic.mac_str, nic.link_up)
        nic.send([frame])                          # a batch of frames (bytes)
        frames = nic.recv()                        # frames received so far
        print(generate(nic, dst=b"\\xff" * 6, size=60, seconds=2))   # the direct path
        nic.stop()
"""

from ._driver import E1000eDriver
from ._nic import E1000eError, Nic, mta_slot
from ._perf import PerfResult, generate, sink

__all__ = ["E1000eDriver", "E1000eError", "Nic", "PerfResult", "generate", "mta_slot", "sink"]
