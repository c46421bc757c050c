"""The repository contract: what a udriver repository publishes and a client reads.

Public, shared by the client (`udriver.client`) and the repository server
(`udriver_repo`), so that the two cannot drift apart: one codec, one typed entry, one
set of names. Everything here is pure (bytes and records in, records out; no I/O).
Documented in docs/repoformat.md.

- the index document and its entry (`_entry`): `IndexEntry`, `encode_index`,
  `parse_index`, `entry_from_json`;
- shard naming and the scope rule (`_shards`): `CLASS_INDEX`, `index_names`,
  `shard_name`, `lookup_names`, `index_name`, `index_target`, `in_scope`;
- the device <-> ID-table matcher: `build_pattern_index` (then `PatternIndex.lookup`
  of the device's modalias, `udriver.modalias`);
- name ownership (`_names`): `NAMES_ROLE`, `RESERVED`, `canonical_name`,
  `claimed_names`, `name_target`, `publisher_of`, `owner_problems`.
"""

from __future__ import annotations

from ._entry import FORMAT, IndexEntry, encode_index, entry_from_json, parse_index
from ._names import (
    NAMES_ROLE,
    RESERVED,
    canonical_name,
    claimed_names,
    name_target,
    owner_problems,
    publisher_of,
)
from ._shards import (
    CLASS_INDEX,
    build_pattern_index,
    in_scope,
    index_name,
    index_names,
    index_target,
    lookup_names,
    shard_name,
)

__all__ = [
    "CLASS_INDEX",
    "FORMAT",
    "NAMES_ROLE",
    "RESERVED",
    "IndexEntry",
    "build_pattern_index",
    "canonical_name",
    "claimed_names",
    "encode_index",
    "entry_from_json",
    "in_scope",
    "index_name",
    "index_names",
    "index_target",
    "lookup_names",
    "name_target",
    "owner_problems",
    "parse_index",
    "publisher_of",
    "shard_name",
]
