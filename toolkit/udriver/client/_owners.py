"""Name ownership on the client: may this role's index list a driver of this name? Pure.

A repository records the owner of every driver and distribution name as a signed
target `names/<canonical name>` whose `custom` field is `{"owner": "vendor-<x>"}`
(delegated `names/*` -> `names` -> 256 TAP 15 succinct bins; see the repository's
`_owners` module). TUF's delegations (spec 4.5, client workflow 5.6.7) prove which
role signed an index; they do not stop vendor B from signing, under its own paths,
an index entry named after vendor A's driver. So before an entry is used:

1. its *publisher* is the delegated role that signed the index it came from (found by
   the same preorder walk as client workflow 5.6.7.2); for an index signed by a
   repository role (`class`, whose entries a vendor with a class grant publishes), it
   is the entry's own `vendor` field, which the repository wrote after checking;
2. both its canonical driver name and its canonical distribution name must have an
   owner record, and that owner must be the publisher;
3. an entry of a repository index without a `vendor` field (published before names
   were owned) only needs an owner record for each name.

A repository whose top-level targets delegates no `names` role predates ownership:
its entries are used as before (the client cannot check what was never signed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["canonical_name", "claimed_names", "owner_problems", "publisher_of"]

_FOLD = re.compile(r"[-_.]+")
_RESERVED = "-reserved-"  # a name two vendors published before names were owned


def canonical_name(name: str) -> str:
    """`name` lower-cased with runs of `-`, `_`, `.` folded to one `-` (PEP 503)."""
    return _FOLD.sub("-", name).lower()


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
        elif owner == _RESERVED:
            out.append(f"the name `{name}` is reserved until the repository's operator "
                       "assigns it")
        elif publisher and owner != publisher:
            out.append(f"the name `{name}` belongs to {owner!r}, not to {publisher!r}")
    return out
