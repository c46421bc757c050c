"""`udriver install NAME<specifiers>` takes PEP 440 specifiers as pip does (issue 13:
`install 'acme>=0.1'` said "not found", `install acme==9.9` hinted at a PCI ID search)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EDU_DEV, Published
from udriver.client import Client
from udriver.errors import InstallError
from udriver.modalias import parse_modalias

DEV = {"0000:00:04.0": parse_modalias(EDU_DEV)}


@pytest.mark.parametrize("spec,version", [("edu>=0.1", "0.2.0"), ("edu<0.2", "0.1.0"),
                                          ("edu~=0.1.0", "0.1.0"), ("edu==0.2.*", "0.2.0"),
                                          ("edu!=0.2.0", "0.1.0"), ("udriver-edu>0.1", "0.2.0"),
                                          ("edu == 0.1.0", "0.1.0")])
def test_specifiers(configured: Published, env: Path, spec: str, version: str) -> None:
    configured.publish_edu("0.2.0")
    assert Client().find(spec, DEV).version == version


def test_no_matching_version_names_the_published_ones(configured: Published, env: Path) -> None:
    configured.publish_edu("0.2.0")
    with pytest.raises(InstallError) as e:
        Client().find("edu>=9", DEV)
    assert str(e.value) == "cannot install 'edu>=9': no published version matches '>=9'"
    assert e.value.hint == "published versions: 0.1.0, 0.2.0"


@pytest.mark.parametrize("spec", ["edu[extra]", "edu; python_version>'3'", "edu @ http://x/",
                                  "edu==", "=edu", "edu>>1"])
def test_malformed_specs(configured: Published, env: Path, spec: str) -> None:
    with pytest.raises(InstallError, match="Invalid driver specification|do not apply"):
        Client().find(spec, DEV)
