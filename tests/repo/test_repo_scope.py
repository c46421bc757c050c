"""The pure vendor-scope check (`udriver_repo._scope`): one test per rejection path."""

from __future__ import annotations

import pytest
from udriver_repo import ScopeError, Vendor
from udriver_repo._scope import check_scope, scope_problems

from udriver.repoformat import index_names

ACME = Vendor("acme", (0x1AF4, 0x8086))
CLASSY = Vendor("classy", (0x1B36,), class_grant=True)
NVME = "pci:v*d*sv*sd*bc01sc08i02*"


def test_owned_vendor_is_allowed():
    assert scope_problems(ACME, ["pci:v00001AF4d00001000sv*sd*bc*sc*i*",
                                 "pci:v00008086d*sv*sd*bc*sc*i*"]) == []


def test_other_vendor_is_rejected_with_the_id_named():
    with pytest.raises(ScopeError) as e:
        check_scope(ACME, ["pci:v00001234d000011E8sv*sd*bc*sc*i*"], what="x.whl")
    assert str(e.value) == (
        "x.whl: outside the scope of vendor 'acme' (owns 1af4, 8086): pattern "
        "'pci:v00001234d000011E8sv*sd*bc*sc*i*' claims PCI vendor 1234, which vendor "
        "'acme' does not own")


def test_one_foreign_pattern_among_owned_ones_is_rejected():
    with pytest.raises(ScopeError, match="claims PCI vendor 1234"):
        check_scope(ACME, ["pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001234d*sv*sd*bc*sc*i*"])


def test_class_wide_without_grant_is_rejected():
    with pytest.raises(ScopeError, match="needs a class grant"):
        check_scope(ACME, [NVME])


def test_class_wide_with_grant_is_allowed():
    check_scope(CLASSY, [NVME, "pci:v00001B36d*sv*sd*bc*sc*i*"])


def test_grant_does_not_extend_to_other_vendors():
    with pytest.raises(ScopeError, match="claims PCI vendor 8086"):
        check_scope(CLASSY, ["pci:v00008086d*sv*sd*bc*sc*i*"])


def test_revoked_vendor_is_rejected():
    with pytest.raises(ScopeError, match="is revoked"):
        check_scope(Vendor("acme", (0x1AF4,), revoked=True), ["pci:v00001AF4d*sv*sd*bc*sc*i*"])


def test_every_problem_is_listed():
    problems = scope_problems(ACME, [NVME, "pci:v00001234d*sv*sd*bc*sc*i*",
                                     "pci:v0000ABCDd*sv*sd*bc*sc*i*"])
    assert len(problems) == 3


def test_subsystem_vendor_does_not_count_as_ownership():
    # vendor `*` with a subvendor pin is still class-wide: the device vendor is unpinned.
    assert scope_problems(ACME, ["pci:v*d*sv00001AF4sd*bc*sc*i*"]) == [
        ("class-wide pattern 'pci:v*d*sv00001AF4sd*bc*sc*i*' needs a class grant, which "
         "vendor 'acme' does not have")]


@pytest.mark.parametrize("patterns,want", [
    (["pci:v00001AF4d*sv*sd*bc*sc*i*"], ["1af4/any"]),
    (["pci:v00008086d*sv*sd*bc*sc*i*", "pci:v00001AF4d00000001sv*sd*bc*sc*i*"],
     ["1af4/1", "8086/any"]),
    ([NVME, "pci:v00001B36d*sv*sd*bc*sc*i*"], ["1b36/any", "class"]),
    # Shards by the device ID's last hex digit; several devices may share one.
    (["pci:v00001234d000011E8sv*sd*bc*sc*i*", "pci:v00001234d000010F8sv*sd*bc*sc*i*",
      "pci:v00001234d0000ABCDsv00001AF4sd*bc*sc*i*"], ["1234/8", "1234/d"]),
])
def test_index_names(patterns, want):
    assert index_names(patterns) == want
