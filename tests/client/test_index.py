"""udriver.repoformat (client side): parsing, rejection paths, scope rule."""

from __future__ import annotations

import json

import pytest

from udriver.errors import RepositoryError
from udriver.modalias import parse_modalias, parse_pattern
from udriver.repoformat import (
    build_pattern_index,
    in_scope,
    index_target,
    lookup_names,
    parse_index,
)

GOOD = {"package": "udriver-edu", "driver": "edu", "version": "0.1.0", "abi": "1.0",
        "modaliases": ["pci:v00001234d000011e8sv*sd*bc*sc*i*"],
        "files": {"wheel": "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"}}


def doc(*drivers: object, index: str = "1234", fmt: object = 1) -> bytes:
    return json.dumps({"format": fmt, "index": index, "drivers": list(drivers)}).encode()


def test_parse_good_canonicalises_patterns() -> None:
    [e] = parse_index(doc(GOOD), "1234", "main")
    assert e.modaliases == ("pci:v00001234d000011E8sv*sd*bc*sc*i*",)
    assert (e.driver, e.version, e.abi, e.repo, e.index) == ("edu", "0.1.0", (1, 0), "main", "1234")
    assert e.files == {"wheel": "drivers/1234/udriver_edu-0.1.0-py3-none-any.whl"}


def test_index_target_names() -> None:
    assert index_target(0x1234) == "index/1234.json"
    assert index_target(0xABCD) == "index/abcd.json"
    assert index_target(None) == "index/class.json"
    assert index_target("1234/8") == "index/1234/8.json"


def test_lookup_names_for_a_device_a_vendor_and_class() -> None:
    assert lookup_names(0x1234, 0x11E8) == ["1234/8", "1234/any", "1234"]
    assert lookup_names(0x1234) == [f"1234/{d:x}" for d in range(16)] + ["1234/any", "1234"]
    assert lookup_names(None) == ["class"]


@pytest.mark.parametrize("data,msg", [
    (b"{not json", "not valid JSON"),
    (b"[]", "expected a JSON object, got list"),
    (doc(GOOD, fmt=2), "`format` must be 1, got 2"),
    (doc(GOOD, index="5678"), "`index` must be '1234', got '5678'"),
    (json.dumps({"format": 1, "index": "1234", "drivers": {}}).encode(), "`drivers` must be a list"),
    (doc("x"), "`drivers[0]` must be an object"),
])
def test_document_rejections(data: bytes, msg: str) -> None:
    with pytest.raises(RepositoryError) as ei:
        parse_index(data, "1234")
    assert msg in str(ei.value)
    assert str(ei.value).startswith("index/1234.json: ")


@pytest.mark.parametrize("field,value,msg", [
    ("package", "", "`package` must be a non-empty string, got ''"),
    ("driver", 3, "`driver` must be a non-empty string, got 3"),
    ("version", "one", "`version` is not a PEP 440 version: 'one'"),
    ("abi", "1", "`abi`: Invalid ABI version"),
    ("modaliases", [], "`modaliases` must be a non-empty list"),
    ("modaliases", ["pci:v1234"], "`modaliases`: Invalid modalias pattern"),
    ("files", {}, "`files` must be an object with `wheel` and/or `deb`"),
    ("files", {"rpm": "drivers/1234/x.rpm"}, "unknown kind 'rpm'"),
    ("files", {"wheel": "../../etc/passwd"}, "`files.wheel` must be a target under drivers/"),
    ("files", {"wheel": "drivers/1234/../x.whl"}, "`files.wheel` must be a target under drivers/"),
])
def test_entry_rejections(field: str, value: object, msg: str) -> None:
    bad = dict(GOOD, **{field: value})
    with pytest.raises(RepositoryError) as ei:
        parse_index(doc(bad), "1234")
    assert "`drivers[0]`" in str(ei.value) and msg in str(ei.value)


def test_entry_collects_every_problem() -> None:
    bad = dict(GOOD, package="", version="x")
    with pytest.raises(RepositoryError) as ei:
        parse_index(doc(bad), "1234")
    assert "`package`" in str(ei.value) and "`version`" in str(ei.value)


def test_scope_vendor_index_only_indexes_own_vendor() -> None:
    # a 1234 index claiming a 10de device and a class-wide pattern: neither is matchable
    e = dict(GOOD, modaliases=["pci:v00001234d000011E8sv*sd*bc*sc*i*",
                               "pci:v000010DEd00002330sv*sd*bc*sc*i*",
                               "pci:v*d*sv*sd*bc01sc08i02*"])
    idx = build_pattern_index(parse_index(doc(e), "1234"))
    assert len(idx) == 1
    assert idx.lookup(parse_modalias("pci:v000010DEd00002330sv000010DEsd000016C1bc03sc02i00")) == []
    assert idx.lookup(parse_modalias("pci:v00008086d00000001sv00000000sd00000000bc01sc08i02")) == []
    assert len(idx.lookup(parse_modalias("pci:v00001234d000011E8sv00000000sd00000000bc00sc00i00"))) == 1


def test_scope_class_index_only_indexes_class_wide() -> None:
    assert in_scope(parse_pattern("pci:v*d*sv*sd*bc01sc08i02*"), "class")
    assert not in_scope(parse_pattern("pci:v00001234d*sv*sd*bc01sc08i02*"), "class")
    assert in_scope(parse_pattern("pci:v00001234d*sv*sd*bc*sc*i*"), "1234")
    assert not in_scope(parse_pattern("pci:v00001235d*sv*sd*bc*sc*i*"), "1234")
    # A shard is scoped by its vendor part.
    assert in_scope(parse_pattern("pci:v00001234d000011E8sv*sd*bc*sc*i*"), "1234/8")
    assert not in_scope(parse_pattern("pci:v00001235d000011E8sv*sd*bc*sc*i*"), "1234/8")
    assert not in_scope(parse_pattern("pci:v*d*sv*sd*bc01sc08i02*"), "1234/any")
