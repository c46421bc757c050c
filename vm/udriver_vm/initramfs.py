"""Build the guest's busybox initramfs (stage 1) for a cached kernel.

Stage 1 only gets the guest onto the host's root filesystem:

1. mount ``/proc``, ``/sys``, ``/dev``;
2. ``insmod`` the modules needed for virtio-9p and overlayfs (from ``modules.dep``, in dependency
   order: busybox ``modprobe`` ignores soft dependencies, so nothing is left to it);
3. mount the host root (9p tag ``hostroot``, read-only) as the lower layer of an overlayfs whose
   upper layer is a tmpfs, so guest writes never reach the host;
4. mount the writable 9p work folder (tag ``work``) at ``$UDRIVER_WORK`` inside the new root;
5. ``switch_root`` (not ``chroot``: udevadm refuses to work in a chroot) and exec
   ``/bin/bash $UDRIVER_WORK/agent.sh``, the stage 2 written by :mod:`harness` for each guest.

Booting a Debian system instead (``Guest(system=...)``): the 9p ``hostroot`` share is that
system's root directory, not the host's; ``UDRIVER_MODULES=<version>`` mounts the kernel's
modules (9p tag ``modules``) at ``/usr/lib/modules/<version>``; ``UDRIVER_INIT=systemd``
copies the agent's unit ``udriver-test-agent.service`` from the work folder into
``/etc/systemd/system`` (the tmpfs upper layer), enables it for ``multi-user.target`` and
execs ``/lib/systemd/systemd`` as PID 1.

``UDRIVER_WORK``, ``UDRIVER_HOSTCACHE`` (the 9p ``cache=`` mode of the root share),
``UDRIVER_MODULES`` and ``UDRIVER_INIT`` arrive on the kernel command line; the kernel passes ``key=value`` words it
does not know into init's environment.

The archive is the kernel's "newc" cpio format (``Documentation/driver-api/early-userspace/
buffer-format.rst``), written here directly, and cached in the kernel's cache entry, keyed by a
hash of its contents.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
from pathlib import Path

__all__ = ["STAGE1_MODULES", "build_initramfs"]

STAGE1_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
"""Modules stage 1 needs before it can mount the shares (dependencies are added)."""

_BUSYBOX = Path("/bin/busybox")

_INIT = r"""#!/bin/busybox sh
bb=/bin/busybox
fail() { echo "udriver-init: FAILED: $*"; $bb sleep 1; $bb poweroff -f; }
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
for m in $($bb cat /modules.order); do
    $bb insmod "/modules/$m" || fail "insmod $m"
done
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=${UDRIVER_HOSTCACHE:-loose} hostroot /lower \
    || fail "mount hostroot"
$bb mount -t tmpfs -o mode=0755 rw /rw || fail "mount tmpfs"
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "mount overlay"
$bb mkdir -p "/newroot$UDRIVER_WORK"
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 work "/newroot$UDRIVER_WORK" \
    || fail "mount work"
if [ -n "$UDRIVER_MODULES" ]; then
    m="/newroot/usr/lib/modules/$UDRIVER_MODULES"
    $bb mkdir -p "$m"
    $bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose modules "$m" \
        || fail "mount modules"
fi
# Drivers run as their device's own uid; the host's pyenv Python lives under /root (0700),
# so let every user traverse it in the guest (a Debian install's /usr/bin/python3 needs no
# such thing; VM-NOTES.md). The overlay keeps the change in the guest.
$bb chmod o+x /newroot/root 2>/dev/null || true
$bb mount --move /proc /newroot/proc
$bb mount --move /sys /newroot/sys
$bb mount --move /dev /newroot/dev
if [ "$UDRIVER_INIT" = systemd ]; then
    u=/newroot/etc/systemd/system
    $bb mkdir -p "$u/multi-user.target.wants"
    $bb cp "/newroot$UDRIVER_WORK/udriver-test-agent.service" "$u/" || fail "agent unit"
    $bb ln -sf ../udriver-test-agent.service "$u/multi-user.target.wants/"
    exec $bb switch_root /newroot /lib/systemd/systemd
fi
exec $bb switch_root /newroot /bin/bash "$UDRIVER_WORK/agent.sh"
fail "switch_root"
"""


def module_closure(moddir: Path, names: tuple[str, ...]) -> list[str]:
    """Return module paths (relative to ``moddir``) for ``names`` and their deps, deps first.

    Built-in modules (``modules.builtin``) are skipped: there is nothing to load.
    """
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        base = os.path.basename(path).split(".ko")[0].replace("-", "_")
        by_name[base] = path
    builtin = {
        os.path.basename(p).split(".ko")[0].replace("-", "_")
        for p in (moddir / "modules.builtin").read_text().split()
    }
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key in builtin:
            continue
        if key not in by_name:
            raise FileNotFoundError(f"module {name!r} is neither in modules.dep nor built in")
        visit(by_name[key])
    return order


def _module_bytes(path: Path) -> bytes:
    """Read a module, decompressing ``.ko.xz``/``.ko.zst`` (busybox insmod takes plain ELF)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(
            ["zstd", "-d", "-c", "-q"], input=data, capture_output=True, check=True
        ).stdout
    return data


class Cpio:
    """Minimal writer for the kernel's newc cpio format."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self._ino += 1
        self._out += b"070701" + b"".join(b"%08X" % f for f in fields)
        self._out += name.encode() + b"\0"
        self._out += b"\0" * (-len(self._out) % 4)
        self._out += data
        self._out += b"\0" * (-len(self._out) % 4)

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self._out)


def build_initramfs(moddir: Path, dest_dir: Path) -> Path:
    """Return a cached initramfs for the kernel whose modules are in ``moddir``.

    Args:
        moddir: ``lib/modules/<version>`` of the unpacked kernel (depmod already run).
        dest_dir: where to cache the archive (the kernel's cache entry).

    Raises:
        FileNotFoundError: busybox or a needed module is missing.
    """
    if not _BUSYBOX.is_file():
        raise FileNotFoundError(f"{_BUSYBOX} missing: install busybox-static")
    mods = module_closure(moddir, STAGE1_MODULES)
    init = _INIT.encode()
    busybox = _BUSYBOX.read_bytes()
    h = hashlib.sha256(init + busybox)
    for m in mods:
        h.update(m.encode())
    out = dest_dir / f"initramfs-{h.hexdigest()[:16]}.cpio"
    if out.is_file():
        return out
    cpio = Cpio()
    for d in ("bin", "proc", "sys", "dev", "lower", "rw", "newroot", "modules"):
        cpio.dir(d)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.file("init", init, 0o755)
    names = []
    for rel in mods:
        name = os.path.basename(rel).split(".ko")[0] + ".ko"
        names.append(name)
        cpio.file(f"modules/{name}", _module_bytes(moddir / rel))
    cpio.file("modules.order", ("\n".join(names) + "\n").encode())
    tmp = out.with_suffix(f".{os.getpid()}.tmp")  # several pytest runs may build at once
    tmp.write_bytes(cpio.finish())
    os.replace(tmp, out)
    return out
