"""udriver.manifest: the ID table a built driver carries."""

from __future__ import annotations

import json

import pytest

from udriver.errors import ManifestError
from udriver.manifest import DriverManifest

EDU = "pci:v00001234d000011E8sv*sd*bc*sc*i*"


def _manifest(**kw: object) -> DriverManifest:
    base: dict[str, object] = {"package": "udriver-edu", "version": "0.1.0", "driver": "edu",
                               "entry_point": "udriver_edu:EduDriver", "abi": (1, 0),
                               "modaliases": (EDU,)}
    base.update(kw)
    return DriverManifest(**base)  # type: ignore[arg-type]


def test_roundtrip_and_determinism() -> None:
    m = _manifest()
    data = m.to_json()
    assert DriverManifest.from_json(data) == m
    assert data == _manifest().to_json()
    assert json.loads(data)["abi"] == "1.0"


def test_canonicalises_patterns() -> None:
    obj = json.loads(_manifest().to_json())
    obj["modaliases"] = [EDU.lower(), "pci:v*d*sv*sd*bc01sc08i02"]
    m = DriverManifest.from_dict(obj)
    assert m.modaliases == tuple(sorted((EDU, "pci:v*d*sv*sd*bc01sc08i02*")))


def test_collects_every_problem() -> None:
    with pytest.raises(ManifestError) as ei:
        DriverManifest.from_dict({"format": 2, "driver": "Bad Name", "abi": "x",
                                  "entry_point": "nocolon", "modaliases": []}, "pkg/udriver.json")
    text = str(ei.value)
    assert text.startswith("pkg/udriver.json: ")
    for needle in ("`format` must be 1", "`package` must be", "`driver` must match",
                   "`entry_point` must be", "`abi`:", "`modaliases` must be a non-empty list"):
        assert needle in text


def test_rejects_non_json_and_non_object() -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        DriverManifest.from_json(b"\xff{")
    with pytest.raises(ManifestError, match="expected a JSON object, got list"):
        DriverManifest.from_json(b"[]")


def test_rejects_duplicate_pattern() -> None:
    obj = json.loads(_manifest().to_json())
    obj["modaliases"] = [EDU, EDU.lower()]
    with pytest.raises(ManifestError, match="duplicate modalias pattern"):
        DriverManifest.from_dict(obj)
