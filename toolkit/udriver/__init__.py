"""udriver: binary user-mode Linux PCI drivers over VFIO.

Subpackages:
    runtime    the API drivers use (Device, regions, interrupts, DMA, Driver)
    pci        sysfs discovery, modalias matching, binding to vfio-pci
    toolchain  `udriver new`, `udriver build`, `udriver check`
    client     repositories, resolution, install, supervision
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
