"""Reading the fields of a JSON record for a validator that lists every problem.

A validator collects every problem before it raises (STYLE.md, after pypa/installer's
`validate_record`): each reader here returns a usable placeholder and records what is
wrong, and the caller raises once with `problems`. Shared by the driver manifest
(`udriver.manifest`) and the index entry (`udriver.repoformat`), which carry the same
identity fields. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from .abi import AbiVersion, parse_abi
from .errors import AbiError

__all__ = ["Fields"]


class Fields:
    """The fields of one JSON object, and the problems found reading them."""

    def __init__(self, obj: Mapping[str, object]) -> None:
        self.obj = obj
        self.problems: list[str] = []
        """Every problem found so far, each naming its field in backticks."""

    def text(self, key: str) -> str:
        """A non-empty string field ("" and a problem if it is not one)."""
        v = self.obj.get(key)
        if not isinstance(v, str) or not v:
            self.problems.append(f"`{key}` must be a non-empty string, got {v!r}")
            return ""
        return v

    def abi(self, key: str = "abi") -> AbiVersion:
        """A `MAJOR.MINOR` ABI field ((0, 0) and a problem if it is not one)."""
        try:
            return parse_abi(str(self.obj.get(key, "")))
        except AbiError as e:
            self.problems.append(f"`{key}`: {e}")
            return (0, 0)

    def patterns(self, key: str = "modaliases") -> list[object]:
        """A non-empty list field of modalias patterns, unparsed ([] and a problem if
        it is not one; the caller parses the items as its rules say)."""
        raw = self.obj.get(key)
        if not isinstance(raw, list) or not raw:
            self.problems.append(f"`{key}` must be a non-empty list of patterns, got {raw!r}")
            return []
        return raw
