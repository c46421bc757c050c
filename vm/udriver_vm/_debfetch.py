"""Debian packages for the guest kernels: apt look-ups, downloads, and the vmlinux inside.

The steps :mod:`kernels` runs per kernel, each a plain function over apt's command-line
tools (``apt-cache``, ``apt-get download``, ``dpkg-deb``) and the bzImage format:

* :func:`debian_mirror` reads the mirror URI from deb822 sources (``sources.list(5)``).
* :func:`ensure_backports` writes the ``bookworm-backports`` source file 6.12 comes from.
* :func:`resolve` names the versioned image package behind ``linux-image-amd64``.
* :func:`download` fetches one .deb (refreshing the lists once if the mirror moved on).
* :func:`extract_vmlinux` finds the compressed ELF payload in a bzImage, as the kernel's
  ``scripts/extract-vmlinux`` does.

Every failure is a :class:`KernelFetchError` naming the command and its stderr.
"""

from __future__ import annotations

import logging
import lzma
import re
import subprocess
from pathlib import Path

from ._errors import KernelFetchError

__all__ = [
    "BACKPORTS",
    "deb_version",
    "debian_mirror",
    "download",
    "ensure_backports",
    "extract_vmlinux",
    "resolve",
    "run",
]

_log = logging.getLogger("udriver.vm.kernels")

BACKPORTS = "bookworm-backports"
"""The suite the 6.12 kernel comes from."""
_BACKPORTS_LIST = Path("/etc/apt/sources.list.d/udriver-bookworm-backports.sources")
_DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")

# --- apt helpers -----------------------------------------------------------------------------


def run(argv: list[str], *, cwd: Path | None = None) -> str:
    _log.info("+ %s", " ".join(argv))
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KernelFetchError(
            f"`{' '.join(argv)}` failed with rc {proc.returncode}: {proc.stderr.strip()[-800:]}"
        )
    return proc.stdout


def debian_mirror(sources: Path = _DEBIAN_SOURCES) -> str:
    """Read the main Debian mirror URI (the stanza serving ``bookworm``) from deb822 sources."""
    try:
        text = sources.read_text()
    except OSError as e:
        raise KernelFetchError(f"cannot read {sources} to find the mirror: {e}") from e
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                fields[m.group(1).lower()] = m.group(2).strip()
        if "bookworm" in fields.get("suites", "").split() and fields.get("uris"):
            return fields["uris"].split()[0]
    raise KernelFetchError(f"no stanza with `Suites: bookworm` and `URIs:` in {sources}")


def ensure_backports() -> bool:
    """Write the bookworm-backports source file if missing; return True if it was written."""
    mirror = debian_mirror()
    want = (
        "# Written by udriver vm/udriver_vm/kernels.py for the 6.12 guest kernel.\n"
        f"Types: deb\nURIs: {mirror}\nSuites: {BACKPORTS}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    if _BACKPORTS_LIST.exists() and _BACKPORTS_LIST.read_text() == want:
        return False
    _BACKPORTS_LIST.write_text(want)
    return True


def resolve(name: str) -> str:
    """Resolve the versioned image package behind ``linux-image-amd64`` for kernel ``name``."""
    argv = ["apt-cache"]
    if name == "6.12":
        argv += ["-t", BACKPORTS]
    out = run(argv + ["depends", "linux-image-amd64"])
    for m in re.finditer(r"Depends:\s*(linux-image-[0-9][^\s]*)", out):
        pkg = m.group(1)
        if pkg.startswith((f"linux-image-{name}.", f"linux-image-{name}-")):
            return pkg
    raise KernelFetchError(f"`linux-image-amd64` does not resolve to a {name} kernel: {out!r}")


def download(pkg: str, dest: Path, release: str | None) -> Path:
    """``apt-get download`` ``pkg`` into ``dest`` and return the .deb path."""
    target = f"{pkg}/{release}" if release else pkg
    for f in dest.glob("*.deb"):
        f.unlink()
    try:
        run(["apt-get", "download", "-q", target], cwd=dest)
    except KernelFetchError:
        # The lists may name a version the mirror already dropped: refresh once and retry.
        run(["apt-get", "update", "-q"])
        run(["apt-get", "download", "-q", target], cwd=dest)
    debs = list(dest.glob("*.deb"))
    if len(debs) != 1:
        raise KernelFetchError(f"apt-get download {target} left {len(debs)} .deb files in {dest}")
    return debs[0]


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


# --- vmlinux extraction ----------------------------------------------------------------------

_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ELF_MAGIC = b"\x7fELF"


def _decompress_at(blob: bytes, off: int, kind: str) -> bytes | None:
    try:
        if kind == "xz":
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            return d.decompress(blob[off:])
        proc = subprocess.run(
            ["zstd", "-d", "-c", "-q"], input=blob[off:], capture_output=True, check=False
        )
        # zstd complains about the trailing bzImage bytes but still writes the frame.
        return proc.stdout or None
    except (lzma.LZMAError, OSError):
        return None


def extract_vmlinux(bzimage: Path) -> bytes:
    """Find the compressed payload in a bzImage and return the ELF ``vmlinux`` inside.

    Same approach as the kernel's ``scripts/extract-vmlinux``: try each xz (6.1) or zstd (6.12)
    magic in turn until one decompresses to an ELF image.

    Raises:
        KernelFetchError: no payload decompresses to an ELF file.
    """
    blob = bzimage.read_bytes()
    for magic, kind in ((_XZ_MAGIC, "xz"), (_ZSTD_MAGIC, "zstd")):
        off = blob.find(magic)
        while off != -1:
            out = _decompress_at(blob, off, kind)
            if out and out.startswith(_ELF_MAGIC):
                return out
            off = blob.find(magic, off + 1)
    raise KernelFetchError(f"no xz or zstd payload in {bzimage} decompresses to an ELF vmlinux")
