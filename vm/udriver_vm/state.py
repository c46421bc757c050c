"""A driver store for `udriver run` tests, laid out where the driver's own uid can read it.

`udriver run` started as root opens the device and drops to the device's own uid before it
imports the driver (issue 9), so the driver's files must be readable by that uid. The
shared work folder's host path may pass through directories only root may enter (a clone
under /root, a mkdtemp folder), so the store is copied into the guest's own file system.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from .harness import Guest

__all__ = ["guest_readable_state"]

_BASE = "/var/lib/udriver-test"


def guest_readable_state(g: Guest, src: Path, name: str) -> str:
    """`src` (a host state dir) copied to `/var/lib/udriver-test/<name>` in the guest, once
    per guest, readable and traversable by every user; returns the guest path."""
    share = g.workdir / f"{name}-src"
    if not share.exists():
        shutil.copytree(src, share, symlinks=True)
    local = f"{_BASE}/{name}"
    g.run(f"[ -d {shlex.quote(local)} ] || {{ mkdir -p {_BASE} && "
          f"cp -a {shlex.quote(str(share))} {shlex.quote(local)} && chmod -R a+rX {_BASE}; }}",
          timeout=120, check=True)
    return local
