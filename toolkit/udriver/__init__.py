"""udriver: binary user-mode Linux PCI drivers over VFIO.

Subpackages:
    runtime    the API drivers use (Device, regions, interrupts, DMA, Driver)
    pci        sysfs discovery, modalias matching, binding to vfio-pci
    toolchain  `udriver new`, `udriver build`, `udriver check`
    client     repositories, resolution, install, supervision
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"
__all__ = ["__version__"]

# The Debian package ships python-tuf 7 and securesystemslib 1.x, which Debian 12 lacks at
# those versions, in a private directory (debian/vendor.txt). First on the path, so that an
# older system copy (Debian's python3-securesystemslib 0.26) cannot shadow them.
_VENDOR = "/usr/lib/udriver/vendor"
if _os.path.isdir(_VENDOR) and _VENDOR not in _sys.path:
    _sys.path.insert(0, _VENDOR)
