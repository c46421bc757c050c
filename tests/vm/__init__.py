"""QEMU guest harness: boot Debian kernels with an IOMMU and edu devices (see harness.py)."""
