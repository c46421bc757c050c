"""Names a package exports but imports on first use (PEP 562 module `__getattr__`).

`udriver.client` and `udriver.supervise` list their public names with the private module
that holds each; a command that needs one name does not pay for the imports of the others
(python-tuf for the client, the VFIO and privilege code for the supervisor).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, table: Mapping[str, str], namespace: dict[str, Any]
                 ) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `name` is imported from the module `table`
    names for it (`_x` inside the package, `..x` beside it) and kept in `namespace`, the
    package's globals, so it is looked up once.

    Raises (from the returned function):
        AttributeError: `name` is not in `table`.
    """
    parent = package.rpartition(".")[0]

    def __getattr__(name: str) -> Any:
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = f"{parent}.{mod[2:]}" if mod.startswith("..") else f"{package}.{mod}"
        value = getattr(importlib.import_module(full), name)
        namespace[name] = value
        return value

    return __getattr__
