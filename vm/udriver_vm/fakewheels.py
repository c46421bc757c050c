"""Test helper: build small driver wheels (zip + RECORD + dist-info/udriver.json)."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path


def _rec(name: str, data: bytes) -> str:
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={h},{len(data)}"


def make_wheel(out_dir: Path, *, package: str = "udriver-edu", version: str = "0.1.0",
               driver: str = "edu", modaliases: list[str] | None = None, abi: str = "1.0",
               extra_files: int = 0, extra_members: dict[str, bytes] | None = None,
               corrupt_record: bool = False) -> Path:
    """Write `<dist>-<version>-py3-none-any.whl` into `out_dir` and return its path."""
    mods = modaliases or ["pci:v00001234d000011E8sv*sd*bc*sc*i*"]
    dist = package.replace("-", "_")
    module = f"udriver_{driver}"
    di = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: udriver-tests\nRoot-Is-Purelib: true\n"
                       b"Tag: py3-none-any\n",
        f"{di}/entry_points.txt": f"[udriver.drivers]\n{driver} = {module}:Driver\n".encode(),
        f"{di}/udriver.json": (json.dumps({
            "format": 1, "package": package, "version": version, "driver": driver,
            "entry_point": f"{module}:Driver", "abi": abi, "modaliases": sorted(mods)},
            sort_keys=True, indent=2) + "\n").encode(),
    }
    for i in range(extra_files):
        files[f"{module}/data/f{i:04d}.py"] = (f"# {i}\n" + "x = 1\n" * 200).encode()
    files.update(extra_members or {})
    record = [_rec(n, d) for n, d in files.items()]
    if corrupt_record:
        first = next(iter(files))
        files[first] = files[first] + b"# tampered after RECORD\n"
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return path
