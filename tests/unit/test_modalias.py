"""udriver.modalias: the kernel's modalias grammar, matching and indexed lookup."""

from __future__ import annotations

import fnmatch
import itertools
import random

import pytest

from udriver.errors import ManifestError
from udriver.modalias import (
    Modalias,
    PatternIndex,
    PciId,
    normalise_patterns,
    parse_modalias,
    parse_pattern,
)

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
H100 = "pci:v000010DEd00002330sv000010DEsd000016C1bc03sc02i00"


def test_parse_modalias_roundtrip() -> None:
    m = parse_modalias(H100)
    assert (m.vendor, m.device, m.subvendor, m.subdevice) == (0x10DE, 0x2330, 0x10DE, 0x16C1)
    assert (m.base_class, m.subclass, m.prog_if) == (3, 2, 0)
    assert str(m) == H100


def test_parse_modalias_lowercase_hex() -> None:
    assert str(parse_modalias(H100.lower().replace("pci:", "pci:"))) == H100


def test_modalias_from_ids_matches_sysfs_string() -> None:
    m = Modalias.from_ids(0x1AF4, 0x1041, 0x1AF4, 0x1041, 0x020000)
    assert str(m) == "pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00"


@pytest.mark.parametrize("bad", ["", "pci:", "usb:v1234p5678", H100[:-1], H100 + "0"])
def test_parse_modalias_rejects(bad: str) -> None:
    with pytest.raises(ManifestError, match="Invalid PCI modalias"):
        parse_modalias(bad)


def test_pattern_canonical_form_is_file2alias() -> None:
    assert str(parse_pattern(EDU.lower().replace("pci:", "pci:"))) == EDU
    assert str(parse_pattern("pci:v*d*sv*sd*bc01sc08i02")) == "pci:v*d*sv*sd*bc01sc08i02*"
    assert str(PciId(0x1234, 0x11E8).to_pattern()) == EDU
    assert str(PciId(None, class_code=0x010802).to_pattern()) == "pci:v*d*sv*sd*bc01sc08i02*"
    assert str(PciId(None, class_code=0x010800, class_mask=0xFFFF00).to_pattern()) == (
        "pci:v*d*sv*sd*bc01sc08i*"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("usb:v1234", "must start with `pci:`"),
        ("pci:v1234d*sv*sd*bc*sc*i*", "field `v` \\(vendor\\) must be 8 hex digits"),
        ("pci:v00001234d0000XXXXsv*sd*bc*sc*i*", "field `d` \\(device\\)"),
        ("pci:v00001234d000011E8sv*sd*bc*sc*", "expected field `i`"),
        ("pci:v00001234d000011E8sv*sd*bc*sc*i", "field `i` \\(prog-if\\) must be 2 hex digits"),
        ("pci:v00001234d000011E8sv*sd*bc*sc*i*x", "unexpected trailing text 'x'"),
        ("pci:v00011234d000011E8sv*sd*bc*sc*i*", "16-bit PCI ID"),
        ("pci:v00001234d000011E8sv*sd*bc1sc*i*", "field `bc` \\(base class\\)"),
    ],
)
def test_parse_pattern_rejects_with_field(bad: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_pattern(bad)


def test_parse_pattern_rejects_non_string() -> None:
    with pytest.raises(ManifestError, match="expected a string"):
        parse_pattern(0x1234)


def test_normalise_patterns_reports_every_problem() -> None:
    with pytest.raises(ManifestError) as ei:
        normalise_patterns([EDU, "pci:bad", EDU.lower(), "pci:v1d*"])
    text = str(ei.value)
    assert "entry 1:" in text and "entry 3:" in text
    assert "entry 2: duplicate modalias pattern" in text and "same as entry 0" in text


def test_specificity_order() -> None:
    full = parse_pattern("pci:v00001234d000011E8sv00001AF4sd00000001bc*sc*i*")
    vd = parse_pattern(EDU)
    v = parse_pattern("pci:v00001234d*sv*sd*bc*sc*i*")
    cls = parse_pattern("pci:v*d*sv*sd*bc00sc*i*")
    assert full.specificity > vd.specificity > v.specificity > cls.specificity
    assert cls.is_class_wide and not v.is_class_wide


_FIELD_VALUES = {
    "v": ["*", "00001234", "00008086"],
    "d": ["*", "000011E8", "00000D57"],
    "sv": ["*", "00000000", "00001AF4"],
    "sd": ["*", "00000000", "00001100"],
    "bc": ["*", "00", "06"],
    "sc": ["*", "00", "FF"],
    "i": ["*", "00"],
}


def _all_patterns() -> list[str]:
    names = list(_FIELD_VALUES)
    out = []
    for combo in itertools.product(*(_FIELD_VALUES[n] for n in names)):
        out.append("pci:" + "".join(n + v for n, v in zip(names, combo)) + "*")
    return out


def test_matching_agrees_with_fnmatch_exhaustively() -> None:
    """Our field matcher must agree with the kernel/modprobe fnmatch rule on every combination."""
    patterns = _all_patterns()
    aliases = [
        "pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00",
        "pci:v00008086d00000D57sv00000000sd00000000bc06sc00i00",
        "pci:v00001234d00000D57sv00000000sd00001100bc06scFFi00",
    ]
    for text in aliases:
        alias = parse_modalias(text)
        for p in patterns:
            expected = fnmatch.fnmatchcase(text, p)
            assert parse_pattern(p).matches(alias) is expected, (p, text)
            # case-insensitive hex: a lower-case pattern matches the same devices
            assert parse_pattern(p.lower()).matches(alias) is expected


def test_index_lookup_equals_full_scan() -> None:
    rng = random.Random(7)
    patterns = _all_patterns()
    index: PatternIndex[int] = PatternIndex()
    for i, p in enumerate(patterns):
        index.add(parse_pattern(p), i)
    assert len(index) == len(patterns)
    for _ in range(200):
        text = str(Modalias(
            rng.choice([0x1234, 0x8086, 0x10DE]), rng.choice([0x11E8, 0x0D57, 0x2330]),
            rng.choice([0, 0x1AF4]), rng.choice([0, 0x1100]), rng.choice([0, 6, 3]),
            rng.choice([0, 0xFF]), rng.choice([0, 1]),
        ))
        got = sorted(payload for _, payload in index.lookup(parse_modalias(text)))
        want = sorted(i for i, p in enumerate(patterns) if fnmatch.fnmatchcase(text, p))
        assert got == want, text


def test_index_lookup_most_specific_first() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add(parse_pattern("pci:v*d*sv*sd*bc00sc*i*"), "class")
    index.add(parse_pattern("pci:v00001234d*sv*sd*bc*sc*i*"), "vendor")
    index.add(parse_pattern(EDU), "device")
    index.add(parse_pattern("pci:v00001234d000011E8sv00001AF4sd00001100bc*sc*i*"), "subsystem")
    alias = parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc00scFFi00")
    assert [p for _, p in index.lookup(alias)] == ["subsystem", "device", "vendor", "class"]
