"""Index targets as the repository writes them (`udriver.repoformat` codec and
`udriver_repo._plan.merge_entry`): deterministic encoding, parsing, merging."""

from __future__ import annotations

import json

import pytest
from udriver_repo import ConflictError
from udriver_repo._plan import merge_entry

from udriver.errors import RepositoryError
from udriver.repoformat import IndexEntry, encode_index, parse_index


def _e(version="0.1.0", files=None, mods=("pci:v00001234d000011E8sv*sd*bc*sc*i*",)):
    return IndexEntry("udriver-edu", "edu", version, (1, 0), tuple(mods),
                      files or {"wheel": f"drivers/1234/w-{version}.whl"})


def test_encoding_is_sorted_and_deterministic():
    a = encode_index("1234", [_e("0.2.0"), _e("0.1.0")])
    b = encode_index("1234", [_e("0.1.0"), _e("0.2.0")])
    assert a == b
    obj = json.loads(a)
    assert list(obj) == sorted(obj) and obj["format"] == 1 and obj["index"] == "1234"
    assert [d["version"] for d in obj["drivers"]] == ["0.1.0", "0.2.0"]


def test_roundtrip():
    data = encode_index("class", [_e()])
    [back] = parse_index(data, "class")
    assert back.index == "class" and back.to_json() == _e().to_json()


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"format": 2, "index": "1234", "drivers": []}',
                                  b'{"format": 1, "index": "1234", "drivers": {}}'])
def test_decode_rejects_malformed(data):
    with pytest.raises(RepositoryError, match="index/1234.json"):
        parse_index(data, "1234")


def test_decode_rejects_index_for_another_name():
    with pytest.raises(RepositoryError, match="`index` must be '8086'"):
        parse_index(encode_index("1234", []), "8086")


def test_merge_new_version_appends():
    out, changed = merge_entry([_e("0.1.0")], _e("0.2.0"))
    assert changed and [d.version for d in out] == ["0.1.0", "0.2.0"]


def test_merge_deb_into_existing_wheel_entry():
    deb = {"deb": "drivers/1234/d.deb"}
    out, changed = merge_entry([_e()], _e(files=deb))
    assert changed and out[0].files == {"wheel": "drivers/1234/w-0.1.0.whl", **deb}


def test_merge_same_entry_is_unchanged():
    out, changed = merge_entry([_e()], _e())
    assert not changed and out == [_e()]


def test_merge_same_version_with_other_id_table_conflicts():
    with pytest.raises(ConflictError, match="different `modaliases`"):
        merge_entry([_e()], _e(mods=("pci:v00001234d00000001sv*sd*bc*sc*i*",)))
