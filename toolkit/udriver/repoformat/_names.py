"""Name ownership: the `names/<name>` records and the client's rule over them. Pure.

A driver name decides what runs on a client (the wheel's `udriver.drivers` entry point,
the store's directory, the .deb `udriver-driver-<name>` and its udev rules file). TUF's
delegations (spec 4.5, client workflow 5.6.7) bind a vendor's key to target *paths*,
not to the names inside the files, so the repository records who owns each name as a
signed target `names/<canonical name>` whose `custom` field is `{"owner": "vendor-<x>"}`
(role `names`, delegated `names/*`, with 256 TAP 15 succinct bins).

Rules, in order, before a client uses an index entry:

1. its *publisher* is the delegated role that signed the index it came from; for an
   index signed by a repository role (`class`), it is the entry's own `vendor` field,
   which the repository wrote after checking (`publisher_of`);
2. its canonical driver name and canonical distribution name must each have an owner
   record, and that owner must be the publisher (`owner_problems`);
3. an entry of a repository index without a `vendor` field (published before names
   were owned) only needs an owner record for each name.

Canonical names: lower case, runs of `-`, `_` and `.` folded to `-` (PEP 503), so
`edu_x`, `edu-x` and `Edu.X` are one name, as they are for pip and for the .deb name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["NAMES_ROLE", "RESERVED", "canonical_name", "claimed_names", "name_target",
           "owner_problems", "publisher_of"]

NAMES_ROLE = "names"
"""The role delegated `names/*` by top-level targets; it delegates to the name bins."""
RESERVED = "-reserved-"
"""Owner of a name two vendors published before names were owned: nobody may publish
it until the operator assigns it (never a role name: those start with `vendor-`)."""
_FOLD = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """`name` lower-cased with runs of `-`, `_`, `.` folded to one `-` (PEP 503)."""
    return _FOLD.sub("-", name).lower()


def name_target(name: str) -> str:
    """The TUF target recording the owner of `name` (canonicalised)."""
    return f"{NAMES_ROLE}/{canonical_name(name)}"


def claimed_names(driver: str, package: str) -> list[str]:
    """The canonical names an entry claims: its driver and its distribution name."""
    return sorted({canonical_name(driver), canonical_name(package)})


def publisher_of(signer: str, vendor_field: str) -> str:
    """The role accountable for an entry (rule 1): the signing vendor role, or for an
    index signed by a repository role, the entry's `vendor` field ("" if absent)."""
    return signer if signer.startswith("vendor-") else vendor_field


def owner_problems(publisher: str, owners: Mapping[str, str | None]) -> list[str]:
    """Why an entry published by `publisher` may not be used (rules 2-3); empty: it may.

    Args:
        publisher: from `publisher_of` ("" for a legacy repository-index entry).
        owners: each claimed canonical name -> its recorded owner role, or None.
    """
    out: list[str] = []
    for name, owner in sorted(owners.items()):
        if owner is None:
            out.append(f"the name `{name}` has no owner record in the signed `names` "
                       "metadata")
        elif owner == RESERVED:
            out.append(f"the name `{name}` is reserved until the repository's operator "
                       "assigns it")
        elif publisher and owner != publisher:
            out.append(f"the name `{name}` belongs to {owner!r}, not to {publisher!r}")
    return out
