"""The driver wheels every kernel runs: built ONCE per pytest session, hashes printed up front.

Issue 12's claim is "the same binary on every kernel". So the VM tests never rebuild a driver per
kernel or per test module: :func:`build_session_wheels` runs ``udriver.toolchain.build_project``
once for ``examples/edu`` (pure Python, ``py3-none-any``), ``examples/edu-c``, ``drivers/nvme``
and ``drivers/e1000e`` (C through the udriver ABI table, ``cp311-abi3-manylinux``), and the
conftest prints each wheel's sha256 -- plus
the sha256 of ``udriver/_native.abi3.so``, the extension every guest loads from the host's
read-only root -- before the first test runs. Guests see exactly these files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from ._paths import checkout_root

__all__ = ["DRIVERS", "SessionWheels", "build_session_wheels", "build_wheel", "sha256_file"]

ROOT = checkout_root()
DRIVERS = {
    "edu": ROOT / "examples" / "edu",
    "edu_c": ROOT / "examples" / "edu-c",
    "nvme": ROOT / "drivers" / "nvme",
    "e1000e": ROOT / "drivers" / "e1000e",
}
"""Driver name -> project directory of the drivers built once per session (the kernel-bridge
tests run the NVMe and e1000e wheels built here on every kernel)."""

_EPOCH = "1700000000"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of ``path``."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class SessionWheels:
    """The wheels built for this session."""

    wheels: dict[str, Path]
    """Driver name (``edu``, ``edu_c``, ``nvme``, ``e1000e``) -> built wheel."""
    native: Path
    """The udriver native extension the guests import through the host root."""

    def lines(self) -> list[str]:
        """``sha256  name`` lines, as printed once at the start of the session."""
        rows = [(sha256_file(p), p.name) for p in self.wheels.values()]
        rows.append((sha256_file(self.native), f"udriver/{self.native.name}"))
        return [f"{digest}  {name}" for digest, name in rows]


def build_wheel(name: str, out: Path) -> Path:
    """Build driver ``name`` of :data:`DRIVERS` into ``out`` (no .deb) and return the wheel.

    ``SOURCE_DATE_EPOCH`` is fixed while building, so two builds of the same tree are
    byte-identical.

    Raises:
        KeyError: ``name`` is not in :data:`DRIVERS`.
        udriver.errors.UdriverError: the build failed (the toolchain's own error).
    """
    from udriver.toolchain import build_project  # imported late: only VM sessions need it

    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = _EPOCH
    try:
        return build_project(DRIVERS[name], out_dir=out, deb=False).wheel
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def build_session_wheels(out: Path) -> SessionWheels:
    """Build every driver in :data:`DRIVERS` into ``out/<driver>/`` with :func:`build_wheel`.

    Raises:
        udriver.errors.UdriverError: a build failed (the toolchain's own error).
        FileNotFoundError: the native extension is not built (``pip install -e .``).
    """
    import udriver

    native = Path(udriver.__file__).parent / "_native.abi3.so"
    if not native.is_file():
        raise FileNotFoundError(f"{native} missing: run `pip install -e .` to build it")
    wheels = {name: build_wheel(name, out / name) for name in DRIVERS}
    return SessionWheels(wheels, native)
