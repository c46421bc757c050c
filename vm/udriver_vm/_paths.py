"""Where the udriver checkout is, for a harness that runs the host's own tree in the guest.

The guest mounts the host's ``/`` read-only at ``/`` (see :mod:`harness`), so the checkout,
the host's ``python3`` and the editable installs are at the same paths inside. Every module
that reads a driver project (``examples/edu``, ``drivers/nvme``...) or builds udriver's own
packages finds them from :func:`checkout_root`, never from its own file's depth.

The package is installed editable only (``pip install -e vm``, as ``.ci/setup`` does): it lives
at ``<checkout>/vm/udriver_vm``. A copy installed elsewhere has no checkout to run, which
:func:`checkout_root` says rather than returning a wrong path.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["checkout_root"]


@functools.cache
def checkout_root() -> Path:
    """Return the udriver checkout this package belongs to (``<root>/vm/udriver_vm``).

    Raises:
        RuntimeError: the package is not inside a udriver checkout (not an editable install).
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "toolkit" / "udriver").is_dir() or not (root / "vm" / "udriver_vm").is_dir():
        raise RuntimeError(
            f"udriver_vm is not inside a udriver checkout ({root} has no toolkit/udriver); "
            "install it editable: `pip install -e vm` in the checkout"
        )
    return root
