"""The `Driver` base class.

A driver is a subclass, published as an entry point in the `udriver.drivers` group.
The runner (`udriver run`, `runner.py`) calls, in this order:

1. class checks: `abi` compatible with the runtime (udriver.abi.check_abi), `ids` match
   the device's modalias;
2. `Driver(options)`, then `probe(device)`;
3. `await run()` (optional main task) while delivering interrupts to `on_interrupt`;
4. on SIGTERM/SIGINT (or after `run()` with `--once`): `remove()`, then the device is closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from ..errors import ManifestError
from ..modalias import Modalias, Pattern, PciId, parse_pattern

if TYPE_CHECKING:
    from ._bridge import Bridge
    from ._device import Device

__all__ = ["Driver"]


class Driver:
    """Base class of every udriver driver."""

    ids: ClassVar[Sequence[str | PciId]] = ()
    """Devices this driver supports: modalias patterns or `PciId`s. Must agree with
    `[tool.udriver] modaliases` in the driver's pyproject.toml."""
    abi: ClassVar[str] = "1.0"
    """The udriver ABI ("MAJOR.MINOR") the driver was written against."""

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options: dict[str, str] = dict(options or {})
        """`--option KEY=VALUE` pairs from the command line."""
        self.device: Device | None = None
        """The probed device."""
        self.bridge: Bridge | None = None
        """ABI 1.1: the channel to the privileged parent when the manifest declares a
        kernel bridge (`[tool.udriver] bridge`) and the driver runs under one (`udriver
        supervise`, `udriver@.service`, `udriver run` as root); None otherwise. Set before
        `probe`; ask it for the block device or network interface once the device's
        geometry or MAC is known (`Bridge.block`, `Bridge.net`)."""

    @classmethod
    def patterns(cls) -> list[Pattern]:
        """`ids` as parsed patterns.

        Raises:
            ManifestError: an entry is neither a valid pattern string nor a PciId.
        """
        out = []
        for entry in cls.ids:
            if isinstance(entry, PciId):
                out.append(entry.to_pattern())
            elif isinstance(entry, str):
                out.append(parse_pattern(entry))
            else:
                raise ManifestError(f"{cls.__name__}.ids: expected a modalias string or PciId, "
                                    f"got {entry!r}")
        return out

    @classmethod
    def supports(cls, alias: Modalias) -> bool:
        """True if any of `ids` matches `alias`."""
        return any(p.matches(alias) for p in cls.patterns())

    def probe(self, device: Device) -> None:
        """Take over `device`: check it, set it up, enable interrupts. Raise to refuse."""
        self.device = device

    async def run(self) -> None:
        """The driver's main task, run in the event loop after `probe`. Optional."""

    def on_interrupt(self, vector: int, count: int) -> None:
        """Called in the event loop when `vector` fired `count` times (INTx is unmasked
        after this returns)."""

    def remove(self) -> None:
        """Quiesce the device: stop DMA and interrupts. The runner closes it afterwards."""
