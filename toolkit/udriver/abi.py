"""The udriver ABI version and the one compatibility rule.

The C ABI (`native/udriver.h`) and the Python runtime (`udriver.runtime`) share one
major.minor version. The function table is append-only, so a driver built against
1.N runs on any runtime 1.M with M >= N. Every other combination is refused before
the driver starts. This module is pure: no I/O.
"""

from __future__ import annotations

import re

from .errors import AbiError

__all__ = ["ABI_VERSION", "AbiVersion", "check_abi", "format_abi", "is_compatible", "parse_abi"]

AbiVersion = tuple[int, int]

#: The ABI this runtime provides. Keep equal to UDRIVER_ABI_MAJOR/MINOR in native/udriver.h.
ABI_VERSION: AbiVersion = (1, 1)

_ABI_RE = re.compile(r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$")


def parse_abi(text: str) -> AbiVersion:
    """Parse "MAJOR.MINOR".

    Raises:
        AbiError: `text` is not two dot-separated decimal numbers.
    """
    m = _ABI_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise AbiError(f"Invalid ABI version (expected MAJOR.MINOR, e.g. \"1.0\"): {text!r}")
    return int(m.group(1)), int(m.group(2))


def format_abi(version: AbiVersion) -> str:
    return f"{version[0]}.{version[1]}"


def is_compatible(required: AbiVersion, provided: AbiVersion = ABI_VERSION) -> bool:
    """True when a driver built against `required` may run on a runtime `provided`."""
    return required[0] == provided[0] and required[1] <= provided[1]


def check_abi(required: AbiVersion, provided: AbiVersion = ABI_VERSION) -> None:
    """Refuse a driver whose ABI the runtime does not provide.

    Raises:
        AbiError: different major, or a newer minor than the runtime's.
    """
    if is_compatible(required, provided):
        return
    req, prov = format_abi(required), format_abi(provided)
    if required[0] != provided[0]:
        why = "the major versions differ"
    else:
        why = "the driver needs a newer minor version"
    err = AbiError(f"driver needs udriver ABI {req}, but this runtime provides ABI {prov} ({why})")
    err.hint = f"install a udriver runtime that provides ABI {required[0]}.{required[1]} or later {required[0]}.x"
    raise err
