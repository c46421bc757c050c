"""udriver.client.resolve: specificity, version, ABI, class-wide, determinism."""

from __future__ import annotations

from udriver.client.resolve import candidates, choose, choose_version
from udriver.modalias import parse_modalias
from udriver.repoformat import IndexEntry, build_pattern_index

DEV = parse_modalias("pci:v00001234d000011E8sv00001AF4sd00001100bc01sc08i02")


def e(driver: str, version: str, pattern: str, abi: tuple[int, int] = (1, 0),
      index: str = "1234", repo: str = "main") -> IndexEntry:
    return IndexEntry(f"udriver-{driver}", driver, version, abi, (pattern,),
                      {"wheel": f"drivers/{index}/{driver}-{version}.whl"}, index, repo)


VD = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
VDS = "pci:v00001234d000011E8sv00001AF4sd00001100bc*sc*i*"
V = "pci:v00001234d*sv*sd*bc*sc*i*"
CLS = "pci:v*d*sv*sd*bc01sc08i02*"


def test_subsystem_beats_device_beats_vendor_beats_class() -> None:
    entries = [e("cls", "9.0", CLS, index="class"), e("ven", "9.0", V), e("dev", "1.0", VD),
               e("sub", "0.1", VDS)]
    idx = build_pattern_index(entries)
    assert [c.entry.driver for c in candidates(DEV, idx)] == ["sub", "dev", "ven", "cls"]
    c = choose(DEV, idx)
    assert c is not None and c.entry.driver == "sub"
    assert str(c.pattern) == VDS


def test_highest_version_of_equal_specificity() -> None:
    idx = build_pattern_index([e("dev", "1.0", VD), e("dev", "1.10", VD), e("dev", "1.9", VD)])
    c = choose(DEV, idx)
    assert c is not None and c.entry.version == "1.10"


def test_incompatible_abi_is_skipped_for_older_version() -> None:
    idx = build_pattern_index([e("dev", "2.0", VD, abi=(1, 5)), e("dev", "1.0", VD)])
    c = choose(DEV, idx, provided=(1, 0))
    assert c is not None and c.entry.version == "1.0"
    assert choose(DEV, idx, provided=(1, 5)).entry.version == "2.0"  # type: ignore[union-attr]


def test_incompatible_specific_driver_falls_back_to_compatible_generic() -> None:
    idx = build_pattern_index([e("sub", "1.0", VDS, abi=(2, 0)), e("cls", "1.0", CLS, index="class")])
    c = choose(DEV, idx)
    assert c is not None and c.entry.driver == "cls"


def test_nothing_compatible_is_none() -> None:
    idx = build_pattern_index([e("dev", "1.0", VD, abi=(2, 0))])
    assert choose(DEV, idx) is None
    [c] = candidates(DEV, idx)
    assert not c.compatible


def test_no_match_is_none() -> None:
    idx = build_pattern_index([e("dev", "1.0", "pci:v00001234d00001111sv*sd*bc*sc*i*")])
    assert choose(DEV, idx) is None


def test_tie_breaks_by_repo_then_name() -> None:
    idx = build_pattern_index([e("b", "1.0", VD, repo="a"), e("a", "1.0", VD, repo="b"),
                               e("a", "1.0", VD, repo="a")])
    assert [(c.entry.repo, c.entry.driver) for c in candidates(DEV, idx)] == [
        ("a", "a"), ("a", "b"), ("b", "a")]


def test_driver_rank_is_its_best_pattern() -> None:
    two = IndexEntry("udriver-x", "x", "1.0", (1, 0), (V, VDS), {"wheel": "drivers/1234/x.whl"},
                     "1234", "main")
    idx = build_pattern_index([two, e("dev", "5.0", VD)])
    [first, second] = candidates(DEV, idx)
    assert first.entry.driver == "x" and str(first.pattern) == VDS
    assert second.entry.driver == "dev"


def test_choose_version() -> None:
    es = [e("dev", "1.0", VD), e("dev", "2.0", VD, abi=(1, 9)), e("dev", "1.5", VD)]
    assert choose_version(es, "dev").version == "1.5"  # type: ignore[union-attr]
    assert choose_version(es, "udriver-dev").version == "1.5"  # type: ignore[union-attr]
    assert choose_version(es, "dev", "2.0").version == "2.0"  # type: ignore[union-attr]
    assert choose_version(es, "dev", "3.0") is None
    assert choose_version(es, "other") is None
