"""{{dist}}: a udriver user-mode driver for PCI device {{vendor_hex}}:{{device_hex}}."""

__version__ = "0.1.0"
