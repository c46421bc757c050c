"""udriver driver for NVMe controllers, and the direct path (the SPDK model) on its queues.

    from udriver.runtime import Device
    from udriver_nvme import Controller, JobSpec

    with Device("0000:00:04.0") as dev:
        ctrl = Controller(dev, irq="msix")
        ctrl.start()
        ctrl.write(8, b"x" * 4096)
        ctrl.flush()
        print(ctrl.run(JobSpec(rw="randread", bs=4096, qd=32, seconds=5)).summary())
        ctrl.shutdown()
"""

from ._controller import Controller
from ._driver import NvmeDriver
from ._identify import ControllerId, NamespaceId
from ._job import JobResult, JobSpec
from ._status import NvmeError, NvmeStatus, NvmeStatusError, NvmeTimeoutError, decode_status

__all__ = [
    "Controller",
    "ControllerId",
    "JobResult",
    "JobSpec",
    "NamespaceId",
    "NvmeDriver",
    "NvmeError",
    "NvmeStatus",
    "NvmeStatusError",
    "NvmeTimeoutError",
    "decode_status",
]
